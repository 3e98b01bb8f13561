/* bench_spawn: cost of starting a child, for scripts/bench.
 *
 *   bench_spawn MODE ITERS LEAK [TARGET]
 *
 * MODE    forkexec | forkexecvp | vforkexec | posix_spawn | system | popen | start
 * ITERS   children started (and waited for) in the timed loop
 * LEAK    fds >= 3 opened WITHOUT O_CLOEXEC before the loop, so that every child
 *         inherits them; BENCH_LEAK_KIND picks what they are:
 *         file (default: /dev/null), udp (unbound UDP sockets),
 *         tcp_listen (TCP sockets listening on 127.0.0.1, ephemeral ports),
 *         mixed (1/3 of each)
 * TARGET  program (or, for system/popen, the shell command); default /bin/true
 *
 * BENCH_THREADS=N starts N busy threads first (each wakes every millisecond and
 * works ~20 µs): a multi-threaded parent, as uWSGI workers and JVMs are.
 *
 * MODE forkexecvp is forkexec through execvp with TARGET's basename, searched in
 * PATH (perl's system, xargs, env, nohup and many C daemons exec so).
 *
 * MODE start measures process start alone: it posix_spawns TARGET with an
 * environment that has LD_PRELOAD=$BENCH_CHILD_PRELOAD (none when empty), so
 * that only the child loads the preload; run this driver itself without one.
 *
 * Lockstep (BENCH_GO and BENCH_DONE name two FIFOs): after setup and the
 * warm-up child the driver writes 'R' to DONE, then for each byte 'r' read
 * from GO starts one child and answers 'd'; 'q' or end of file stops it.
 * scripts/bench runs one driver per variant and hands the token round, so
 * that the variants alternate child by child and share the machine's mood.
 * The FIFOs are opened O_CLOEXEC after startup: no child inherits them.
 *
 * BENCH_FLOOR_CALLS=LOGFILE makes, at each spawn, the system calls a first report
 * of the leaked fds makes beyond what a repeat of the same finding makes
 * (scripts/bench: the report's own system-call floor), in the place where the
 * shim makes them: in the fork child before execve (forkexec, vforkexec), in the
 * parent before the spawn (posix_spawn, system, popen). They are the calls strace
 * shows a first report adding to a repeat (`strace -f` of both, 7 Dec 2026), made
 * as the shim makes them (raw fstat and readlinkat, not libc's newfstatat and
 * readlink): one fstat per fd >= 3 (the finding's identity and the kinds; no
 * F_GETFD, which a repeat needs as much, and which the shim's hooks answer for an
 * fd made by open(): see postfork/fdgen.rs); 8 readlinkats (8 fds' paths), and
 * /proc/self/exe's in a fork child (a parent keeps it from its first report);
 * uname, getppid and gettid (the line's host, ppid and tid); and one 2 800-byte
 * line appended to LOGFILE (open, fstat, fstatfs, write, close). Run with the
 * empty preload, it is the report's system-call floor measured in situ: cold
 * caches and a fresh fork child's page tables included, nothing of the shim's own.
 *
 * One untimed child warms the caches first.  Output, one line of key=value:
 *   ns_per_iter = wall time of the loop / ITERS;
 *   cpu_ns_per_iter = CPU time (user + system) of this process and of all its
 *   waited-for descendants over the loop / ITERS: unlike wall time it does not
 *   count time spent waiting for a CPU that other work on the machine holds;
 *   self_cpu_ns_per_iter = the part of it spent in this process (where a
 *   parent-side audit and its report run: posix_spawn, system, popen), the rest
 *   being the children's;
 *   failures = children that did not exit 0;
 *   wall_us / cpu_us / self_us = per child: its wall time, the CPU time of this
 *   process and its children over it, and the part of that spent in this process
 *   (comma separated, in lockstep).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long tv_ns(struct timeval tv) {
    return (long long)tv.tv_sec * 1000000000LL + (long long)tv.tv_usec * 1000LL;
}

/* user + system time of this process alone */
static long long self_cpu_ns(void) {
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    return tv_ns(self.ru_utime) + tv_ns(self.ru_stime);
}

/* user + system time of this process and its reaped descendants; *own gets the
 * part that is this process's */
static long long cpu_ns_own(long long *own) {
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    *own = tv_ns(self.ru_utime) + tv_ns(self.ru_stime);
    return *own + tv_ns(kids.ru_utime) + tv_ns(kids.ru_stime);
}

static long long cpu_ns(void) {
    long long own;
    return cpu_ns_own(&own);
}

static int leak_one(const char *kind, int i) {
    if (strcmp(kind, "mixed") == 0) {
        static const char *kinds[] = {"file", "udp", "tcp_listen"};
        kind = kinds[i % 3];
    }
    if (strcmp(kind, "udp") == 0) return socket(AF_INET, SOCK_DGRAM, 0);
    if (strcmp(kind, "tcp_listen") == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) return -1;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) {
            close(s);
            return -1;
        }
        return s;
    }
    return open("/dev/null", O_RDONLY); /* no O_CLOEXEC: that is the point */
}

/* environment for MODE start: ours minus any LD_PRELOAD, plus the child's */
static char **child_env(void) {
    const char *pre = getenv("BENCH_CHILD_PRELOAD");
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env) return environ;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[j++] = environ[i];
    if (pre && *pre) {
        size_t len = strlen(pre) + 12;
        char *s = malloc(len);
        if (s) {
            snprintf(s, len, "LD_PRELOAD=%s", pre);
            env[j++] = s;
        }
    }
    env[j] = NULL;
    return env;
}

static int wait_ok(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* fstat as the shim makes it: the fstat system call (glibc's fstat is newfstatat
 * with an empty path, a little dearer) */
static int raw_fstat(int fd, struct stat *st) {
#ifdef SYS_fstat
    return (int)syscall(SYS_fstat, fd, st);
#else
    return fstat(fd, st);
#endif
}

static const char *floor_log; /* BENCH_FLOOR_CALLS */
static int floor_top;          /* highest fd open at setup */
static char floor_open[4096];  /* which fds below it were open at setup */
static char floor_line[2800]; /* the shim's line for 200 files: about 2 700 bytes */

/* The first report's system calls (see BENCH_FLOOR_CALLS); async-signal-safe, so
 * that it may run in a vfork child. in_child: made in a fork child (the shim reads
 * /proc/self/exe there; a parent has it from its first report). */
static void floor_calls(int in_child) {
    if (!floor_log) return;
    int paths = 0;
    struct stat st;
    for (int fd = 3; fd <= floor_top; fd++) {
        if (!floor_open[fd]) continue;
        (void)raw_fstat(fd, &st);
        if (paths < 8) {
            char link[32] = "/proc/self/fd/", digits[12], buf[160];
            int n = 0, len = 14;
            for (int v = fd; v > 0 && n < 11; v /= 10) digits[n++] = (char)('0' + v % 10);
            while (n > 0) link[len++] = digits[--n];
            link[len] = 0;
            (void)syscall(SYS_readlinkat, AT_FDCWD, link, buf, sizeof buf);
            paths++;
        }
    }
    if (in_child) {
        char exe[512];
        (void)syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe);
    }
    struct utsname u;
    (void)uname(&u);
    (void)syscall(SYS_getppid);
    (void)syscall(SYS_gettid);
    int lf = open(floor_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
    if (lf >= 0) {
        struct statfs sf;
        (void)raw_fstat(lf, &st);
        (void)fstatfs(lf, &sf);
        (void)write(lf, floor_line, sizeof floor_line);
        close(lf);
    }
}

/* start one child, wait for it; 1 when it exited 0 */
static int one(const char *mode, const char *target, char **env) {
    char *argv[] = {(char *)target, NULL};
    if (strcmp(mode, "forkexec") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            floor_calls(1);
            execve(target, argv, environ);
            _exit(127);
        }
        return pid > 0 && wait_ok(pid);
    }
    if (strcmp(mode, "forkexecvp") == 0) {
        const char *slash = strrchr(target, '/');
        const char *name = slash ? slash + 1 : target;
        char *vpargv[] = {(char *)name, NULL};
        pid_t pid = fork();
        if (pid == 0) {
            floor_calls(1);
            execvp(name, vpargv);
            _exit(127);
        }
        return pid > 0 && wait_ok(pid);
    }
    if (strcmp(mode, "vforkexec") == 0) {
        pid_t pid = vfork();
        if (pid == 0) {
            floor_calls(1);
            execve(target, argv, environ);
            _exit(127);
        }
        return pid > 0 && wait_ok(pid);
    }
    if (strcmp(mode, "posix_spawn") == 0 || strcmp(mode, "start") == 0) {
        if (strcmp(mode, "posix_spawn") == 0) floor_calls(0);
        pid_t pid;
        if (posix_spawn(&pid, target, NULL, NULL, argv, env) != 0) return 0;
        return wait_ok(pid);
    }
    if (strcmp(mode, "system") == 0) {
        floor_calls(0);
        int st = system(target);
        return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    if (strcmp(mode, "popen") == 0) {
        floor_calls(0);
        FILE *f = popen(target, "r");
        if (!f) return 0;
        char buf[256];
        while (fread(buf, 1, sizeof buf, f) > 0) {
        }
        int st = pclose(f);
        return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    return 0;
}

static void *busy(void *arg) {
    volatile unsigned long x = (unsigned long)arg;
    for (;;) {
        long long until = now_ns() + 20000;
        while (now_ns() < until) x = x * 6364136223846793005UL + 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s forkexec|forkexecvp|vforkexec|posix_spawn|system|popen|start ITERS LEAK [TARGET]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    long iters = atol(argv[2]);
    long leak = atol(argv[3]);
    const char *target = argc > 4 ? argv[4] : "/bin/true";
    static const char *modes[] = {"forkexec", "forkexecvp", "vforkexec", "posix_spawn", "system", "popen", "start"};
    int known = 0;
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) known |= strcmp(mode, modes[i]) == 0;
    if (!known || iters < 1 || leak < 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    const char *kind = getenv("BENCH_LEAK_KIND");
    if (!kind || !*kind) kind = "file";

    long leaked = 0;
    for (long i = 0; i < leak; i++) {
        if (leak_one(kind, (int)i) < 0) {
            fprintf(stderr, "leaking fd %ld (%s): %s\n", i, kind, strerror(errno));
            return 1;
        }
        leaked++;
    }
    floor_log = getenv("BENCH_FLOOR_CALLS");
    if (floor_log && !*floor_log) floor_log = NULL;
    for (int fd = 3; fd < 3 + leaked + 64 && leaked; fd++)
        if (fd < (int)sizeof floor_open && fcntl(fd, F_GETFD) >= 0) floor_open[floor_top = fd] = 1;
    memset(floor_line, 'x', sizeof floor_line);
    floor_line[sizeof floor_line - 1] = '\n';

    const char *threads = getenv("BENCH_THREADS");
    for (long i = 0; threads && i < atol(threads); i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, busy, (void *)i) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }

    char **env = strcmp(mode, "start") == 0 ? child_env() : environ;

    (void)one(mode, target, env); /* warm-up, untimed */
    long failures = 0;
    const char *go_path = getenv("BENCH_GO"), *done_path = getenv("BENCH_DONE");
    if (go_path && *go_path && done_path && *done_path) {
        int go = open(go_path, O_RDONLY | O_CLOEXEC);
        int done = open(done_path, O_WRONLY | O_CLOEXEC);
        if (go < 0 || done < 0) {
            fprintf(stderr, "open %s / %s: %s\n", go_path, done_path, strerror(errno));
            return 1;
        }
        long long *wall = calloc((size_t)iters, sizeof *wall);
        long long *cpu = calloc((size_t)iters, sizeof *cpu);
        long long *own = calloc((size_t)iters, sizeof *own);
        if (!wall || !cpu || !own) return 1;
        long n = 0;
        long long wall_sum = 0, cpu_sum = 0, own_sum = 0;
        if (write(done, "R", 1) != 1) return 1;
        while (n < iters) {
            char c;
            ssize_t r = read(go, &c, 1);
            if (r < 0 && errno == EINTR) continue;
            if (r != 1 || c == 'q') break;
            long long o0, o1;
            long long c0 = cpu_ns_own(&o0), t0 = now_ns();
            failures += !one(mode, target, env);
            long long t1 = now_ns(), c1 = cpu_ns_own(&o1);
            wall[n] = t1 - t0;
            cpu[n] = c1 - c0;
            own[n] = o1 - o0;
            wall_sum += wall[n];
            cpu_sum += cpu[n];
            own_sum += own[n];
            n++;
            if (write(done, "d", 1) != 1) return 1;
        }
        if (n == 0) return 1;
        printf("mode=%s iters=%ld leak=%ld leak_kind=%s ns_per_iter=%.1f cpu_ns_per_iter=%.1f self_cpu_ns_per_iter=%.1f "
               "total_ns=%lld failures=%ld wall_us=",
               mode, n, leaked, kind, (double)wall_sum / n, (double)cpu_sum / n, (double)own_sum / n, wall_sum, failures);
        for (long i = 0; i < n; i++) printf("%s%.1f", i ? "," : "", wall[i] / 1000.0);
        printf(" cpu_us=");
        for (long i = 0; i < n; i++) printf("%s%.1f", i ? "," : "", cpu[i] / 1000.0);
        printf(" self_us=");
        for (long i = 0; i < n; i++) printf("%s%.1f", i ? "," : "", own[i] / 1000.0);
        printf("\n");
        return failures ? 3 : 0;
    }

    long long c0 = cpu_ns(), s0 = self_cpu_ns();
    long long t0 = now_ns();
    for (long i = 0; i < iters; i++) failures += !one(mode, target, env);
    long long t1 = now_ns();
    long long c1 = cpu_ns(), s1 = self_cpu_ns();

    printf("mode=%s iters=%ld leak=%ld leak_kind=%s ns_per_iter=%.1f cpu_ns_per_iter=%.1f self_cpu_ns_per_iter=%.1f total_ns=%lld failures=%ld\n",
           mode, iters, leaked, kind, (double)(t1 - t0) / iters, (double)(c1 - c0) / iters, (double)(s1 - s0) / iters, t1 - t0,
           failures);
    return failures ? 3 : 0;
}
