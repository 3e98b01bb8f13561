/* Every exec entry point, and the fds a child keeps on purpose.
 *
 * exec_family via WHICH PROBE LEAKFILE
 *   opens LEAKFILE without O_CLOEXEC (fd 3: the leak), forks, and the child execs
 *   PROBE through WHICH: execve execv execvp execvpe execl execlp execle fexecve
 *   execveat. The p-variants find PROBE by name through PATH.
 *   stdout: pid=N child_pid=N, the probe's line, child=exit:N|signal:N
 *
 * exec_family raw WHICH PROBE LEAKFILE
 *   as `via`, but the child comes from the fork system call itself, past glibc's
 *   fork (and so past the shim's fork hook): the child's exec is the first call of
 *   that entry point in the process, so the shim looks the real one up there.
 *
 * exec_family fail WHICH PATH LEAKFILE
 *   a failing exec in this very process (no fork), with a leaked fd 3, SIGALRM
 *   blocked and SIGPIPE ignored (what fix mode would change before an exec); the
 *   p-variants search PATH's directory for its last component.
 *   stdout: errno=NAME fd3_cloexec=0|1 alrm_blocked=0|1 sigpipe=ign|dfl open_fds=N
 *
 * exec_family keep CASE PROBE LEAKFILE
 *   sets up fds that the exec'd child is meant to have, plus a control leak that it
 *   is not, then forks and the child execs PROBE (with execve and, for the env
 *   cases, the variables in its envp). stdout: pid=N child_pid=N, the probe's line,
 *   child=... The test knows which fds each CASE expects (see the table in
 *   tests/exec_family.rs).
 *
 * exec_family vfork_fail PATH PROBE LEAKFILE
 *   a vfork child's execve of PATH fails (fd 3 leaked, SIGALRM blocked, SIGPIPE
 *   ignored); the parent reports its state as `fail` does, then fork+execs PROBE.
 *
 * exec_family args N SIZE PROBE LEAKFILE
 *   leaks fd 3 and execs PROBE with N more arguments of SIZE bytes each.
 *
 * exec_family vfork_stale PROBE LEAKFILE
 *   a vfork child dup2s onto fd 8 and execs PROBE; then the parent leaks onto fd 8
 *   itself and an ordinary fork child execs PROBE: only the first 8 is deliberate.
 *   stdout: pid, vfork_child_pid, probe line, child=..., child_pid, probe line, child=... */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "raw_fork.h"

extern char **environ;
extern int fcntl64(int fd, int cmd, ...); /* glibc >= 2.28; hooked separately */

static char *probe, *leakfile;

static void die(const char *what)
{
    fprintf(stderr, "exec_family: %s: %s\n", what, strerror(errno));
    exit(99);
}

static int leak(int flags)
{
    int fd = open(leakfile, O_RDONLY | flags);
    if (fd < 0)
        die(leakfile);
    return fd;
}

static int listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4))
        die("listener");
    return fd;
}

/* environ plus up to four extra "K=V" strings (fork child only: allocation is fine
 * in a single-threaded test program). */
static char **env_with(const char *a, const char *b)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **e = calloc(n + 3, sizeof *e);
    size_t j = 0;
    if (a)
        e[j++] = (char *)a;
    if (b)
        e[j++] = (char *)b;
    for (size_t i = 0; i < n; i++)
        e[j++] = environ[i];
    return e;
}

/* Point PATH at the directory of `path` (or at $EXEC_FAMILY_PATH) and return its
 * last component. */
static char *via_path(char *path)
{
    char *d = strdup(path), *b = strdup(path);
    const char *over = getenv("EXEC_FAMILY_PATH"); /* a test's own search path */
    setenv("PATH", over ? over : dirname(d), 1);
    return basename(b);
}

/* The exec through WHICH; returns only if it failed. */
static void exec_by(const char *which, char *path, char **args)
{
    char *dir = dirname(strdup(path)), *base = basename(strdup(path));
    if (!strcmp(which, "execve"))
        execve(path, args, environ);
    else if (!strcmp(which, "execv"))
        execv(path, args);
    else if (!strcmp(which, "execvp"))
        execvp(via_path(path), args);
    else if (!strcmp(which, "execvpe"))
        execvpe(via_path(path), args, environ);
    else if (!strcmp(which, "execl"))
        execl(path, args[0], args[1], (char *)NULL);
    else if (!strcmp(which, "execlp"))
        execlp(via_path(path), args[0], args[1], (char *)NULL);
    else if (!strcmp(which, "execle"))
        execle(path, args[0], args[1], (char *)NULL, environ);
    else if (!strcmp(which, "fexecve")) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        fexecve(fd, args, environ); /* fd -1 when PATH is missing: glibc says EINVAL */
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
    } else if (!strcmp(which, "execveat")) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        execveat(dfd, base, args, environ, 0);
        int e = errno;
        close(dfd);
        errno = e;
    } else if (!strcmp(which, "posix_spawn") || !strcmp(which, "posix_spawnp")) {
        /* Not an exec: returns like a failed one, errno set from the result. */
        pid_t pid;
        int r = which[11] ? posix_spawnp(&pid, path, NULL, NULL, args, environ)
                          : posix_spawn(&pid, path, NULL, NULL, args, environ);
        if (r == 0) {
            int st;
            waitpid(pid, &st, 0); /* it ran: errno 0, which no test expects */
        }
        errno = r;
    } else {
        fprintf(stderr, "exec_family: unknown entry point %s\n", which);
        errno = EINVAL;
    }
}

static int wait_child(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) < 0)
        die("waitpid");
    if (WIFEXITED(st))
        printf("child=exit:%d\n", WEXITSTATUS(st));
    else
        printf("child=signal:%d\n", WTERMSIG(st));
    return 0;
}

static int run_via(const char *which, int raw)
{
    leak(0);
    printf("pid=%d\n", getpid());
    fflush(stdout);
    pid_t pid = raw ? raw_fork() : fork();
    if (pid == 0) {
        char *args[] = {probe, NULL};
        exec_by(which, probe, args);
        fprintf(stderr, "exec_family: %s %s: %s\n", which, probe, strerror(errno));
        _exit(127);
    }
    printf("child_pid=%d\n", pid);
    fflush(stdout);
    return wait_child(pid);
}

/* A failing exec with a blocked SIGALRM and an ignored SIGPIPE of this process's
 * own, and (LEAKING) a leaked fd: nothing may be left changed by a fix that did not
 * happen. Without LEAKING the exec would pass on only what this process was handed
 * (its caller's fds): the signals are reported and fixed only if the exec can run. */
static int run_fail(const char *which, char *path, int leaking)
{
    int fd = leaking ? leak(0) : -1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    sigprocmask(SIG_BLOCK, &s, NULL);
    signal(SIGPIPE, SIG_IGN);
    char *args[] = {path, NULL};
    exec_by(which, path, args);
    int e = errno;
    sigprocmask(SIG_BLOCK, NULL, &s);
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    /* The shim logged this exec attempt; it must not have kept its log open. */
    int open_fds = 0;
    for (int i = 0; i < 1024; i++)
        open_fds += fcntl(i, F_GETFD) >= 0;
    printf("errno=%s", strerrorname_np(e));
    if (leaking)
        printf(" fd%d_cloexec=%d", fd, (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    printf(" alrm_blocked=%d sigpipe=%s open_fds=%d\n", sigismember(&s, SIGALRM),
           sa.sa_handler == SIG_IGN ? "ign" : "dfl", open_fds);
    return 0;
}

static int run_keep(const char *c)
{
    /* Parent side: fds 3.. in a fixed order, so the test knows their numbers. */
    if (!strcmp(c, "keep_env")) {
        leak(0); /* 3: named in EXECGUARD_KEEP_FDS by the test */
        leak(0); /* 4: control */
    } else if (!strcmp(c, "listen_fds") || !strcmp(c, "listen_fds_other_pid") ||
               !strcmp(c, "nginx")) {
        listener(); /* 3 */
        listener(); /* 4 */
        leak(0);    /* 5: control */
    } else if (!strncmp(c, "jobserver", 9)) {
        int p[2];
        if (pipe(p)) /* 3, 4: make's jobserver pipe, inherited on purpose */
            die("pipe");
        leak(0); /* 5: control */
    } else if (!strcmp(c, "dup2") || !strcmp(c, "created_after_fork") ||
               !strcmp(c, "f_dupfd")) {
        leak(0); /* 3: control */
    } else if (!strcmp(c, "dup2_in_parent")) {
        dup2(leak(0), 19999); /* long before the fork: a leak, not a hand-over */
        close(3);
    } else if (!strcmp(c, "many")) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        int fd = leak(0); /* 3, then 19 000 in all: the scale DESIGN.md asks for */
        for (int i = 1; i < 19000; i++)
            if (fcntl(fd, F_DUPFD, 0) < 0)
                die("F_DUPFD");
    } else if (!strcmp(c, "emfile")) {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = 32; /* then fill the table: the child execs at EMFILE */
        setrlimit(RLIMIT_NOFILE, &rl);
        int fd = leak(0);
        while (fcntl(fd, F_DUPFD, 0) >= 0)
            ;
    } else if (!strcmp(c, "dup3") || !strcmp(c, "fcntl_clear") ||
               !strcmp(c, "fcntl64_clear") || !strcmp(c, "fionclex")) {
        leak(O_CLOEXEC); /* 3: CLOEXEC in the parent; the child hands it on */
        leak(0);         /* 4: control */
    } else {
        fprintf(stderr, "exec_family: unknown case %s\n", c);
        return 2;
    }
    printf("pid=%d\n", getpid());
    fflush(stdout);

    pid_t pid = fork();
    if (pid == 0) {
        char **envp = environ;
        char buf[64];
        if (!strcmp(c, "listen_fds") || !strcmp(c, "listen_fds_other_pid")) {
            snprintf(buf, sizeof buf, "LISTEN_PID=%d",
                     !strcmp(c, "listen_fds") ? getpid() : getppid());
            envp = env_with("LISTEN_FDS=2", buf);
        } else if (!strcmp(c, "nginx")) {
            envp = env_with("NGINX=3;4;", NULL);
        } else if (!strcmp(c, "jobserver_auth")) {
            envp = env_with("MAKEFLAGS= -j4 --jobserver-auth=3,4", "MAKELEVEL=1");
        } else if (!strcmp(c, "jobserver_fds")) {
            envp = env_with("MAKEFLAGS= -j4 --jobserver-fds=3,4", "MAKELEVEL=1");
        } else if (!strcmp(c, "dup2")) {
            dup2(3, 7);
        } else if (!strcmp(c, "dup3")) {
            dup3(3, 8, 0);
        } else if (!strcmp(c, "fcntl_clear")) {
            fcntl(3, F_SETFD, 0);
        } else if (!strcmp(c, "fcntl64_clear")) {
            fcntl64(3, F_SETFD, 0);
        } else if (!strcmp(c, "fionclex")) {
            ioctl(3, FIONCLEX);
        } else if (!strcmp(c, "created_after_fork")) {
            open(leakfile, O_RDONLY); /* like bash's `cmd 4<file`: lands on 4 directly */
        } else if (!strcmp(c, "f_dupfd")) {
            fcntl(3, F_DUPFD, 10);
        }
        char *args[] = {probe, NULL};
        execve(probe, args, envp);
        _exit(127);
    }
    printf("child_pid=%d\n", pid);
    fflush(stdout);
    return wait_child(pid);
}

/* A vfork child shares the parent's memory: what the shim notes about its dup2 must
 * not make a later, ordinary fork child keep a leak on the same fd number. */
static int run_vfork_stale(void)
{
    leak(0);         /* 3: a leak */
    leak(O_CLOEXEC); /* 4 */
    printf("pid=%d\n", getpid());
    fflush(stdout);
    char *args[] = {probe, NULL};
    pid_t a = vfork();
    if (a == 0) {
        dup2(4, 8); /* deliberate, in this child only */
        execve(probe, args, environ);
        _exit(127);
    }
    printf("vfork_child_pid=%d\n", a);
    fflush(stdout);
    wait_child(a);
    dup2(3, 8); /* now the parent leaks on 8 too */
    fflush(stdout);
    pid_t b = fork();
    if (b == 0) {
        execve(probe, args, environ);
        _exit(127);
    }
    printf("child_pid=%d\n", b);
    fflush(stdout);
    return wait_child(b);
}

/* A failing execve in a vfork child (it shares the parent's memory, so whatever the
 * shim noted and undid there is the parent's too), then an ordinary fork+exec of
 * PROBE from the parent, which must be guarded as if nothing had happened. */
static volatile int vchild_errno;

static int run_vfork_fail(char *path)
{
    int fd = leak(0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    sigprocmask(SIG_BLOCK, &s, NULL);
    signal(SIGPIPE, SIG_IGN);
    char *args[] = {path, NULL};
    pid_t pid = vfork();
    if (pid == 0) {
        execve(path, args, environ);
        vchild_errno = errno;
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    sigprocmask(SIG_BLOCK, NULL, &s);
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    printf("errno=%s fd%d_cloexec=%d alrm_blocked=%d sigpipe=%s\n", strerrorname_np(vchild_errno), fd,
           (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, sigismember(&s, SIGALRM),
           sa.sa_handler == SIG_IGN ? "ign" : "dfl");
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char *pargs[] = {probe, NULL};
        execv(probe, pargs);
        _exit(127);
    }
    printf("child_pid=%d\n", pid);
    fflush(stdout);
    return wait_child(pid);
}

/* A long command line: N arguments of SIZE bytes (the event's argv must be cut). */
static int run_args(int n, int size)
{
    leak(0);
    printf("pid=%d\n", getpid());
    fflush(stdout);
    char **args = calloc(n + 2, sizeof *args);
    args[0] = probe;
    for (int i = 1; i <= n; i++) {
        args[i] = malloc(size + 1);
        memset(args[i], 'a' + i % 26, size);
        args[i][size] = 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        execv(probe, args);
        _exit(127);
    }
    printf("child_pid=%d\n", pid);
    fflush(stdout);
    return wait_child(pid);
}

int main(int argc, char **argv)
{
    /* Before the sweep below: this one keeps what its caller left open. */
    if (argc == 4 && !strcmp(argv[1], "fail_passing"))
        return run_fail(argv[2], argv[3], 0);
    close_range(3, ~0U, 0);
    if (argc == 5 && !strcmp(argv[1], "fail")) {
        leakfile = argv[4];
        return run_fail(argv[2], argv[3], 1);
    }
    if (argc == 5 && !strcmp(argv[1], "via")) {
        probe = argv[3];
        leakfile = argv[4];
        return run_via(argv[2], 0);
    }
    if (argc == 5 && !strcmp(argv[1], "raw")) {
        probe = argv[3];
        leakfile = argv[4];
        return run_via(argv[2], 1);
    }
    if (argc == 5 && !strcmp(argv[1], "keep")) {
        probe = argv[3];
        leakfile = argv[4];
        return run_keep(argv[2]);
    }
    if (argc == 5 && !strcmp(argv[1], "vfork_fail")) {
        probe = argv[3];
        leakfile = argv[4];
        return run_vfork_fail(argv[2]);
    }
    if (argc == 6 && !strcmp(argv[1], "args")) {
        probe = argv[4];
        leakfile = argv[5];
        return run_args(atoi(argv[2]), atoi(argv[3]));
    }
    if (argc == 4 && !strcmp(argv[1], "vfork_stale")) {
        probe = argv[2];
        leakfile = argv[3];
        return run_vfork_stale();
    }
    fprintf(stderr, "usage: exec_family via|fail|keep WHICH|CASE PROBE|PATH LEAKFILE\n");
    return 2;
}
