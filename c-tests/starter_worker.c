/* A server's worker run by a starter: its listener was opened by the process that
 * runs it and named in its environment (Server::Starter's SERVER_STARTER_PORT,
 * `127.0.0.1:PORT=FD`; Einhorn's EINHORN_FD_0). The listener is this worker's own
 * from then on: it runs a helper with system() (incident 1 again when the helper
 * gets the listener), then answers each connection with "hello from PID\n", until
 * SIGTERM or STARTER_WORKER_MAX connections (default 100).
 *
 * usage: starter_worker COMMAND
 * stdout: listen_fd=N, then status=<system()'s exit status> */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int handed_fd(void)
{
    const char *p = getenv("SERVER_STARTER_PORT");
    if (p) {
        const char *end = strchr(p, ';');
        const char *eq = NULL;
        for (const char *c = p; *c && (!end || c < end); c++)
            if (*c == '=')
                eq = c;
        return eq ? atoi(eq + 1) : -1;
    }
    p = getenv("EINHORN_FD_0");
    return p ? atoi(p) : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: starter_worker COMMAND\n");
        return 2;
    }
    int fd = handed_fd();
    int type = 0;
    socklen_t len = sizeof type;
    if (fd < 3 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        fprintf(stderr, "starter_worker: no listener handed to us (fd %d)\n", fd);
        return 3;
    }
    printf("listen_fd=%d\n", fd);
    fflush(stdout);
    int st = system(argv[1]);
    printf("status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
    const char *m = getenv("STARTER_WORKER_MAX");
    int max = m ? atoi(m) : 100;
    for (int i = 0; i < max; i++) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) {
            perror("starter_worker: accept");
            return 4;
        }
        char line[64];
        int n = snprintf(line, sizeof line, "hello from %d\n", (int)getpid());
        if (write(c, line, n) != n)
            perror("starter_worker: write");
        close(c);
    }
    return 0;
}
