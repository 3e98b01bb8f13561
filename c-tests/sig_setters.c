/* sig_setters: SIGUSR1 ignored (or not) by one of libc's ways of setting a
 * disposition, or by the raw system call, then PROBE started by fork+exec from a
 * fork child (the exec audit there asks the kernel only about signals a hook saw
 * change: hooks/sigdisp.rs).
 *
 * usage: sig_setters WAY PROBE [then-default]
 *   WAY: signal | sigaction | __sigaction | bsd_signal | sysv_signal | ssignal |
 *        sigset | sigignore | raw | none
 *   then-default: after ignoring it, set SIGUSR1 back to SIG_DFL the same way
 *   (sigignore and none: with signal())
 * Also ignores SIGUSR2 with signal() from a second thread while the main thread
 * forks: the child's exec must see that one too.
 * stdout: the probe's line, then status=exit:N */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
extern sighandler_t __sysv_signal(int, sighandler_t);
extern sighandler_t ssignal(int, sighandler_t);
extern sighandler_t bsd_signal(int, sighandler_t);
/* sigset and sigignore are deprecated (and still in every libc): tested on purpose */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static int set(const char *way, int sig, sighandler_t h)
{
    if (!strcmp(way, "signal"))
        return signal(sig, h) == SIG_ERR;
    if (!strcmp(way, "sigaction") || !strcmp(way, "__sigaction")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = h;
        return (!strcmp(way, "sigaction") ? sigaction(sig, &sa, NULL) : __sigaction(sig, &sa, NULL)) != 0;
    }
    if (!strcmp(way, "bsd_signal"))
        return bsd_signal(sig, h) == SIG_ERR;
    if (!strcmp(way, "sysv_signal"))
        return __sysv_signal(sig, h) == SIG_ERR;
    if (!strcmp(way, "ssignal"))
        return ssignal(sig, h) == SIG_ERR;
    if (!strcmp(way, "sigset"))
        return sigset(sig, h) == SIG_ERR;
    if (!strcmp(way, "sigignore"))
        return h == SIG_IGN ? sigignore(sig) != 0 : signal(sig, h) == SIG_ERR;
    if (!strcmp(way, "raw")) {
        /* the kernel's struct: handler, flags, restorer, mask */
        unsigned long ka[4] = { (unsigned long)h, 0, 0, 0 };
        return syscall(SYS_rt_sigaction, sig, ka, NULL, 8) != 0;
    }
    if (!strcmp(way, "none"))
        return h == SIG_IGN ? 0 : signal(sig, h) == SIG_ERR;
    return 1;
}

static void *other(void *arg)
{
    (void)arg;
    signal(SIGUSR2, SIG_IGN);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    if (set(argv[1], SIGUSR1, SIG_IGN))
        return 3;
    if (argc > 3 && set(argv[1], SIGUSR1, SIG_DFL))
        return 4;
    pthread_t t;
    if (pthread_create(&t, NULL, other, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 5;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = { argv[2], NULL };
        execve(argv[2], args, environ);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("status=exit:%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
    return 0;
}
