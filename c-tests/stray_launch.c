/* What a terminal, CI runner, IDE or supervisor often is: a parent that holds stray
 * fds without CLOEXEC (a file at fd 10, a pipe at fd 251, a socket at fd 500) and
 * runs a command. It is not under the shim itself: STRAY_PRELOAD, when set, becomes
 * the command's LD_PRELOAD, so the command is the first process the shim sees.
 * Signals are left as they came (the caller's choice), nothing else is changed.
 * STRAY_LISTENER=PORT: fd 500 is a TCP listener on 127.0.0.1:PORT instead (what a
 * server that runs commands without CLOEXEC leaves behind).
 * STRAY_EXTRA=N: N more, /dev/null at fds 600 to 600+N-1 (a caller holding many).
 *
 * usage: stray_launch CMD [ARG...]   (exits 127 if CMD cannot be run) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void at(int fd, int want)
{
    if (fd < 0 || dup2(fd, want) < 0) {
        fprintf(stderr, "stray_launch: fd %d: %s\n", want, strerror(errno));
        exit(99);
    }
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stray_launch CMD [ARG...]\n");
        return 2;
    }
    int p[2];
    if (pipe(p) != 0)
        return 99;
    at(open("/dev/null", O_RDONLY), 10);
    at(p[0], 251);
    const char *port = getenv("STRAY_LISTENER");
    if (port && *port) {
        int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0)
            l = -1;
        at(l, 500);
        unsetenv("STRAY_LISTENER");
    } else {
        at(socket(AF_UNIX, SOCK_DGRAM, 0), 500);
    }
    const char *extra = getenv("STRAY_EXTRA");
    for (int i = 0, n = extra ? atoi(extra) : 0; i < n && i < 400; i++)
        at(open("/dev/null", O_RDONLY), 600 + i);
    unsetenv("STRAY_EXTRA");
    /* The write end is closed: nothing ever waits on the stray pipe. */
    close(p[1]);
    const char *pre = getenv("STRAY_PRELOAD");
    if (pre && *pre) {
        setenv("LD_PRELOAD", pre, 1);
        unsetenv("STRAY_PRELOAD");
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "stray_launch: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
