/* Deadlock hunt: fork+exec from a process whose other threads hold malloc and stdio
 * locks all the time and call the shim's other hooks (pthread_sigmask, dup3, fcntl)
 * while it forks. Four threads allocate, free and printf in a loop while the
 * main thread does N fork+execv of /bin/true with one fd leaked (so that a shim
 * writes an event at every exec). A hook that takes a lock or allocates between
 * fork and exec hangs the child sooner or later; the test's watchdog catches it.
 *
 * usage: stress_fork N LEAKFILE     stdout (threads' chatter aside): done=N failed=N */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *chatter(void *arg)
{
    long id = (long)arg;
    unsigned long i = 0;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* The other hooked calls, racing the forks: masks and fd bookkeeping (all
         * CLOEXEC, so that no child inherits them). */
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
        if (i % 16 == 0) {
            int d = dup3(3, 100 + (int)id, O_CLOEXEC);
            int e = fcntl(3, F_DUPFD_CLOEXEC, 200);
            close(d);
            close(e);
        }
        size_t n = 16 + (i * 7919 + id * 104729) % 8192;
        char *p = malloc(n);
        memset(p, (int)i, n);
        char *q = realloc(p, n * 2);
        fprintf(stderr, "t%ld %lu %d\n", id, i, q[n - 1]);
        free(q);
        i++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: stress_fork N LEAKFILE\n");
        return 2;
    }
    int n = atoi(argv[1]);
    close_range(3, ~0U, 0);
    if (open(argv[2], O_RDONLY) < 0) /* the leak: every exec reports it */
        return 99;
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, chatter, (void *)i);
    int done = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char *args[] = {"true", NULL};
            execv("/bin/true", args);
            _exit(127);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed++;
        else
            done++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    printf("done=%d failed=%d\n", done, failed);
    return failed != 0;
}
