/* Incident 2 (monitor with a 1024-socket UDP pool runs a probe): the parent holds
 * 1030 UDP sockets created without SOCK_CLOEXEC and execs a child. The child's
 * first socket therefore gets an fd >= 1024 = FD_SETSIZE, and select() on it with a
 * plain fd_set would write past the 1024-bit set (EALREADY / garbage in the real
 * incident). The child does not corrupt its stack: when the fd is too high it
 * calls select(fd + 1, ...) on a heap set big enough, which is the overflow-prone
 * call the shim must name; then the same with pselect().
 *
 * usage: udp_pool [POOL]      (parent; POOL defaults to 1030)
 *        udp_pool --child      (what the parent execs)
 * stdout: pool=N first_fd=N last_fd=N   then the child's
 *         child_fd=N over_setsize=yes|no select=R isset=yes|no pselect=R
 *         child=exit:N|signal:N */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        printf("child_socket=%s\n", strerrorname_np(errno));
        return 3;
    }
    /* A UDP socket is always writable: select must say so. */
    struct timeval tv = {0, 0};
    struct timespec ts = {0, 0};
    int r, r2, isset;
    if (fd < FD_SETSIZE) {
        fd_set w;
        FD_ZERO(&w);
        FD_SET(fd, &w);
        r = select(fd + 1, NULL, &w, NULL, &tv);
        isset = r > 0 && FD_ISSET(fd, &w);
        FD_SET(fd, &w);
        r2 = pselect(fd + 1, NULL, &w, NULL, &ts, NULL);
    } else {
        size_t words = fd / (8 * sizeof(long)) + 1, word = fd / (8 * sizeof(long));
        unsigned long bit = 1UL << (fd % (8 * sizeof(long)));
        unsigned long *w = calloc(words, sizeof(long));
        w[word] |= bit;
        r = select(fd + 1, NULL, (fd_set *)w, NULL, &tv);
        isset = r > 0 && (w[word] & bit);
        w[word] |= bit;
        r2 = pselect(fd + 1, NULL, (fd_set *)w, NULL, &ts, NULL);
        free(w);
    }
    printf("child_fd=%d over_setsize=%s select=%d isset=%s pselect=%d\n", fd,
           fd >= FD_SETSIZE ? "yes" : "no", r, isset ? "yes" : "no", r2);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--child") == 0)
        return child();
    int pool = argc > 1 ? atoi(argv[1]) : 1030;

    close_range(3, ~0U, 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int first = -1, last = -1;
    for (int i = 0; i < pool; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0); /* the bug: no SOCK_CLOEXEC */
        if (fd < 0) {
            fprintf(stderr, "udp_pool: socket %d: %s\n", i, strerror(errno));
            return 99;
        }
        if (first < 0)
            first = fd;
        last = fd;
    }
    printf("pool=%d first_fd=%d last_fd=%d\n", pool, first, last);
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0)
        return 99;
    if (pid == 0) {
        char *args[] = {argv[0], "--child", NULL};
        execv(argv[0], args);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st))
        printf("child=exit:%d\n", WEXITSTATUS(st));
    else
        printf("child=signal:%d\n", WTERMSIG(st));
    return 0;
}
