/* probe: the child that the incident programs exec. It reports what it inherited,
 * as one JSON line on stdout:
 *   {"fds":[{"fd":3,"kind":"tcp_listen","detail":"127.0.0.1:4000"}],
 *    "blocked":["SIGALRM",...],"ignored":["SIGPIPE",...]}
 * fds >= 3 only (0-2 are the caller's business); kinds use execguard's names.
 * Signal state comes from /proc/self/status (SigBlk/SigIgn), the kernel's view.
 * Without /proc the fds are found with fcntl and only typed (file detail "/?"),
 * and both signal lists are empty.
 * Options: --wait-stdin  after printing, wait (at most 5 s) for EOF on stdin, so a
 *                        parent can look at /proc/<pid>/fd or connect to a leaked port;
 *          --exit N      exit with status N (default 0). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void addr_str(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *a = (const void *)ss;
        snprintf(out, n, "%s", a->sun_path[0] ? a->sun_path : "@");
    } else {
        snprintf(out, n, "family:%d", ss->ss_family);
    }
}

static void classify(int fd, const char *link, const char **kind, char *detail, size_t n)
{
    snprintf(detail, n, "%s", link);
    if (strncmp(link, "socket:", 7) == 0) {
        int type = 0, acc = 0;
        socklen_t l = sizeof type;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
        l = sizeof acc;
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l);
        memset(&ss, 0, sizeof ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
            *kind = "other";
            return;
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            *kind = type == SOCK_DGRAM ? "udp" : acc ? "tcp_listen" : "tcp";
        } else if (ss.ss_family == AF_UNIX) {
            *kind = acc ? "unix_listen" : "unix";
        } else {
            *kind = "other";
            return;
        }
        addr_str(&ss, detail, n);
        return;
    }
    if (strncmp(link, "pipe:", 5) == 0)
        *kind = "pipe";
    else if (strcmp(link, "anon_inode:[eventpoll]") == 0)
        *kind = "epoll";
    else if (strcmp(link, "anon_inode:[eventfd]") == 0)
        *kind = "eventfd";
    else if (link[0] == '/')
        *kind = "file";
    else
        *kind = "other";
}

static const char *signame(int s, char *buf, size_t n)
{
    static const char *names[32] = {
        NULL, "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS",
        "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM",
        "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN",
        "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",
        "SIGIO", "SIGPWR", "SIGSYS",
    };
    if (s > 0 && s < 32)
        return names[s];
    if (s >= SIGRTMIN)
        snprintf(buf, n, "SIGRTMIN+%d", s - SIGRTMIN);
    else
        snprintf(buf, n, "SIG%d", s);
    return buf;
}

static void print_sigset(const char *key, unsigned long long bits)
{
    char buf[32];
    int first = 1;
    printf(",\"%s\":[", key);
    for (int s = 1; s <= 64; s++) {
        if (!(bits & (1ULL << (s - 1))))
            continue;
        printf("%s", first ? "" : ",");
        json_str(signame(s, buf, sizeof buf));
        first = 0;
    }
    putchar(']');
}

static unsigned long long status_field(const char *name)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    unsigned long long v = 0;
    size_t nl = strlen(name);
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, nl) == 0 && line[nl] == ':')
            v = strtoull(line + nl + 1, NULL, 16);
    fclose(f);
    return v;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int main(int argc, char **argv)
{
    int wait_stdin = 0, code = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait-stdin") == 0)
            wait_stdin = 1;
        else if (strcmp(argv[i], "--exit") == 0 && i + 1 < argc)
            code = atoi(argv[++i]);
    }

    /* Read both masks before stdio or opendir can disturb anything. */
    unsigned long long blk = status_field("SigBlk");
    unsigned long long ign = status_field("SigIgn");

    static int fds[65536];
    int nfds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && nfds < (int)(sizeof fds / sizeof fds[0])) {
            int fd = atoi(e->d_name);
            if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd < 3 || fd == dirfd(d))
                continue;
            fds[nfds++] = fd;
        }
        closedir(d);
    } else {
        /* No /proc (a test hides it): ask every fd below 4096. */
        for (int fd = 3; fd < 4096; fd++)
            if (fcntl(fd, F_GETFD) >= 0)
                fds[nfds++] = fd;
    }
    qsort(fds, nfds, sizeof fds[0], cmp_int);

    printf("{\"fds\":[");
    for (int i = 0; i < nfds; i++) {
        char path[64], link[512], detail[512];
        const char *kind;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        ssize_t l = readlink(path, link, sizeof link - 1);
        if (l < 0) {
            /* No /proc: the inode type is all there is (sockets still get an address). */
            struct stat st;
            fstat(fds[i], &st);
            snprintf(link, sizeof link, "%s", S_ISSOCK(st.st_mode) ? "socket:" : S_ISFIFO(st.st_mode) ? "pipe:" : "/?");
            l = strlen(link);
        }
        link[l] = 0;
        classify(fds[i], link, &kind, detail, sizeof detail);
        printf("%s{\"fd\":%d,\"kind\":\"%s\",\"detail\":", i ? "," : "", fds[i], kind);
        json_str(detail);
        putchar('}');
    }
    putchar(']');
    print_sigset("blocked", blk);
    print_sigset("ignored", ign);
    printf("}\n");
    fflush(stdout);

    if (wait_stdin) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        char buf[64];
        for (int waited = 0; waited < 5000; waited += 100) {
            if (poll(&p, 1, 100) > 0 && read(0, buf, sizeof buf) <= 0)
                break;
        }
    }
    return code;
}
