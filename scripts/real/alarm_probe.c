/* A program that needs SIGALRM, like hping3: arm a timer, sleep in pause(),
 * finish from the SIGALRM handler.  With SIGALRM blocked (inherited mask) the
 * signal stays pending and pause() never returns.
 *
 *   alarm_probe [MILLISECONDS]   (default 200)
 * Prints the inherited blocked mask (hex, as in /proc/self/status SigBlk) first. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "alarm_probe: SIGALRM delivered\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(0);
}

int main(int argc, char **argv) {
    long ms = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    unsigned long long bits = 0;
    for (int s = 1; s < 64; s++)
        if (sigismember(&cur, s) == 1) bits |= 1ULL << (s - 1);
    printf("alarm_probe: pid %d blocked %016llx SIGALRM %s\n", (int)getpid(), bits,
           sigismember(&cur, SIGALRM) == 1 ? "blocked" : "unblocked");
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (;;) pause(); /* like hping3's poll loop: only the signal ends it */
}
