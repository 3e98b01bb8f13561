/* bench_calls: per-call cost of the hot hooked calls, for scripts/bench.
 *
 *   bench_calls CALL BLOCKS CALLS_PER_BLOCK [hooked|direct|both]
 *   CALL = sigprocmask | pthread_sigmask      block / unblock SIGWINCH in turn
 *        | sigprocmask_all | pthread_sigmask_all
 *                                         set the mask to "everything" / back
 *                                         to empty in turn (the critical-section
 *                                         pattern; it blocks SIGCHLD, SIGTERM...)
 *        | sigprocmask_save | pthread_sigmask_save
 *                                         block everything while saving the old
 *                                         mask, then restore the saved mask (the
 *                                         critical-section idiom of uWSGI, glibc
 *                                         and most libraries)
 *        | select                           poll one empty pipe, zero timeout
 *        | read                             64 bytes from /dev/zero
 *        | recv                             an empty socketpair, MSG_DONTWAIT (EAGAIN)
 *        | close                            an fd number that is not open (EBADF)
 *        | connect_udp                      re-connect a UDP socket to 127.0.0.1:9
 *   (the last four: the connect_storm hooks' path when nothing is wrong)
 *
 * Two paths are timed in the same process, block by block, alternating which
 * goes first (ABBA...), so that machine noise hits both alike:
 *   hooked: the call as the program makes it (through the PLT, so through the
 *           preloaded shim when there is one);
 *   direct: the same libc function, looked up in libc.so.6 itself with
 *           dlsym(handle), which never returns an interposer.
 * Without a preload both paths are libc and their difference is the
 * measurement's own offset; with the shim it is the cost the shim adds.
 *
 * Output, one line of key=value:
 *   hooked_ns direct_ns: median ns/call over the blocks of each path
 *   (blocks timed with the thread's CPU clock, see bench_clock)
 *   delta_ns:            median over block pairs of (hooked - direct) ns/call
 *   hooked_obj direct_obj: the objects the two function addresses live in
 *
 * "hooked" / "direct" as the last argument run one loop only (for callgrind,
 * which counts the instructions of bench_hooked_loop / bench_direct_loop).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum call_kind { C_SIGPROCMASK, C_PTHREAD_SIGMASK, C_SIGPROCMASK_ALL, C_PTHREAD_SIGMASK_ALL, C_SIGPROCMASK_SAVE, C_PTHREAD_SIGMASK_SAVE,
                 C_SELECT, C_READ, C_RECV, C_CLOSE, C_CONNECT_UDP };

typedef int (*sigprocmask_fn)(int, const sigset_t *, sigset_t *);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef int (*close_fn)(int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
static read_fn direct_read;
static recv_fn direct_recv;
static close_fn direct_close;
static connect_fn direct_connect;
static int zero_fd = -1, pair_fd = -1, udp_fd = -1;
static struct sockaddr_in udp_peer;
static char io_buf[64];
#define CLOSED_FD 900
static sigprocmask_fn direct_sigprocmask;
static sigprocmask_fn direct_pthread_sigmask;
static select_fn direct_select;
static sigset_t one_set, all_set, empty_set, saved_set;
static int sel_fd = -1;

/* Blocks are timed with this thread's CPU clock, which does not run while the
 * thread waits for a CPU that other work on the machine holds (a loaded
 * machine otherwise drowns nanoseconds); BENCH_CLOCK=wall for the wall clock. */
static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Each loop does n calls (see the top of the file for what each call does).
 * Both loops have the same shape so that only the callee differs. */
__attribute__((noinline)) void bench_hooked_loop(enum call_kind k, long n) {
    fd_set rd;
    struct timeval tv;
    for (long i = 0; i < n; i++) {
        switch (k) {
        case C_SIGPROCMASK:
            sigprocmask((i & 1) ? SIG_UNBLOCK : SIG_BLOCK, &one_set, NULL);
            break;
        case C_PTHREAD_SIGMASK:
            pthread_sigmask((i & 1) ? SIG_UNBLOCK : SIG_BLOCK, &one_set, NULL);
            break;
        case C_SIGPROCMASK_ALL:
            sigprocmask(SIG_SETMASK, (i & 1) ? &empty_set : &all_set, NULL);
            break;
        case C_PTHREAD_SIGMASK_ALL:
            pthread_sigmask(SIG_SETMASK, (i & 1) ? &empty_set : &all_set, NULL);
            break;
        case C_SIGPROCMASK_SAVE:
            if (i & 1)
                sigprocmask(SIG_SETMASK, &saved_set, NULL);
            else
                sigprocmask(SIG_SETMASK, &all_set, &saved_set);
            break;
        case C_PTHREAD_SIGMASK_SAVE:
            if (i & 1)
                pthread_sigmask(SIG_SETMASK, &saved_set, NULL);
            else
                pthread_sigmask(SIG_SETMASK, &all_set, &saved_set);
            break;
        case C_SELECT:
            FD_ZERO(&rd);
            FD_SET(sel_fd, &rd);
            tv.tv_sec = 0;
            tv.tv_usec = 0;
            select(sel_fd + 1, &rd, NULL, NULL, &tv);
            break;
        case C_READ:
            read(zero_fd, io_buf, sizeof io_buf);
            break;
        case C_RECV:
            recv(pair_fd, io_buf, sizeof io_buf, MSG_DONTWAIT);
            break;
        case C_CLOSE:
            close(CLOSED_FD);
            break;
        case C_CONNECT_UDP:
            connect(udp_fd, (struct sockaddr *)&udp_peer, sizeof udp_peer);
            break;
        }
    }
}

__attribute__((noinline)) void bench_direct_loop(enum call_kind k, long n) {
    fd_set rd;
    struct timeval tv;
    for (long i = 0; i < n; i++) {
        switch (k) {
        case C_SIGPROCMASK:
            direct_sigprocmask((i & 1) ? SIG_UNBLOCK : SIG_BLOCK, &one_set, NULL);
            break;
        case C_PTHREAD_SIGMASK:
            direct_pthread_sigmask((i & 1) ? SIG_UNBLOCK : SIG_BLOCK, &one_set, NULL);
            break;
        case C_SIGPROCMASK_ALL:
            direct_sigprocmask(SIG_SETMASK, (i & 1) ? &empty_set : &all_set, NULL);
            break;
        case C_PTHREAD_SIGMASK_ALL:
            direct_pthread_sigmask(SIG_SETMASK, (i & 1) ? &empty_set : &all_set, NULL);
            break;
        case C_SIGPROCMASK_SAVE:
            if (i & 1)
                direct_sigprocmask(SIG_SETMASK, &saved_set, NULL);
            else
                direct_sigprocmask(SIG_SETMASK, &all_set, &saved_set);
            break;
        case C_PTHREAD_SIGMASK_SAVE:
            if (i & 1)
                direct_pthread_sigmask(SIG_SETMASK, &saved_set, NULL);
            else
                direct_pthread_sigmask(SIG_SETMASK, &all_set, &saved_set);
            break;
        case C_SELECT:
            FD_ZERO(&rd);
            FD_SET(sel_fd, &rd);
            tv.tv_sec = 0;
            tv.tv_usec = 0;
            direct_select(sel_fd + 1, &rd, NULL, NULL, &tv);
            break;
        case C_READ:
            direct_read(zero_fd, io_buf, sizeof io_buf);
            break;
        case C_RECV:
            direct_recv(pair_fd, io_buf, sizeof io_buf, MSG_DONTWAIT);
            break;
        case C_CLOSE:
            direct_close(CLOSED_FD);
            break;
        case C_CONNECT_UDP:
            direct_connect(udp_fd, (struct sockaddr *)&udp_peer, sizeof udp_peer);
            break;
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, long n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return (n & 1) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static const char *object_of(void *addr) {
    Dl_info info;
    if (addr && dladdr(addr, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        return slash ? slash + 1 : info.dli_fname;
    }
    return "?";
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s sigprocmask|pthread_sigmask|sigprocmask_all|pthread_sigmask_all|select|read|recv|close|connect_udp BLOCKS CALLS_PER_BLOCK [hooked|direct|both]\n", argv[0]);
        return 2;
    }
    enum call_kind k;
    void *hooked_addr;
    if (strcmp(argv[1], "sigprocmask") == 0) {
        k = C_SIGPROCMASK;
        hooked_addr = (void *)&sigprocmask;
    } else if (strcmp(argv[1], "pthread_sigmask") == 0) {
        k = C_PTHREAD_SIGMASK;
        hooked_addr = (void *)&pthread_sigmask;
    } else if (strcmp(argv[1], "sigprocmask_all") == 0) {
        k = C_SIGPROCMASK_ALL;
        hooked_addr = (void *)&sigprocmask;
    } else if (strcmp(argv[1], "pthread_sigmask_all") == 0) {
        k = C_PTHREAD_SIGMASK_ALL;
        hooked_addr = (void *)&pthread_sigmask;
    } else if (strcmp(argv[1], "sigprocmask_save") == 0) {
        k = C_SIGPROCMASK_SAVE;
        hooked_addr = (void *)&sigprocmask;
    } else if (strcmp(argv[1], "pthread_sigmask_save") == 0) {
        k = C_PTHREAD_SIGMASK_SAVE;
        hooked_addr = (void *)&pthread_sigmask;
    } else if (strcmp(argv[1], "select") == 0) {
        k = C_SELECT;
        hooked_addr = (void *)&select;
    } else if (strcmp(argv[1], "read") == 0) {
        k = C_READ;
        hooked_addr = (void *)&read;
    } else if (strcmp(argv[1], "recv") == 0) {
        k = C_RECV;
        hooked_addr = (void *)&recv;
    } else if (strcmp(argv[1], "close") == 0) {
        k = C_CLOSE;
        hooked_addr = (void *)&close;
    } else if (strcmp(argv[1], "connect_udp") == 0) {
        k = C_CONNECT_UDP;
        hooked_addr = (void *)&connect;
    } else {
        fprintf(stderr, "unknown call %s\n", argv[1]);
        return 2;
    }
    const char *clk = getenv("BENCH_CLOCK");
    if (clk && strcmp(clk, "wall") == 0) bench_clock = CLOCK_MONOTONIC;
    long blocks = atol(argv[2]);
    long per_block = atol(argv[3]);
    const char *only = argc > 4 ? argv[4] : "both";
    if (blocks < 1 || per_block < 2) {
        fprintf(stderr, "BLOCKS >= 1, CALLS_PER_BLOCK >= 2\n");
        return 2;
    }
    per_block &= ~1L; /* block/unblock pairs leave the mask as it was */

    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!libc) {
        fprintf(stderr, "dlopen libc.so.6: %s\n", dlerror());
        return 1;
    }
    direct_sigprocmask = (sigprocmask_fn)dlsym(libc, "sigprocmask");
    direct_pthread_sigmask = (sigprocmask_fn)dlsym(libc, "pthread_sigmask");
    direct_select = (select_fn)dlsym(libc, "select");
    direct_read = (read_fn)dlsym(libc, "read");
    direct_recv = (recv_fn)dlsym(libc, "recv");
    direct_close = (close_fn)dlsym(libc, "close");
    direct_connect = (connect_fn)dlsym(libc, "connect");
    if (!direct_sigprocmask || !direct_pthread_sigmask || !direct_select || !direct_read || !direct_recv ||
        !direct_close || !direct_connect) {
        fprintf(stderr, "dlsym in libc failed\n");
        return 1;
    }
    void *direct_addr = (k == C_SIGPROCMASK || k == C_SIGPROCMASK_ALL || k == C_SIGPROCMASK_SAVE) ? (void *)direct_sigprocmask
                        : (k == C_PTHREAD_SIGMASK || k == C_PTHREAD_SIGMASK_ALL || k == C_PTHREAD_SIGMASK_SAVE) ? (void *)direct_pthread_sigmask
                        : k == C_READ ? (void *)direct_read
                        : k == C_RECV ? (void *)direct_recv
                        : k == C_CLOSE ? (void *)direct_close
                        : k == C_CONNECT_UDP ? (void *)direct_connect
                                             : (void *)direct_select;
    int sp[2];
    zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (zero_fd < 0 || udp_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        perror("bench fds");
        return 1;
    }
    pair_fd = sp[0];
    udp_peer.sin_family = AF_INET;
    udp_peer.sin_port = htons(9);
    udp_peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    sigemptyset(&one_set);
    sigaddset(&one_set, SIGWINCH);
    sigfillset(&all_set);
    sigemptyset(&empty_set);
    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        return 1;
    }
    sel_fd = p[0];

    if (strcmp(only, "hooked") == 0) {
        bench_hooked_loop(k, blocks * per_block);
        printf("call=%s only=hooked calls=%ld\n", argv[1], blocks * per_block);
        return 0;
    }
    if (strcmp(only, "direct") == 0) {
        bench_direct_loop(k, blocks * per_block);
        printf("call=%s only=direct calls=%ld\n", argv[1], blocks * per_block);
        return 0;
    }

    double *h = calloc((size_t)blocks, sizeof *h);
    double *d = calloc((size_t)blocks, sizeof *d);
    double *delta = calloc((size_t)blocks, sizeof *delta);
    if (!h || !d || !delta) return 1;

    /* warm up both paths (lazy binding, caches, branch predictors) */
    bench_hooked_loop(k, per_block);
    bench_direct_loop(k, per_block);

    for (long b = 0; b < blocks; b++) {
        long long t0, t1, t2;
        if (b & 1) {
            t0 = now_ns();
            bench_direct_loop(k, per_block);
            t1 = now_ns();
            bench_hooked_loop(k, per_block);
            t2 = now_ns();
            d[b] = (double)(t1 - t0) / per_block;
            h[b] = (double)(t2 - t1) / per_block;
        } else {
            t0 = now_ns();
            bench_hooked_loop(k, per_block);
            t1 = now_ns();
            bench_direct_loop(k, per_block);
            t2 = now_ns();
            h[b] = (double)(t1 - t0) / per_block;
            d[b] = (double)(t2 - t1) / per_block;
        }
        delta[b] = h[b] - d[b];
    }
    double md = median(delta, blocks);
    double mh = median(h, blocks);
    double mdir = median(d, blocks);
    printf("call=%s blocks=%ld calls_per_block=%ld clock=%s hooked_ns=%.3f direct_ns=%.3f delta_ns=%.3f hooked_obj=%s direct_obj=%s\n",
           argv[1], blocks, per_block, bench_clock == CLOCK_MONOTONIC ? "wall" : "thread_cpu", mh, mdir, md,
           object_of(hooked_addr), object_of(direct_addr));
    return 0;
}
