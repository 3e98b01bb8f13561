/* Incident 3 (uWSGI --threads runs hping3 via subprocess): a worker thread blocks
 * every signal, then forks and execs a program that relies on alarm(). The mask
 * survives fork and exec, so SIGALRM stays pending forever and the program never
 * finishes. Here the exec'd child arms alarm(1) with a SIGALRM handler and gives up
 * by itself after 3 s, exiting 42 ("the alarm never came"); 0 means it came.
 *
 * usage: thread_mask           (parent)
 *        thread_mask --child   (what the thread execs)
 *        thread_mask --loop N  (blocks and unblocks SIGALRM N times: rate limit)
 *        thread_mask --errors  (bad arguments: the real functions' answers)
 *        thread_mask --last-blocker A|B
 *            site A blocks SIGALRM, unblocks it, site B blocks SIGTERM, and with A
 *            site A blocks SIGALRM again; then a fork+exec (--quick child, exit 0).
 *            The exec's blocked_by must name the last site that blocked something
 *            new, A or B.
 *        thread_mask --chld-first pthread|proc
 *            one site blocks SIGCHLD alone and unblocks it (the waitpid idiom: no
 *            event, but the site is the thread's last blocker), then blocks and
 *            unblocks SIGALRM 1000 times: one sigmask_block, for SIGALRM.
 * stdout: child_pid=N  then  child=exit:N|signal:N */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

/* fork, exec this program with ARG in the child, wait; prints child_pid= and child= */
static void run_self(const char *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {(char *)self, (char *)arg, NULL};
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
}

static void *worker(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* the bug: inherited by every child */
    run_self("--child");
    return NULL;
}

/* A hot loop that blocks and unblocks SIGALRM from one call site: the shim's
 * sigmask_block is info, and must stay rate-limited. */
static int loop(int n)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    for (int i = 0; i < n; i++) {
        pthread_sigmask(SIG_BLOCK, &s, NULL);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    }
    printf("loops=%d\n", n);
    return 0;
}

/* Bad arguments get the real functions' answers: pthread_sigmask returns the error,
 * sigprocmask sets errno. */
static int errors(void)
{
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    int r1 = pthread_sigmask(12345, &s, NULL);
    errno = 0;
    int r2 = sigprocmask(12345, &s, NULL);
    int e2 = errno;
    errno = 0;
    int r3 = sigprocmask(SIG_BLOCK, &s, (sigset_t *)8); /* a bad old pointer: EFAULT */
    int e3 = errno;
    sigprocmask(SIG_BLOCK, NULL, &old);
    printf("errors=%s,%d:%s,%d:%s alrm_blocked=%d\n", strerrorname_np(r1), r2, strerrorname_np(e2), r3,
           strerrorname_np(e3), sigismember(&old, SIGALRM));
    return 0;
}

static inline __attribute__((always_inline)) void mask_call(int how, int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(how, &s, NULL);
}

static __attribute__((noinline)) void site_a(int how)
{
    mask_call(how, SIGALRM);
    __asm__ volatile("" ::: "memory"); /* keep the call from becoming a tail jump */
}

static __attribute__((noinline)) void site_b(void)
{
    mask_call(SIG_BLOCK, SIGTERM);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void site_c(int how, int sig, int pthread)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    if (pthread)
        pthread_sigmask(how, &s, NULL);
    else
        sigprocmask(how, &s, NULL);
    __asm__ volatile("" ::: "memory");
}

static int chld_first(int pthread)
{
    site_c(SIG_BLOCK, SIGCHLD, pthread);
    site_c(SIG_UNBLOCK, SIGCHLD, pthread);
    for (int i = 0; i < 1000; i++) {
        site_c(SIG_BLOCK, SIGALRM, pthread);
        site_c(SIG_UNBLOCK, SIGALRM, pthread);
    }
    printf("done\n");
    return 0;
}

static int last_blocker(char which)
{
    site_a(SIG_BLOCK);
    site_a(SIG_UNBLOCK);
    site_b();
    if (which == 'A')
        site_a(SIG_BLOCK);
    run_self("--quick");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--quick") == 0)
        return 0;
    if (argc == 3 && strcmp(argv[1], "--last-blocker") == 0) {
        self = argv[0];
        return last_blocker(argv[2][0]);
    }
    if (argc == 3 && strcmp(argv[1], "--chld-first") == 0)
        return chld_first(strcmp(argv[2], "pthread") == 0);
    if (argc == 2 && strcmp(argv[1], "--child") == 0)
        return child();
    if (argc == 2 && strcmp(argv[1], "--errors") == 0)
        return errors();
    if (argc == 3 && strcmp(argv[1], "--loop") == 0)
        return loop(atoi(argv[2]));
    close_range(3, ~0U, 0);
    self = argv[0];
    fflush(stdout);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL))
        return 99;
    pthread_join(t, NULL);
    return 0;
}
