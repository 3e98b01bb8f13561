/* The other ways to start a program (issue 3), each leaking a listening socket:
 * glibc's system(), popen() and posix_spawn*() reach the kernel through internal
 * calls, not through the exported execve, and a vfork child or a static parent
 * bypasses any hook in the parent; the exec'd probe must still be covered.
 *
 * usage: spawn_paths HOW PROBE
 *   HOW: system popen posix_spawn posix_spawnp posix_spawn_actions vfork fork
 *   and, built with -DHAVE_PIDFD_SPAWN against glibc >= 2.39 (tests/common:
 *   on_glibc_new), pidfd_spawn pidfd_spawnp pidfd_spawn_actions: the same spawns
 *   through glibc's pidfd functions, the child waited for through its pidfd
 *   (waitid P_PIDFD). Built without, those answer status=unsupported.
 *   fd 3 is a non-CLOEXEC TCP listener on 127.0.0.1; posix_spawn_actions also
 *   routes the probe's stdout through a pipe with a dup2 file action and asks for
 *   SIGALRM blocked with POSIX_SPAWN_SETSIGMASK. The probe's line appears on stdout.
 *   HOW_file (system_file, popen_file, ...): fd 3 is /dev/null instead (port=0).
 *   stdout: pid=N port=N, the probe's line, status=exit:N|signal:N|ret:N
 * usage: spawn_paths system_blocking SELF
 *   the nginx self-deadlock: holds a listener and system()s "SELF connect_back PORT",
 *   which connects to it and waits (at most 3 s) for a reply that cannot come while
 *   the caller is blocked in system(). stdout: port=N, reply=..., status=...
 * usage: spawn_paths system_semantics -
 *   POSIX system() details that must survive a shim (see system_semantics()).
 * usage: spawn_paths sigchld_ign -
 *   holds a listener (so the shim runs the command itself) and ignores SIGCHLD:
 *   system() and pclose() find no child to wait for. stdout: their results, errnos.
 * SPAWN_PATHS_KEEP_INHERITED set: keep the fds inherited from the caller (else
 * they are closed first).
 * This file is also built with -static: a parent that no preload can enter. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifdef HAVE_PIDFD_SPAWN
/* glibc >= 2.39's <spawn.h>; declared here for builds with older headers. */
extern int pidfd_spawn(int *restrict, const char *restrict, const posix_spawn_file_actions_t *restrict,
                       const posix_spawnattr_t *restrict, char *const[restrict], char *const[restrict]);
extern int pidfd_spawnp(int *restrict, const char *restrict, const posix_spawn_file_actions_t *restrict,
                        const posix_spawnattr_t *restrict, char *const[restrict], char *const[restrict]);
#endif

/* posix_spawn_actions' file actions and attributes: the child's stdout onto the
 * pipe's write end `w` (a dup2 action), SIGALRM blocked (POSIX_SPAWN_SETSIGMASK). */
static void stdout_to_pipe_alrm_blocked(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, int w) {
    sigset_t m;
    posix_spawn_file_actions_init(fa);
    posix_spawn_file_actions_adddup2(fa, w, 1);
    posix_spawnattr_init(at);
    sigemptyset(&m);
    sigaddset(&m, SIGALRM);
    posix_spawnattr_setsigmask(at, &m);
    posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK);
}

/* What the child wrote into the pipe (read end `r`), as via_pipe=TEXT. */
static void print_pipe(int r) {
    char buf[8192];
    ssize_t n, tot = 0;
    while (tot < (ssize_t)sizeof buf - 1 && (n = read(r, buf + tot, sizeof buf - 1 - tot)) > 0)
        tot += n;
    buf[tot] = 0;
    printf("via_pipe=%s", buf);
}

/* The wait status of the child behind `pidfd`, waited for through it. */
static int wait_pidfd(int pidfd) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED))
        return -1;
    close(pidfd);
    return si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : si.si_status & 0x7f;
}

extern char **environ;

static int listener(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* the bug: no SOCK_CLOEXEC */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &al)) {
        perror("spawn_paths: listener");
        exit(99);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void status(int st)
{
    if (WIFEXITED(st))
        printf("status=exit:%d\n", WEXITSTATUS(st));
    else
        printf("status=signal:%d\n", WTERMSIG(st));
}

static int connect_back(unsigned port)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        printf("reply=%s\n", strerrorname_np(errno));
        return 1;
    }
    (void)!write(c, "ping\n", 5);
    struct pollfd p = {.fd = c, .events = POLLIN};
    int r = poll(&p, 1, 3000);
    printf("reply=%s\n", r > 0 ? "got" : "timeout");
    return r > 0 ? 0 : 1;
}

static int system_blocking(const char *self)
{
    unsigned port;
    int l = listener(&port);
    printf("port=%u\n", port);
    fflush(stdout);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s connect_back %u", self, port);
    int st = system(cmd);
    close(l);
    status(st);
    return 0;
}

/* POSIX system() semantics, which a shim that takes system() over must keep: the
 * return values, system(NULL), SIGCHLD blocked and SIGINT/SIGQUIT ignored in the
 * caller while it waits (seen by the command in /proc/$PPID/status), the caller's
 * own state restored afterwards, and two threads calling it at once. */
static void *sys_thread(void *arg)
{
    long n = (long)arg, bad = 0;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "exit %ld", n);
    for (int i = 0; i < 20; i++) {
        int st = system(cmd);
        bad += !(WIFEXITED(st) && WEXITSTATUS(st) == n);
    }
    return (void *)bad;
}

static int system_semantics(void)
{
    int st;
    printf("null=%d\n", system(NULL) != 0);
    st = system("exit 3");
    printf("exit3=%d,%d\n", WIFEXITED(st), WEXITSTATUS(st));
    st = system("kill -TERM $$");
    printf("term=%d,%d\n", WIFSIGNALED(st), WTERMSIG(st));
    st = system("/nonexistent/program 2>/dev/null");
    printf("missing=%d,%d\n", WIFEXITED(st), WEXITSTATUS(st));
    fflush(stdout);
    /* Look once the caller is waiting: right after the vfork-style clone, glibc's
     * posix_spawn briefly still has every signal blocked in the caller. */
    st = system("sleep 0.2; printf 'during='; grep -E '^Sig(Blk|Ign)' /proc/$PPID/status | tr '\\n\\t' ', '; echo");
    fflush(stdout);
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    printf("after=");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "SigBlk", 6) || !strncmp(line, "SigIgn", 6))
            for (char *c = line; *c; c++)
                putchar(*c == '\n' ? ',' : *c == '\t' ? ' ' : *c);
    putchar('\n');
    if (f)
        fclose(f);
    pthread_t a, b;
    void *ra, *rb;
    pthread_create(&a, NULL, sys_thread, (void *)4L);
    pthread_create(&b, NULL, sys_thread, (void *)5L);
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    printf("threads_bad=%ld\n", (long)ra + (long)rb);
    return 0;
}

static int sigchld_ign(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0)
        return 1;
    signal(SIGCHLD, SIG_IGN);
    errno = 0;
    int r = system("true");
    printf("system=%d %s\n", r, strerrorname_np(errno));
    FILE *f = popen("true", "r");
    if (!f)
        return 1;
    errno = 0;
    r = pclose(f);
    printf("pclose=%d %s\n", r, strerrorname_np(errno));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "connect_back"))
        return connect_back((unsigned)atoi(argv[2]));
    if (argc != 3) {
        fprintf(stderr, "usage: spawn_paths HOW PROBE\n");
        return 2;
    }
    /* A clean slate, unless the test means to hand us stray fds (tests/everyday.rs). */
    if (!getenv("SPAWN_PATHS_KEEP_INHERITED"))
        close_range(3, ~0U, 0);
    if (!strcmp(argv[1], "system_semantics"))
        return system_semantics();
    if (!strcmp(argv[1], "sigchld_ign"))
        return sigchld_ign();
    if (!strcmp(argv[1], "system_blocking"))
        return system_blocking(argv[2]);

    const char *how = argv[1];
    char *probe = argv[2];
    unsigned port = 0;
    size_t hl = strlen(how);
    if (hl > 5 && !strcmp(how + hl - 5, "_file")) {
        /* HOW_file: the leak on fd 3 is /dev/null, not a listener. */
        how = strndup(how, hl - 5);
        if (open("/dev/null", O_RDONLY) != 3)
            return 99;
    } else {
        listener(&port);
    }
    printf("pid=%d\nport=%u\n", getpid(), port);
    fflush(stdout);

    char *args[] = {probe, NULL};
    pid_t pid;
    int st = 0, rc;
    if (!strcmp(how, "system")) {
        st = system(probe);
    } else if (!strcmp(how, "popen")) {
        FILE *f = popen(probe, "r");
        char line[8192];
        if (!f) {
            printf("status=popen:%s\n", strerrorname_np(errno));
            return 0;
        }
        while (fgets(line, sizeof line, f))
            fputs(line, stdout);
        st = pclose(f);
    } else if (!strcmp(how, "posix_spawn") || !strcmp(how, "posix_spawnp")) {
        if (!strcmp(how, "posix_spawn")) {
            rc = posix_spawn(&pid, probe, NULL, NULL, args, environ);
        } else {
            setenv("PATH", dirname(strdup(probe)), 1);
            char *name = basename(strdup(probe));
            rc = posix_spawnp(&pid, name, NULL, NULL, args, environ);
        }
        if (rc) {
            printf("status=ret:%s\n", strerrorname_np(rc));
            return 0;
        }
        waitpid(pid, &st, 0);
    } else if (!strncmp(how, "pidfd_spawn", 11)) {
#ifdef HAVE_PIDFD_SPAWN
        int pidfd = -1;
        if (!strcmp(how, "pidfd_spawn")) {
            rc = pidfd_spawn(&pidfd, probe, NULL, NULL, args, environ);
        } else if (!strcmp(how, "pidfd_spawnp")) {
            setenv("PATH", dirname(strdup(probe)), 1);
            char *name = basename(strdup(probe));
            rc = pidfd_spawnp(&pidfd, name, NULL, NULL, args, environ);
        } else {
            /* pidfd_spawn_actions: as posix_spawn_actions below. */
            int p[2];
            posix_spawn_file_actions_t fa;
            posix_spawnattr_t at;
            if (pipe2(p, O_CLOEXEC))
                return 99;
            stdout_to_pipe_alrm_blocked(&fa, &at, p[1]);
            rc = pidfd_spawn(&pidfd, probe, &fa, &at, args, environ);
            close(p[1]);
            if (!rc)
                print_pipe(p[0]);
        }
        if (rc) {
            printf("status=ret:%s\n", strerrorname_np(rc));
            return 0;
        }
        /* The pidfd is the caller's: close-on-exec, and above the leaked fd 3. */
        printf("pidfd_cloexec=%d\n", (fcntl(pidfd, F_GETFD) & FD_CLOEXEC) != 0);
        st = wait_pidfd(pidfd);
#else
        printf("status=unsupported\n");
        return 3;
#endif
    } else if (!strcmp(how, "posix_spawn_actions")) {
        int p[2];
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        if (pipe2(p, O_CLOEXEC))
            return 99;
        stdout_to_pipe_alrm_blocked(&fa, &at, p[1]);
        rc = posix_spawn(&pid, probe, &fa, &at, args, environ);
        close(p[1]);
        if (rc) {
            printf("status=ret:%s\n", strerrorname_np(rc));
            return 0;
        }
        print_pipe(p[0]);
        waitpid(pid, &st, 0);
    } else if (!strcmp(how, "vfork") || !strcmp(how, "fork")) {
        pid = !strcmp(how, "vfork") ? vfork() : fork();
        if (pid == 0) {
            execve(probe, args, environ);
            _exit(127);
        }
        waitpid(pid, &st, 0);
    } else {
        fprintf(stderr, "spawn_paths: unknown HOW %s\n", how);
        return 2;
    }
    fflush(stdout);
    status(st);
    return 0;
}
