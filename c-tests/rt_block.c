/* rt_block: blocks SIGRTMIN and SIGRTMIN+2 — as this program's libc numbers them
 * (glibc: 34 and 36; musl, which reserves 34 too: 35 and 37) — then execs the
 * probe. The shim must name them as the program does: SIGRTMIN, SIGRTMIN+2.
 *   rt_block PROBE */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &s, NULL);
    printf("rtmin=%d\n", SIGRTMIN);
    fflush(stdout);
    execl(argv[1], argv[1], (char *)NULL);
    perror("rt_block: exec");
    return 127;
}
