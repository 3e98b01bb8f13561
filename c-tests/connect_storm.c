/* connect_storm: incident 5, the reconnect storm, and the healthy traffic that must
 * never look like one.
 *
 * The write-up (shared/seeds/001_...): an upstream answers the first request and
 * closes every later connection after reading its request; nginx's Lua balancer
 * kept a "cached connection" flag and reconnected at once, forever, logging nothing.
 * Here the upstream is a forked child and the client is this process's loop.
 *
 *   connect_storm MODE ARGS...     (every loop bounded by count and time)
 *   writeup PORT MAX SECS   the write-up: first request answered on a keep-alive
 *                           connection, then connect/send/EOF retried at once
 *   v6 PORT MAX SECS        the same against [::1]
 *   unix PATH MAX SECS      the same against a unix socket
 *   refused PORT MAX        blocking connects to a port nobody listens on
 *   refused_nb PORT MAX     the same, non-blocking: poll, SO_ERROR, close
 *   refused_nb_again PORT MAX  the same, the error taken by calling connect again
 *   bursts PORT             storm 1.6 s, quiet 1.6 s, storm 0.8 s (200/s)
 *   slow PORT               fruitless, but 30/s for 2 s (under 50/1)
 *   healthy PORT MAX        short successful connections (answer, server closes)
 *   pool PORT MAX           keep-alive: 5 requests per connection, then the server closes
 *   nonblock PORT MAX       EINPROGRESS connects that complete, request, answer
 *   udp PORT MAX            UDP connect + send + recv (ECONNREFUSED), close
 *   oneway PORT MAX         connect, send, close (and shutdown + wait for EOF)
 *   stale PORT MAX          tracked fds closed behind the shim's back, numbers reused
 *   busy PORT MAX           4 threads storm one closing upstream at once, with a stray
 *                           socket and 1500 files open first (connections get fds
 *                           above 1500), while a 5th thread does healthy reads
 *   vforked PORT MAX SECS   the write-up's loop, but before each close a vfork child
 *                           closes its copy of the connection and exits (a helper
 *                           started the classic way, the socket not CLOEXEC)
 *   badaddr PORT            connects whose address the kernel never reads: an
 *                           unmapped pointer (EFAULT), a length over 128 at the
 *                           end of a page (EINVAL), then a real one (refused)
 *   forked PORT MAX         refused connects in the parent, then in a fork child to
 *                           PORT+1 (the child takes the parent's tables over)
 *   serve PORT SECS FILE    the write-up's upstream alone for SECS seconds (for the
 *                           real nginx); FILE holds "connections=N" after each one
 *
 * Prints key=value lines: server_pid, loop_start (unix seconds), attempts, and per
 * outcome counts, which do not depend on timing where the test compares modes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char REQ[] = "GET / HTTP/1.1\r\nHost: upstream\r\n\r\n";
static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";

static double now_real(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

/* ---------------------------------------------------------------- addresses */

static int family = AF_INET;
static struct sockaddr_storage peer;
static socklen_t peer_len;

static void set_peer(int fam, const char *where) {
    family = fam;
    memset(&peer, 0, sizeof peer);
    if (fam == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&peer;
        s->sin_family = AF_INET;
        s->sin_port = htons(atoi(where));
        s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        peer_len = sizeof *s;
    } else if (fam == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&peer;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(atoi(where));
        s->sin6_addr = in6addr_loopback;
        peer_len = sizeof *s;
    } else {
        struct sockaddr_un *s = (struct sockaddr_un *)&peer;
        s->sun_family = AF_UNIX;
        snprintf(s->sun_path, sizeof s->sun_path, "%s", where);
        peer_len = sizeof *s;
    }
}

static int stream(void) {
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    return fd;
}

/* ---------------------------------------------------------------- the upstream */

enum serve { FIRST_ONLY, ALWAYS_CLOSE, ANSWER_CLOSE, POOL5, SINK };

static int listener(void) {
    int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (l < 0)
        die("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_UNIX)
        unlink(((struct sockaddr_un *)&peer)->sun_path);
    if (bind(l, (struct sockaddr *)&peer, peer_len) < 0)
        die("bind");
    if (listen(l, 512) < 0)
        die("listen");
    return l;
}

static int count_fd = -1;

/* One connection at a time, like the write-up's SocketServer.TCPServer. */
static void serve(int l, enum serve how, int secs) {
    long count = 0, conns = 0;
    char buf[4096];
    alarm(secs);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            die("accept");
        }
        int on_conn = 0;
        for (;;) {
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            if (how == SINK)
                continue;
            count++;
            on_conn++;
            if (how == FIRST_ONLY && count == 1) {
                send(c, RESP, sizeof RESP - 1, MSG_NOSIGNAL);
                continue;
            }
            if (how == ANSWER_CLOSE) {
                send(c, RESP, sizeof RESP - 1, MSG_NOSIGNAL);
                break;
            }
            if (how == POOL5) {
                send(c, RESP, sizeof RESP - 1, MSG_NOSIGNAL);
                if (on_conn < 5)
                    continue;
            }
            break;
        }
        close(c);
        conns++;
        if (count_fd >= 0) {
            int n = snprintf(buf, sizeof buf, "connections=%ld\n", conns);
            pwrite(count_fd, buf, n, 0);
        }
    }
}

static pid_t server_pid;

static void start_server(enum serve how) {
    int l = listener();
    server_pid = fork();
    if (server_pid < 0)
        die("fork");
    if (server_pid == 0)
        serve(l, how, 30);
    close(l);
    printf("server_pid=%d\n", (int)server_pid);
    fflush(stdout);
}

static void stop_server(void) {
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
}

/* ---------------------------------------------------------------- clients */

/* connect, send the request, read what comes: >0 bytes, 0 for EOF, -errno. */
static long exchange_on(int fd) {
    char buf[4096];
    if (send(fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL) < 0)
        return -errno;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n < 0 ? -errno : n;
}

/* The buggy balancer: keep-alive connection answered once, then at once a new
 * connection for the same request after every EOF. */
static void writeup(int max, double secs) {
    long eof = 0, reset = 0, answered = 0, refused = 0, attempts = 0;
    int fd = stream();
    if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
        die("connect");
    if (exchange_on(fd) > 0)
        answered++;
    /* The cached connection: the upstream reads the request and closes. */
    long r = exchange_on(fd);
    close(fd);
    if (r == 0)
        eof++;
    double start = now_mono();
    printf("loop_start=%.6f\n", now_real());
    fflush(stdout);
    while (attempts < max && now_mono() - start < secs) {
        attempts++;
        fd = stream();
        if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0) {
            refused++;
            close(fd);
            continue;
        }
        r = exchange_on(fd);
        close(fd);
        if (r > 0)
            answered++;
        else if (r == 0)
            eof++;
        else
            reset++;
    }
    printf("attempts=%ld\nanswered=%ld\neof=%ld\nreset=%ld\nrefused=%ld\n", attempts, answered, eof, reset, refused);
}

/* The write-up's loop with a vfork child between the EOF and the parent's close:
 * the child's close of its copy leaves the parent's connection open. */
static void vforked(int max, double secs) {
    long eof = 0, attempts = 0, children = 0;
    double start = now_mono();
    printf("loop_start=%.6f\n", now_real());
    fflush(stdout);
    while (attempts < max && now_mono() - start < secs) {
        attempts++;
        int fd = socket(family, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
            die("connect");
        if (exchange_on(fd) == 0)
            eof++;
        pid_t c = vfork();
        if (c == 0) {
            close(fd);
            _exit(0);
        }
        int st;
        if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            children++;
        close(fd);
    }
    printf("attempts=%ld\neof=%ld\nchildren=%ld\n", attempts, eof, children);
}

static void badaddr(void) {
    int fd = stream();
    errno = 0;
    int r = connect(fd, (struct sockaddr *)8, sizeof(struct sockaddr_in));
    printf("efault=%d %s\n", r, strerror(errno));
    fflush(stdout);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || munmap(p + 4096, 4096) != 0)
        die("mmap");
    struct sockaddr_in *a = (void *)(p + 4096 - sizeof *a);
    memcpy(a, &peer, sizeof *a);
    errno = 0;
    r = connect(fd, (struct sockaddr *)a, 200);
    printf("long=%d %s\n", r, strerror(errno));
    errno = 0;
    r = connect(fd, (struct sockaddr *)a, sizeof *a);
    printf("real=%d %s\n", r, strerror(errno));
    close(fd);
}

static void refused_loop(int max, int nonblocking) {
    long refused = 0, other = 0;
    printf("loop_start=%.6f\n", now_real());
    fflush(stdout);
    for (int i = 0; i < max; i++) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
        int r = connect(fd, (struct sockaddr *)&peer, peer_len);
        int e = r < 0 ? errno : 0;
        if (nonblocking && e == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, 1000);
            socklen_t len = sizeof e;
            if (nonblocking == 2)
                e = connect(fd, (struct sockaddr *)&peer, peer_len) < 0 ? errno : 0;
            else
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
        }
        if (e == ECONNREFUSED)
            refused++;
        else
            other++;
        close(fd);
    }
    printf("attempts=%d\nrefused=%ld\nother=%ld\n", max, refused, other);
}

/* Fruitless connections at `rate` per second for `secs`. */
static long paced(double rate, double secs) {
    long n = 0;
    double start = now_mono();
    while (now_mono() - start < secs) {
        int fd = stream();
        if (connect(fd, (struct sockaddr *)&peer, peer_len) == 0)
            exchange_on(fd);
        close(fd);
        n++;
        double next = start + n / rate;
        double d = next - now_mono();
        if (d > 0)
            usleep((useconds_t)(d * 1e6));
    }
    return n;
}

static void bursts(void) {
    printf("phase_a=%.6f\n", now_real());
    long a = paced(200, 1.6);
    printf("quiet_start=%.6f\n", now_real());
    fflush(stdout);
    usleep(1600 * 1000);
    printf("phase_b=%.6f\n", now_real());
    long b = paced(200, 0.8);
    printf("phase_b_end=%.6f\nattempts=%ld\n", now_real(), a + b);
}

static void healthy(int max) {
    long answered = 0, other = 0;
    double start = now_mono();
    for (int i = 0; i < max; i++) {
        int fd = stream();
        if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
            die("connect");
        long r = exchange_on(fd);
        if (r > 0) {
            answered++;
            char buf[64];
            while (recv(fd, buf, sizeof buf, 0) > 0) /* until the server's close */
                ;
        } else
            other++;
        close(fd);
    }
    printf("answered=%ld\nother=%ld\nrate=%.0f\n", answered, other, max / (now_mono() - start));
}

static void pool(int max) {
    long answered = 0, reconnects = 0;
    int fd = -1;
    for (int i = 0; i < max; i++) {
        if (fd < 0) {
            fd = stream();
            reconnects++;
            if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
                die("connect");
        }
        long r = exchange_on(fd);
        if (r > 0) {
            answered++;
            continue;
        }
        /* The pooled connection was closed by the upstream: retry once. */
        close(fd);
        fd = -1;
        i--;
    }
    if (fd >= 0)
        close(fd);
    printf("answered=%ld\nreconnects=%ld\n", answered, reconnects);
}

static void nonblock(int max) {
    long answered = 0, inprogress = 0;
    for (int i = 0; i < max; i++) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0) {
            if (errno != EINPROGRESS)
                die("connect");
            inprogress++;
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, 1000);
        }
        send(fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL);
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 1000);
        char buf[256];
        if (recv(fd, buf, sizeof buf, 0) > 0)
            answered++;
        close(fd);
    }
    printf("answered=%ld\ninprogress=%ld\n", answered, inprogress);
}

static void udp(int max) {
    long refused = 0;
    for (int i = 0; i < max; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
            die("connect");
        send(fd, "x", 1, 0);
        char b;
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 100);
        if (recv(fd, &b, 1, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED)
            refused++;
        close(fd);
    }
    printf("udp_refused=%ld\n", refused);
}

static void oneway(int max) {
    long sent = 0;
    for (int i = 0; i < max; i++) {
        int fd = stream();
        if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
            die("connect");
        if (send(fd, "metric 1 1\n", 11, MSG_NOSIGNAL) == 11)
            sent++;
        if (i & 1) {
            /* Graceful: our FIN first, then wait for the peer's (EOF, no byte). */
            char b;
            shutdown(fd, SHUT_WR);
            while (recv(fd, &b, 1, 0) > 0)
                ;
        }
        close(fd);
    }
    printf("sent=%ld\n", sent);
}

/* Tracked connections whose close the shim does not see; their numbers then come
 * back as other things (a file, a unix socket whose peer closes at once). */
static void stale(int max) {
    long n = 0;
    for (int i = 0; i < max; i++) {
        int fd = stream();
        if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
            die("connect");
        send(fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL);
        syscall(SYS_close, fd);
        int sv[2];
        if (i & 1) {
            int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
            close(f);
        } else if (syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
            syscall(SYS_close, sv[1]);
            close(sv[0]);
        }
        n++;
    }
    printf("stale=%ld\n", n);
}

static int busy_max;
static long busy_eof[4];

static void *busy_storm(void *arg) {
    long *eof = arg;
    for (int i = 0; i < busy_max; i++) {
        int fd = stream();
        if (connect(fd, (struct sockaddr *)&peer, peer_len) == 0 && exchange_on(fd) == 0)
            (*eof)++;
        close(fd);
    }
    return NULL;
}

static volatile int busy_done;

static void *busy_reader(void *arg) {
    int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    char buf[64];
    long *n = arg;
    while (!busy_done && fd >= 0) {
        read(fd, buf, sizeof buf);
        (*n)++;
    }
    close(fd);
    return NULL;
}

static void busy(int max) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int stray = socket(AF_INET, SOCK_STREAM, 0); /* not CLOEXEC, never connected */
    for (int i = 0; i < 1500; i++)
        if (open("/dev/null", O_RDONLY) < 0)
            die("open");
    busy_max = max;
    pthread_t t[5];
    long reads = 0;
    printf("loop_start=%.6f\n", now_real());
    fflush(stdout);
    pthread_create(&t[4], NULL, busy_reader, &reads);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, busy_storm, &busy_eof[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    busy_done = 1;
    pthread_join(t[4], NULL);
    printf("stray=%d\neof=%ld\nreader_ok=%d\n", stray >= 0, busy_eof[0] + busy_eof[1] + busy_eof[2] + busy_eof[3], reads > 0);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: see the top of connect_storm.c\n");
        return 2;
    }
    const char *mode = argv[1];
    int max = argc > 3 ? atoi(argv[3]) : 0;
    double secs = argc > 4 ? atof(argv[4]) : 3;
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(mode, "writeup") || !strcmp(mode, "v6") || !strcmp(mode, "unix")) {
        set_peer(!strcmp(mode, "v6") ? AF_INET6 : !strcmp(mode, "unix") ? AF_UNIX : AF_INET, argv[2]);
        start_server(FIRST_ONLY);
        writeup(max, secs);
    } else if (!strcmp(mode, "serve") && argc > 4) {
        set_peer(AF_INET, argv[2]);
        count_fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        serve(listener(), FIRST_ONLY, atoi(argv[3]));
    } else if (!strcmp(mode, "refused") || !strcmp(mode, "refused_nb") || !strcmp(mode, "refused_nb_again")) {
        set_peer(AF_INET, argv[2]);
        refused_loop(max, !strcmp(mode, "refused_nb") ? 1 : !strcmp(mode, "refused_nb_again") ? 2 : 0);
    } else if (!strcmp(mode, "bursts") || !strcmp(mode, "slow")) {
        set_peer(AF_INET, argv[2]);
        start_server(ALWAYS_CLOSE);
        if (!strcmp(mode, "bursts"))
            bursts();
        else
            printf("attempts=%ld\n", paced(30, 2));
    } else if (!strcmp(mode, "healthy") || !strcmp(mode, "nonblock")) {
        set_peer(AF_INET, argv[2]);
        start_server(ANSWER_CLOSE);
        if (!strcmp(mode, "healthy"))
            healthy(max);
        else
            nonblock(max);
    } else if (!strcmp(mode, "badaddr")) {
        set_peer(AF_INET, argv[2]);
        badaddr();
    } else if (!strcmp(mode, "vforked")) {
        set_peer(AF_INET, argv[2]);
        start_server(ALWAYS_CLOSE);
        vforked(max, secs);
    } else if (!strcmp(mode, "forked")) {
        set_peer(AF_INET, argv[2]);
        refused_loop(max, 0);
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            char port[16];
            snprintf(port, sizeof port, "%d", atoi(argv[2]) + 1);
            set_peer(AF_INET, port);
            printf("child_pid=%d\n", (int)getpid());
            refused_loop(max, 0);
            fflush(stdout);
            _exit(0);
        }
        waitpid(c, NULL, 0);
    } else if (!strcmp(mode, "busy")) {
        set_peer(AF_INET, argv[2]);
        start_server(ALWAYS_CLOSE);
        busy(max);
    } else if (!strcmp(mode, "pool")) {
        set_peer(AF_INET, argv[2]);
        start_server(POOL5);
        pool(max);
    } else if (!strcmp(mode, "udp")) {
        set_peer(AF_INET, argv[2]);
        udp(max);
    } else if (!strcmp(mode, "oneway") || !strcmp(mode, "stale")) {
        set_peer(AF_INET, argv[2]);
        start_server(SINK);
        if (!strcmp(mode, "oneway"))
            oneway(max);
        else
            stale(max);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    stop_server();
    return 0;
}
