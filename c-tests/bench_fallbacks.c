/* bench_fallbacks: what the old-kernel fallbacks cost (issue 12, docs/design.md).
 * Run it preloaded, with and without c-tests/seccomp_deny.c in front:
 *   bench_fallbacks select N   N select() calls with nfds 1501 and fd 1500 set, all
 *                              reported (keep N <= 8, the rate limit's free calls):
 *                              µs per call (process_vm_readv, or the pipe copy)
 *   bench_fallbacks system CMD system(CMD) while holding a listening socket (the
 *                              shim watches it: pidfd, or polling): wall ms of the
 *                              call and the caller's own CPU ms */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double us_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1e6 + (b.tv_nsec - a->tv_nsec) / 1e3;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    if (!strcmp(argv[1], "select")) {
        int n = atoi(argv[2]);
        if (dup2(1, 1500) < 0)
            return 1;
        unsigned long set[32];
        double total = 0;
        for (int i = 0; i < n; i++) {
            memset(set, 0, sizeof set);
            set[1500 / 64] |= 1UL << (1500 % 64);
            struct timeval tv = {0, 0};
            struct timespec a;
            clock_gettime(CLOCK_MONOTONIC, &a);
            select(1501, NULL, (fd_set *)set, NULL, &tv);
            total += us_since(&a);
        }
        printf("select_us_per_call=%.1f\n", total / n);
        return 0;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    if (s < 0 || bind(s, (void *)&a, sizeof a) || listen(s, 1))
        return 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    system(argv[2]);
    double wall = us_since(&t0) / 1e3;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("system_wall_ms=%.1f cpu_ms=%.2f\n", wall,
           (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
    return 0;
}
