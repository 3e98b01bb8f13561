/* One real leak in the middle of an everyday tree: a program that opens a TCP
 * listener on 127.0.0.1 without CLOEXEC and runs a command with system(), as
 * nginx+Lua's os.execute does (incident 1). Socket activation is the same leak by
 * another road: when LISTEN_FDS/LISTEN_PID (or GUNICORN_FD=3, as Gunicorn's re-exec
 * names its listeners) hand this program fd 3, that listener is its own, and
 * system() passes it to an unrelated child.
 *
 * usage: planted_leak PORT COMMAND   (PORT is ignored when fd 3 is handed to us)
 * stdout: listen_fd=N, then status=<system()'s exit status> */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int activated(void)
{
    const char *n = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID"), *g = getenv("GUNICORN_FD");
    return (n && pid && atoi(n) >= 1 && atoi(pid) == getpid()) || (g && atoi(g) == 3);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: planted_leak PORT COMMAND\n");
        return 2;
    }
    int fd = 3;
    /* Gunicorn's new master takes the variable out of its environment, so that its
     * children are not told of the listeners. */
    int handed = activated();
    unsetenv("GUNICORN_FD");
    if (!handed) {
        fd = socket(AF_INET, SOCK_STREAM, 0); /* no SOCK_CLOEXEC: the leak */
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
            fprintf(stderr, "planted_leak: listen on %s: %s\n", argv[1], strerror(errno));
            return 99;
        }
    }
    printf("listen_fd=%d\n", fd);
    fflush(stdout);
    int st = system(argv[2]);
    printf("status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
