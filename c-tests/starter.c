/* A starter written in C, as a small supervisor would be: it opens a TCP listener
 * on 127.0.0.1 with socket() (inheritable, with no call that says so), names it in
 * the environment of the worker it runs, then forks and execs the worker and waits
 * for it. STYLE "einhorn": EINHORN_FD_COUNT=1, EINHORN_FD_0=N (Einhorn's
 * variables); "server_starter": SERVER_STARTER_PORT=127.0.0.1:PORT=N.
 *
 * usage: starter STYLE PORT PROGRAM [ARGS...]
 * exit: the worker's exit status (128+signal when killed) */
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

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: starter STYLE PORT PROGRAM [ARGS...]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
        fprintf(stderr, "starter: listen on %s: %s\n", argv[2], strerror(errno));
        return 99;
    }
    char num[16], port[64];
    snprintf(num, sizeof num, "%d", fd);
    if (strcmp(argv[1], "einhorn") == 0) {
        setenv("EINHORN_FD_COUNT", "1", 1);
        setenv("EINHORN_FD_0", num, 1);
    } else {
        snprintf(port, sizeof port, "127.0.0.1:%s=%d", argv[2], fd);
        setenv("SERVER_STARTER_PORT", port, 1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[3], argv + 3);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
