/* Incident 3 (uWSGI --threads runs hping3 via subprocess): a worker thread blocks
 * every signal, then forks and execs a program that relies on alarm(). The mask
 * survives fork and exec, so SIGALRM stays pending forever and the program never
 * finishes. Here the exec'd child arms alarm(1) with a SIGALRM handler and gives up
 * by itself after 3 s, exiting 42 ("the alarm never came"); 0 means it came.
 *
 * usage: thread_mask           (parent)
 *        thread_mask --child   (what the thread execs)
 * stdout: child_pid=N  then  child=exit:N|signal:N */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_alarm;

static void on_alarm(int sig)
{
    (void)sig;
    got_alarm = 1;
}

static int child(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    struct timespec start, now, slice = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        if (got_alarm)
            return 0;
        nanosleep(&slice, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 3000);
    return got_alarm ? 0 : 42;
}

static const char *self;

static void *worker(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* the bug: inherited by every child */

    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {(char *)self, "--child", NULL};
        execv(self, args);
        _exit(127);
    }
    printf("child_pid=%d\n", pid);
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st))
        printf("child=exit:%d\n", WEXITSTATUS(st));
    else
        printf("child=signal:%d\n", WTERMSIG(st));
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--child") == 0)
        return child();
    close_range(3, ~0U, 0);
    self = argv[0];
    fflush(stdout);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL))
        return 99;
    pthread_join(t, NULL);
    return 0;
}
