/* rel_select: select()/pselect() with any nfds and garbage fd sets (issue 7).
 * Each set is exactly ceil(nfds/64)*8 bytes and ends where a PROT_NONE guard page
 * begins, so whoever reads one byte past what nfds allows gets SIGSEGV. The sets
 * hold random bits. Prints a digest of every result, errno and returned set, so a
 * run under the shim can be compared with one without it.
 *   rel_select SEED ITERATIONS
 *   rel_select cap NFDS   one select(NFDS) on plain 1024-bit fd_sets (128 bytes, then
 *                         the guard page): the kernel reads only up to its fd table
 *                         size (it caps nfds), so this works without the shim */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

static uint64_t rng;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define PAGE 4096
#define MAXN 100000
/* Room for the largest set, rounded to pages, plus the guard page. */
#define AREA ((((MAXN + 63) / 64 * 8) + PAGE - 1) / PAGE * PAGE)

static unsigned char *area[3];

static fd_set *place(int k, size_t bytes)
{
    return (fd_set *)(area[k] + AREA - bytes);
}

static int pick_nfds(void)
{
    switch (next() % 8) {
    case 0: return (int)(next() % 1100);
    case 1: return 1024 + (int)(next() % 130) - 64;
    case 2: return 1 + (int)(next() % 64) * 64; /* word boundaries */
    case 3: return (int)(next() % 64) * 64;
    case 4: return -(int)(next() % 3);
    default: return (int)(next() % (MAXN + 1));
    }
}

static int cap(int nfds)
{
    fd_set *s[3];
    for (int k = 0; k < 3; k++) {
        unsigned char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED || mprotect(m + PAGE, PAGE, PROT_NONE) != 0)
            return 2;
        s[k] = (fd_set *)(m + PAGE - sizeof(fd_set));
        FD_ZERO(s[k]);
    }
    FD_SET(1, s[1]);
    struct timeval tv = {0, 0};
    errno = 0;
    int r = select(nfds, s[0], s[1], s[2], &tv);
    printf("nfds=%d r=%d errno=%d\n", nfds, r, r < 0 ? errno : 0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "cap"))
        return cap(atoi(argv[2]));
    rng = argc > 1 ? strtoull(argv[1], NULL, 10) | 1 : 1;
    long iters = argc > 2 ? atol(argv[2]) : 1000;
    for (int k = 0; k < 3; k++) {
        unsigned char *m = mmap(NULL, AREA + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED || mprotect(m + AREA, PAGE, PROT_NONE) != 0) {
            perror("mmap/mprotect");
            return 2;
        }
        area[k] = m;
    }
    uint64_t digest = 1469598103934665603ull;
    long overflow_calls = 0, max_nfds = 0;
    for (long i = 0; i < iters; i++) {
        int nfds = pick_nfds();
        size_t bytes = nfds > 0 ? ((size_t)nfds + 63) / 64 * 8 : 0;
        fd_set *s[3];
        for (int k = 0; k < 3; k++) {
            s[k] = place(k, bytes);
            unsigned char *p = (unsigned char *)s[k];
            int mode = (int)(next() % 4);
            for (size_t b = 0; b < bytes; b++)
                p[b] = mode == 0 ? 0 : mode == 1 ? 0xff : (unsigned char)next();
            if (next() % 5 == 0)
                s[k] = NULL;
        }
        if (nfds > max_nfds)
            max_nfds = nfds;
        if (nfds > 1024)
            overflow_calls++;
        int r;
        errno = 0;
        if (i % 2) {
            struct timeval tv = {0, 0};
            r = select(nfds, s[0], s[1], s[2], &tv);
        } else {
            struct timespec ts = {0, 0};
            r = pselect(nfds, s[0], s[1], s[2], &ts, NULL);
        }
        int e = r < 0 ? errno : 0;
        digest = (digest ^ (uint64_t)(r + 7)) * 1099511628211ull;
        digest = (digest ^ (uint64_t)e) * 1099511628211ull;
        for (int k = 0; k < 3; k++)
            if (s[k] && r >= 0)
                for (size_t b = 0; b < bytes; b++)
                    digest = (digest ^ ((unsigned char *)s[k])[b]) * 1099511628211ull;
    }
    printf("iterations=%ld overflow_calls=%ld max_nfds=%ld digest=%016llx\n", iters, overflow_calls, max_nfds,
           (unsigned long long)digest);
    return 0;
}
