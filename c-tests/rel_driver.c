/* rel_driver: the host programs of tests/reliability.rs (issue 7). One subcommand
 * per situation; each prints what the host saw (results, errno names, counts) as
 * `key=value` lines so the test can compare runs without, and with, the shim.
 *
 *   noop                    exit 0 at once (the exec target of timing loops)
 *   check                   print `open=3,5,...`: which fds 3..20000 this process holds
 *   events N [fork]         N select() calls past FD_SETSIZE (events), a computation,
 *                           optionally one fork+exec with a leaked fd; exits 7
 *   secure                  print AT_SECURE and the uids, then fork+exec /bin/true with a leak
 *   forkloop N FDS          N fork+exec of /bin/true with FDS leaked fds
 *   scale N K [PRELOAD]     N leaked fds plus fd 19999, then K fork+exec of `noop`,
 *                           timed (`us_per_exec=`); PRELOAD: preload only the children
 *   emfile BADEXE [HIGH]    use every fd (HIGH: first put one at fd HIGH, above the
 *                           lowered limit), then execs that must fail / succeed
 *   undo N BADEXE           N leaked fds in N ranges, a failing exec: flags restored?
 *   spill N PROG [fork]     N leaked fds in N ranges, then exec PROG (from a fork
 *                           child with "fork": prints the child's exit status)
 *   sigexec SECS            SIGALRM handler forks+execs while main loops in hooked calls
 *   threxec BADEXE          threads in hooked calls while main execs (fails, then succeeds)
 *   fdspawn PROBE           run PROBE by fork+exec, posix_spawn, system, popen
 *   mem N                   N hooked calls; VmRSS and fd count before/after */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static const char *self;

static const char *ename(int e)
{
    switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    case EMFILE: return "EMFILE";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    default: return "other";
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* A non-CLOEXEC fd on /dev/null: the leak every subcommand hands its children. */
static int leak(void)
{
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) {
        perror("open /dev/null");
        exit(2);
    }
    return fd;
}

static int run_wait(const char *path, char *const argv[])
{
    pid_t p = fork();
    if (p == 0) {
        execv(path, argv);
        _exit(127);
    }
    if (p < 0)
        return -1;
    int st;
    while (waitpid(p, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int cmd_check(void)
{
    printf("open=");
    int first = 1;
    for (int fd = 3; fd < 20000; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) {
            printf(first ? "%d" : ",%d", fd);
            first = 0;
        }
    }
    printf("\n");
    return 0;
}

/* select() with nfds past FD_SETSIZE on sets big enough for it, nothing set. */
static int big_select(int nfds)
{
    static unsigned long sets[3][2048 / 64];
    memset(sets, 0, sizeof sets);
    struct timeval tv = {0, 0};
    return select(nfds, (fd_set *)sets[0], (fd_set *)sets[1], (fd_set *)sets[2], &tv);
}

static int cmd_events(int n, int do_fork)
{
    unsigned long work = 0;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        errno = 0;
        if (big_select(1100) != 0)
            bad++;
        for (int j = 0; j < 1000; j++)
            work = work * 31 + (unsigned)(i ^ j);
    }
    int child = -1;
    if (do_fork) {
        leak();
        char *a[] = {"/bin/true", NULL};
        child = run_wait("/bin/true", a);
    }
    printf("work=%lu select_bad=%d child=%d\n", work, bad, child);
    fflush(stdout);
    return 7;
}

static int cmd_secure(void)
{
    printf("at_secure=%lu ruid=%d euid=%d\n", getauxval(AT_SECURE), (int)getuid(), (int)geteuid());
    fflush(stdout);
    leak();
    char *a[] = {"/bin/true", NULL};
    int st = run_wait("/bin/true", a);
    printf("child=%d\n", st);
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static int cmd_forkloop(int n, int nfds)
{
    raise_nofile();
    int fd = leak();
    for (int i = 1; i < nfds; i++)
        if (dup(fd) < 0) {
            perror("dup");
            return 2;
        }
    char *a[] = {"/bin/true", NULL};
    int failed = 0;
    for (int i = 0; i < n; i++)
        if (run_wait("/bin/true", a) != 0)
            failed++;
    printf("done=%d failed=%d\n", n, failed);
    return 0;
}

static int cmd_scale(int n, int k, const char *preload)
{
    raise_nofile();
    int fd = leak();
    for (int i = 1; i < n; i++)
        if (dup(fd) < 0) {
            perror("dup");
            return 2;
        }
    if (dup2(fd, 19999) != 19999) {
        perror("dup2 19999");
        return 2;
    }
    if (preload)
        setenv("LD_PRELOAD", preload, 1);
    char *a[] = {(char *)self, "noop", NULL};
    int failed = 0;
    double t0 = now();
    for (int i = 0; i < k; i++)
        if (run_wait(self, a) != 0)
            failed++;
    double dt = now() - t0;
    printf("fds=%d execs=%d failed=%d us_per_exec=%.0f\n", n + 1, k, failed, dt * 1e6 / k);
    return 0;
}

static int cmd_emfile(const char *badexe, int high)
{
    struct rlimit rl;
    if (high > 0 && dup2(leak(), high) != high) {
        perror("dup2");
        return 2;
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        return 2;
    }
    int filled = 0;
    while (open("/dev/null", O_RDONLY) >= 0)
        filled++;
    int e = errno;
    printf("filled=%d open_errno=%s\n", filled, ename(e));
    char *a[] = {(char *)badexe, NULL};
    errno = 0;
    int r = execve("/nonexistent/x", a, environ);
    printf("enoent_r=%d errno=%s\n", r, ename(errno));
    errno = 0;
    r = execve(badexe, a, environ);
    printf("enoexec_r=%d errno=%s\n", r, ename(errno));
    int fl = fcntl(3, F_GETFD);
    printf("fd3_flags=%d\n", fl);
    errno = 0;
    r = execve("/", a, environ);
    printf("eacces_r=%d errno=%s\n", r, ename(errno));
    fflush(stdout);
    /* And one exec that works, in a child that inherits all 64 fds. */
    char *c[] = {(char *)self, "check", NULL};
    int st = run_wait(self, c);
    printf("child=%d\n", st);
    return 0;
}

/* N leaked fds in N separate ranges (each followed by a CLOEXEC one), then an exec
 * that fails: how many of the leaked fds does the host find CLOEXEC afterwards? */
static int cmd_undo(int n, const char *badexe)
{
    raise_nofile();
    int *fds = calloc(n, sizeof *fds);
    for (int i = 0; i < n; i++) {
        fds[i] = leak();
        if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0)
            return 2;
    }
    char *a[] = {(char *)badexe, NULL};
    errno = 0;
    int r = execve(badexe, a, environ);
    int e = errno, changed = 0;
    for (int i = 0; i < n; i++)
        if (fcntl(fds[i], F_GETFD) != 0)
            changed++;
    printf("leaked=%d exec_r=%d errno=%s cloexec_after=%d\n", n, r, ename(e), changed);
    return 0;
}

/* N leaked fds in N separate ranges, then an exec that succeeds: fix mode must close
 * every one in PROG (past the undo record's 128 ranges, the audit starts again with
 * its bitmap), and say so in one event. */
static int cmd_spill(int n, const char *prog, int in_child)
{
    raise_nofile();
    for (int i = 0; i < n; i++) {
        leak();
        if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0)
            return 2;
    }
    char *a[] = {(char *)prog, NULL};
    fflush(stdout);
    if (in_child) {
        pid_t pid = fork();
        if (pid == 0) {
            execve(prog, a, environ);
            _exit(127);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        printf("child_status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return 0;
    }
    execve(prog, a, environ);
    perror("execve");
    return 2;
}

static volatile sig_atomic_t runs, runs_bad;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    pid_t p = fork();
    if (p == 0) {
        char *a[] = {"/bin/true", NULL};
        execve("/bin/true", a, environ);
        _exit(127);
    }
    if (p < 0) {
        runs_bad++;
    } else {
        int st = 0;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            runs_bad++;
    }
    runs++;
    errno = saved;
}

static int cmd_sigexec(double secs)
{
    leak();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: select sees EINTR */
    struct itimerval it = {{0, 3000}, {0, 3000}};
    setitimer(ITIMER_REAL, &it, NULL);
    long calls = 0, wrong = 0;
    sigset_t alrm, usr;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigemptyset(&usr);
    sigaddset(&usr, SIGUSR1);
    double end = now() + secs;
    while (now() < end) {
        errno = 4242;
        /* The pending SIGALRM is delivered as the real call unblocks it: the
         * handler runs inside the hooked pthread_sigmask/sigprocmask. */
        if (pthread_sigmask(SIG_BLOCK, &alrm, NULL) != 0 || errno != 4242)
            wrong++;
        if (sigprocmask(SIG_UNBLOCK, &alrm, NULL) != 0 || errno != 4242)
            wrong++;
        if (pthread_sigmask(SIG_BLOCK, &usr, NULL) != 0 || pthread_sigmask(SIG_UNBLOCK, &usr, NULL) != 0)
            wrong++;
        int r = big_select(1100);
        if (!(r == 0 || (r < 0 && errno == EINTR)))
            wrong++;
        struct timeval tv = {0, 500};
        r = select(0, NULL, NULL, NULL, &tv);
        if (!(r == 0 || (r < 0 && errno == EINTR)))
            wrong++;
        if (dup2(3, 50) != 50)
            wrong++;
        calls += 6;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("calls=%ld wrong=%ld handler_runs=%d handler_bad=%d\n", calls, wrong, (int)runs, (int)runs_bad);
    return 0;
}

static volatile int stop;

static void *busy(void *arg)
{
    long id = (long)arg;
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    long wrong = 0;
    while (!stop) {
        if (pthread_sigmask(SIG_BLOCK, &alrm, NULL) != 0 || pthread_sigmask(SIG_UNBLOCK, &alrm, NULL) != 0)
            wrong++;
        int r = big_select(1100);
        if (r != 0)
            wrong++;
        if (dup2(3, 60 + (int)id) != 60 + id)
            wrong++;
        if (fcntl(60 + (int)id, F_SETFD, FD_CLOEXEC) != 0)
            wrong++;
    }
    return (void *)wrong;
}

static int cmd_threxec(const char *badexe)
{
    leak(); /* fd 3 */
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, busy, (void *)i);
    usleep(20000);
    char *a[] = {(char *)badexe, NULL};
    int wrong = 0, tries = 300;
    for (int i = 0; i < tries; i++) {
        errno = 0;
        int r = execve(badexe, a, environ);
        if (r != -1 || errno != ENOEXEC)
            wrong++;
        /* fix mode sets CLOEXEC before the exec and must undo it when it fails */
        if (fcntl(3, F_GETFD) != 0)
            wrong++;
        errno = 0;
        r = execve("/nonexistent/x", a, environ);
        if (r != -1 || errno != ENOENT)
            wrong++;
    }
    stop = 1;
    long twrong = 0;
    for (int i = 0; i < 4; i++) {
        void *w;
        pthread_join(t[i], &w);
        twrong += (long)w;
    }
    printf("tries=%d wrong=%d thread_wrong=%ld\n", tries, wrong, twrong);
    fflush(stdout);
    /* Restart the threads, and exec for real while they run. */
    stop = 0;
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, busy, (void *)i);
    usleep(20000);
    char *c[] = {(char *)self, "check", NULL};
    execve(self, c, environ);
    printf("exec failed: %s\n", ename(errno));
    return 3;
}

static void list_self(const char *key)
{
    DIR *d = opendir("/proc/self/fd");
    int me = d ? dirfd(d) : -1;
    printf("%s=", key);
    struct dirent *e;
    int first = 1;
    int fds[4096], n = 0;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != me && n < 4096)
            fds[n++] = atoi(e->d_name);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fds[j] < fds[i]) {
                int x = fds[i];
                fds[i] = fds[j];
                fds[j] = x;
            }
    for (int i = 0; i < n; i++) {
        printf(first ? "%d" : ",%d", fds[i]);
        first = 0;
    }
    printf("\n");
    if (d)
        closedir(d);
}

static int cmd_fdspawn(const char *probe)
{
    int keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
    leak();
    int p[2];
    pipe2(p, O_CLOEXEC);
    (void)keep;
    list_self("self_before");
    fflush(stdout);
    char *a[] = {(char *)probe, NULL};
    printf("way=fork\n");
    fflush(stdout);
    run_wait(probe, a);
    printf("way=posix_spawn\n");
    fflush(stdout);
    pid_t pid;
    if (posix_spawn(&pid, probe, NULL, NULL, a, environ) == 0)
        waitpid(pid, NULL, 0);
    printf("way=system\n");
    fflush(stdout);
    if (system(probe) != 0)
        printf("system failed\n");
    printf("way=popen\n");
    fflush(stdout);
    FILE *f = popen(probe, "r");
    char buf[65536];
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[got] = 0;
    if (f)
        pclose(f);
    fputs(buf, stdout);
    list_self("self_after");
    return 0;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static int cmd_mem(long n)
{
    int fd = leak();
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    long wrong = 0, before = 0, fds_before = 0;
    for (long i = 0; i < n; i++) {
        if (i == n / 10) {
            before = rss_kb();
            fds_before = count_fds();
        }
        switch (i % 5) {
        case 0:
            wrong += pthread_sigmask(SIG_BLOCK, &alrm, NULL) != 0;
            wrong += pthread_sigmask(SIG_UNBLOCK, &alrm, NULL) != 0;
            break;
        case 1:
            wrong += sigprocmask(SIG_BLOCK, &alrm, NULL) != 0;
            wrong += sigprocmask(SIG_UNBLOCK, &alrm, NULL) != 0;
            break;
        case 2:
            wrong += big_select(1025 + (int)(i % 1000)) != 0;
            break;
        case 3:
            wrong += dup2(fd, 100) != 100;
            break;
        case 4:
            wrong += fcntl(100, F_SETFD, (i & 8) ? FD_CLOEXEC : 0) != 0;
            break;
        }
    }
    printf("calls=%ld wrong=%ld rss_before_kb=%ld rss_after_kb=%ld fds_before=%ld fds_after=%d\n", n, wrong, before,
           rss_kb(), fds_before, count_fds());
    return 0;
}

int main(int argc, char **argv)
{
    self = argv[0];
    const char *cmd = argc > 1 ? argv[1] : "";
    const char *a2 = argc > 2 ? argv[2] : "";
    if (!strcmp(cmd, "noop"))
        return 0;
    if (!strcmp(cmd, "check"))
        return cmd_check();
    if (!strcmp(cmd, "events"))
        return cmd_events(atoi(a2), argc > 3 && !strcmp(argv[3], "fork"));
    if (!strcmp(cmd, "secure"))
        return cmd_secure();
    if (!strcmp(cmd, "forkloop") && argc > 3)
        return cmd_forkloop(atoi(a2), atoi(argv[3]));
    if (!strcmp(cmd, "scale") && argc > 3)
        return cmd_scale(atoi(a2), atoi(argv[3]), argc > 4 ? argv[4] : NULL);
    if (!strcmp(cmd, "emfile") && argc > 2)
        return cmd_emfile(a2, argc > 3 ? atoi(argv[3]) : 0);
    if (!strcmp(cmd, "undo") && argc > 3)
        return cmd_undo(atoi(a2), argv[3]);
    if (!strcmp(cmd, "spill") && argc > 3)
        return cmd_spill(atoi(a2), argv[3], argc > 4 && !strcmp(argv[4], "fork"));
    if (!strcmp(cmd, "sigexec"))
        return cmd_sigexec(atof(a2));
    if (!strcmp(cmd, "threxec") && argc > 2)
        return cmd_threxec(a2);
    if (!strcmp(cmd, "fdspawn") && argc > 2)
        return cmd_fdspawn(a2);
    if (!strcmp(cmd, "mem"))
        return cmd_mem(atol(a2));
    fprintf(stderr, "usage: rel_driver CMD ... (see the header)\n");
    return 2;
}
