/* One finding, one line (issue 13): the same leak at every spawn, N times.
 * A program holds a non-CLOEXEC listening socket (127.0.0.1, ephemeral port) and a
 * non-CLOEXEC /dev/null, and starts /bin/true N times the same way: every exec is
 * the same exec_fd_leak finding (and, for system/popen, the same system_blocking).
 *
 * usage: repeat_spawns HOW N [WORKERS [EXIT_AT [MIN_SECONDS]]]
 *   HOW: forkexec posix_spawn system popen; vfork: vfork + execv (CPython's
 *     subprocess); rawfork: syscall(SYS_fork) + execv, a child the fork hook never
 *     sees (no shared table: every line in full)
 *   WORKERS: 0 spawns from this process; K > 0 forks K workers that each spawn
 *     N/K times and exit() (the parent waits for them, then exits); -K: the
 *     parent forks K workers and execs `repeat_spawns reap K` at once (a wrapper
 *     that execs while its forked helpers go on), and each worker spawns only
 *     once that exec is done (the table's owner is gone).
 *   EXIT_AT: > 0: exit() right after that many spawns, in the middle of the loop
 *     (no return from main; pending counts must still reach the log); < 0: after
 *     -EXIT_AT spawns, exec /bin/true itself (with the same leaked fds: one more
 *     occurrence of the same finding, and the process's table is lost at exec).
 *   MIN_SECONDS: stretch the loop over at least this long (spawns spread evenly),
 *     for the repeat interval.
 * stdout: spawned=N (the spawns that ran, each worker and the parent). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "raw_fork.h"

extern char **environ;

static void leak_fds(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* the bug: no SOCK_CLOEXEC */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16)) {
        perror("repeat_spawns: listener");
        exit(99);
    }
    if (open("/dev/null", O_RDONLY) < 0) { /* no O_CLOEXEC either */
        perror("repeat_spawns: /dev/null");
        exit(99);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void spawn_one(const char *how)
{
    char *argv[] = {"/bin/true", NULL};
    int st = 0;
    if (!strcmp(how, "vfork")) {
        pid_t pid = vfork();
        if (pid == 0) {
            execv("/bin/true", argv);
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            exit(98);
    } else if (!strcmp(how, "forkexec") || !strcmp(how, "rawfork")) {
        pid_t pid = strcmp(how, "rawfork") ? fork() : raw_fork();
        if (pid == 0) {
            execv("/bin/true", argv);
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            exit(98);
    } else if (!strcmp(how, "posix_spawn")) {
        pid_t pid;
        if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) || waitpid(pid, &st, 0) != pid)
            exit(98);
    } else if (!strcmp(how, "system")) {
        st = system("/bin/true");
    } else if (!strcmp(how, "popen")) {
        FILE *f = popen("/bin/true", "r");
        if (!f)
            exit(98);
        st = pclose(f);
    } else {
        fprintf(stderr, "repeat_spawns: unknown HOW %s\n", how);
        exit(2);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        exit(97);
}

static void loop(const char *how, int n, int exit_at, double min_s)
{
    double t0 = now();
    for (int i = 1; i <= n; i++) {
        spawn_one(how);
        if (exit_at > 0 && i == exit_at) {
            printf("spawned=%d\n", i);
            fflush(stdout);
            exit(0);
        }
        if (exit_at < 0 && i == -exit_at) {
            char *argv[] = {"/bin/true", NULL};
            printf("spawned=%d\n", i);
            fflush(stdout);
            execv("/bin/true", argv);
            exit(96);
        }
        double due = t0 + min_s * i / n;
        while (now() < due)
            usleep(1000);
    }
    printf("spawned=%d\n", n);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: repeat_spawns HOW N [WORKERS [EXIT_AT [MIN_SECONDS]]]\n");
        return 2;
    }
    const char *how = argv[1];
    int n = atoi(argv[2]);
    if (!strcmp(how, "reap")) { /* the exec'd wrapper: waits for the workers it had */
        int bad = 0, st;
        for (int w = 0; w < n; w++)
            if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                bad++;
        return bad ? 95 : 0;
    }
    int workers = argc > 3 ? atoi(argv[3]) : 0;
    int exit_at = argc > 4 ? atoi(argv[4]) : 0;
    double min_s = argc > 5 ? atof(argv[5]) : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    leak_fds();
    if (workers < 0) {
        int gate[2]; /* the parent's write end closes at its exec: EOF says "gone" */
        char c, k[16];
        if (pipe2(gate, O_CLOEXEC))
            return 96;
        for (int w = 0; w < -workers; w++) {
            pid_t pid = fork();
            if (pid == 0) {
                close(gate[1]);
                while (read(gate[0], &c, 1) > 0)
                    ;
                loop(how, n / -workers, exit_at, min_s);
                exit(0);
            }
            if (pid < 0)
                return 96;
        }
        snprintf(k, sizeof k, "%d", -workers);
        execl("/proc/self/exe", argv[0], "reap", k, (char *)NULL);
        return 96;
    }
    if (workers == 0) {
        loop(how, n, exit_at, min_s);
        return 0;
    }
    for (int w = 0; w < workers; w++) {
        pid_t pid = fork();
        if (pid == 0) {
            loop(how, n / workers, exit_at, min_s);
            exit(0); /* exit(), not _exit: destructors run in the worker too */
        }
        if (pid < 0)
            return 96;
    }
    int bad = 0, st;
    for (int w = 0; w < workers; w++)
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    return bad ? 95 : 0;
}
