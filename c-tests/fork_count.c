/* fork_count: forks from a multi-threaded parent, for the fork hook's `fork_threads`.
 *
 *   fork_count N
 *
 * Starts 2 idle threads (blocked on a pipe), then forks N times at each of four
 * stack depths (each child _exits at once; the parent waits), and prints the page
 * faults of the parent per fork (getrusage: the idle threads fault nothing):
 *
 *   faults_per_fork=F
 *
 * An idle parent's fork costs its own writes after the fork (glibc's unlocks, the
 * caller's stack); the hook must add none of its own at a repeat: a store into a
 * page the last fork write-protected, or a stack probe below the caller's pages, is
 * a fault at every fork of a busy server (with TLB shootdowns to its threads).
 *
 * Then one child starts a thread of its own and forks once: its `count` is its own
 * first multi-threaded fork, not its parent's N*4+1st. Exit status 0, or 1 on a
 * failure to start a thread or fork.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int hold[2];

static void *idle(void *arg) {
    char c;
    (void)arg;
    while (read(hold[0], &c, 1) < 0) {
    }
    return NULL;
}

static long faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt + ru.ru_majflt;
}

static int fork_wait(void) {
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        _exit(0);
    }
    int st;
    return waitpid(pid, &st, 0) == pid ? 0 : -1;
}

/* N forks with `depth` bytes more of the caller's stack in use. */
static int __attribute__((noinline)) forks_at(int n, size_t depth) {
    volatile char *pad = alloca(depth + 1);
    pad[0] = 1;
    pad[depth] = 1;
    for (int i = 0; i < n; i++) {
        if (fork_wait() != 0) {
            return -1;
        }
    }
    return pad[0] - 1;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    if (pipe(hold) != 0) {
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle, NULL) != 0) {
            return 1;
        }
    }
    /* The first fork of each kind pays for what is made once (the shim's table,
       its first line): not part of the per-fork figure. */
    if (fork_wait() != 0) {
        return 1;
    }
    static const size_t depths[] = {0, 1000, 2100, 3300};
    long before = faults();
    for (int d = 0; d < 4; d++) {
        if (forks_at(n, depths[d]) != 0) {
            return 1;
        }
    }
    long after = faults();
    printf("faults_per_fork=%.3f\n", (double)(after - before) / (4.0 * n));
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0) {
        return 1;
    }
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle, NULL) != 0) {
            _exit(1);
        }
        _exit(fork_wait() == 0 ? 0 : 1);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        return 1;
    }
    return 0;
}
