/* bench_syscalls: what one system call of each kind the audits make costs on this
 * machine (ns per call, warm, median of blocks), for scripts/bench's "system call
 * floor": the audits' cost is mostly a count of these calls, and a budget that
 * needs fewer calls than the audit has to make cannot be met by faster code.
 *
 *   bench_syscalls [BLOCKS]
 *
 * Made directly with syscall(2), as the shim makes them (no libc wrapper work).
 * 200 fds on /dev/null are open for the fd calls (the leaked-fd benchmark's case).
 * Output, one line of key=value (ns per call): getppid (the bare entry and exit),
 * fcntl_getfd, fstat, rt_sigaction (a query, no change), rt_sigprocmask (a query),
 * ppoll65 (fds 0-64, no events, zero timeout: the start-side fd check),
 * pselect6_1 (one fd, zero timeout: the table-size check), faccessat (X_OK on
 * /bin/true), readlink_fd (/proc/self/fd/N), statx_ino (type and inode of an fd),
 * log_line (what writing one event costs: open the log in the current directory
 * with the shim's flags, fstat, fstatfs, append a 3 500-byte line, close; the file
 * is emptied between blocks), readlink_fd_fresh (the same readlink, 9 of them on
 * different fds plus /proc/self/exe, in a fork child that never looked at
 * /proc/self: the exec audit's situation in a fork+exec; one child per block). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PER_BLOCK 2000
#define LOG_LINE_FILE "bench_syscalls.log"
#define MAX_BLOCKS 64

static int fds[200];

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void one(int which, int i)
{
    struct stat st;
    struct sigaction sa;
    sigset_t old;
    char buf[256];
    switch (which) {
    case 0:
        syscall(SYS_getppid);
        break;
    case 1:
        syscall(SYS_fcntl, fds[i % 200], F_GETFD);
        break;
    case 2:
        syscall(SYS_fstat, fds[i % 200], &st);
        break;
    case 3:
        syscall(SYS_rt_sigaction, 1 + i % 15, NULL, &sa, 8);
        break;
    case 4:
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &old, 8);
        break;
    case 5: {
        struct pollfd p[65];
        for (int k = 0; k < 65; k++) p[k] = (struct pollfd){.fd = k};
        struct timespec z = {0, 0};
        syscall(SYS_ppoll, p, 65, &z, NULL, 0);
        break;
    }
    case 6: {
        unsigned long set[2] = {0, 1};
        struct timespec z = {0, 0};
        syscall(SYS_pselect6, 65, set, NULL, NULL, &z, NULL);
        break;
    }
    case 7:
        syscall(SYS_faccessat, AT_FDCWD, "/bin/true", X_OK, 0);
        break;
    case 8: {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i % 200]);
        syscall(SYS_readlink, path, buf, sizeof buf);
        break;
    }
    case 9: {
        /* the other way to ask which open file an fd is: type and inode only */
        struct statx sx;
        syscall(SYS_statx, fds[i % 200], "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO, &sx);
        break;
    }
    case 10: {
        static char line[3500];
        struct statfs fs;
        if (!line[0]) {
            memset(line, 'x', sizeof line - 1);
            line[sizeof line - 1] = '\n';
        }
        int fd = syscall(SYS_openat, AT_FDCWD, LOG_LINE_FILE,
                         O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        syscall(SYS_fstat, fd, &st);
        syscall(SYS_fstatfs, fd, &fs);
        syscall(SYS_write, fd, line, sizeof line);
        syscall(SYS_close, fd);
        break;
    }
    }
}

/* ns per readlink in a new process: what an exec audit in a fork child pays. */
static double readlink_fresh(void)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char path[64], buf[256];
        double a = now_ns();
        for (int i = 0; i < 9; i++) {
            snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i * 20]);
            syscall(SYS_readlink, path, buf, sizeof buf);
        }
        syscall(SYS_readlink, "/proc/self/exe", buf, sizeof buf);
        double ns = (now_ns() - a) / 10;
        (void)!write(p[1], &ns, sizeof ns);
        _exit(0);
    }
    double ns = -1;
    close(p[1]);
    if (pid < 0 || read(p[0], &ns, sizeof ns) != (ssize_t)sizeof ns) ns = -1;
    close(p[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    return ns;
}

int main(int argc, char **argv)
{
    static const char *names[] = {"getppid", "fcntl_getfd", "fstat", "rt_sigaction", "rt_sigprocmask",
                                  "ppoll65", "pselect6_1", "faccessat", "readlink_fd", "statx_ino", "log_line"};
    int blocks = argc > 1 ? atoi(argv[1]) : 15;
    if (blocks < 1 || blocks > MAX_BLOCKS) blocks = 15;
    for (int i = 0; i < 200; i++) {
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            perror("bench_syscalls: /dev/null");
            return 1;
        }
    }
    int n = (int)(sizeof names / sizeof *names);
    for (int w = 0; w < n; w++) {
        double t[MAX_BLOCKS];
        for (int i = 0; i < PER_BLOCK; i++) one(w, i); /* warm */
        for (int b = 0; b < blocks; b++) {
            truncate(LOG_LINE_FILE, 0);
            double a = now_ns();
            for (int i = 0; i < PER_BLOCK; i++) one(w, i);
            t[b] = (now_ns() - a) / PER_BLOCK;
        }
        unlink(LOG_LINE_FILE);
        qsort(t, (size_t)blocks, sizeof *t, cmp);
        printf("%s%s=%.0f", w ? " " : "", names[w], t[blocks / 2]);
    }
    double t[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++) t[b] = readlink_fresh();
    qsort(t, (size_t)blocks, sizeof *t, cmp);
    printf(" readlink_fd_fresh=%.0f", t[blocks / 2]);
    printf("\n");
    return 0;
}
