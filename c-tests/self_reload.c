/* A server's reload of itself, as uWSGI's master does it on SIGHUP: it holds a
 * listener (not close-on-exec) and ignores SIGPIPE, has UWSGI_RELOADS in its
 * environment, and execs its own binary in place; the new image keeps serving on
 * the listener. Then the new image runs a command with system(), which passes
 * the listener and the ignored SIGPIPE on: that is the server's leak.
 *
 * The test runs copies of this program named `uwsgi` (a reloader's name) and
 * `uwsgitop` (not one).
 *
 * usage: self_reload exec|spawn SET   (SET 1: UWSGI_RELOADS=0 in the environment)
 *   exec: execv(argv[0]) in place; spawn: posix_spawn it as a child instead
 * With SELF_RELOAD_PRELOAD set, the first image (started without the shim) puts
 * LD_PRELOAD=$SELF_RELOAD_PRELOAD in its environment before the exec: the shim
 * arrives at a reload, as when it is rolled out under a running server.
 * stdout: port=P, fd=N, then from the new image held=0|1 and status=exit:S */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int reloaded(const char *fdarg)
{
    int fd = atoi(fdarg);
    printf("held=%d\n", fcntl(fd, F_GETFD) != -1);
    fflush(stdout);
    int st = system("exec /bin/true");
    printf("status=exit:%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "reloaded") == 0)
        return reloaded(argv[2]);
    if (argc != 3) {
        fprintf(stderr, "usage: self_reload exec|spawn 0|1\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* no SOCK_CLOEXEC: kept across the reload */
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("self_reload: listen");
        return 99;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[2], "1") == 0)
        setenv("UWSGI_RELOADS", "0", 1);
    printf("port=%d\nfd=%d\n", ntohs(a.sin_port), fd);
    fflush(stdout);
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    char *args[] = { argv[0], "reloaded", num, NULL };
    const char *rollout = getenv("SELF_RELOAD_PRELOAD");
    if (rollout)
        setenv("LD_PRELOAD", rollout, 1);
    if (strcmp(argv[1], "spawn") == 0) {
        pid_t pid;
        int err = posix_spawn(&pid, argv[0], NULL, NULL, args, environ);
        int st = 0;
        if (err != 0 || waitpid(pid, &st, 0) != pid) {
            fprintf(stderr, "self_reload: posix_spawn: %s\n", strerror(err));
            return 98;
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    execv(argv[0], args);
    perror("self_reload: execv");
    return 97;
}
