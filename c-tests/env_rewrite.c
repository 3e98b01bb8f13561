/* nginx's process titles: a daemon overwrites its environment strings in place
 * (setproctitle moves them and reuses the area for the title) and strips the
 * environment of its workers. A shim that reads EXECGUARD_* from environ at event
 * time then finds garbage or nothing; it must have copied its configuration at
 * load time. Here the strings are scribbled over, environ is cleared, and then a
 * worker with a leaked listener forks and execs the probe with an empty envp.
 *
 * usage: env_rewrite PROBE     stdout: port=N, the probe's line, child=exit:N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    close_range(3, ~0U, 0);
    for (char **e = environ; *e; e++)
        memset(*e, 'x', strlen(*e)); /* the title overwrites the old strings */
    clearenv();

    int l = socket(AF_INET, SOCK_STREAM, 0); /* the leak */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4) ||
        getsockname(l, (struct sockaddr *)&a, &al))
        return 99;
    printf("port=%u\n", ntohs(a.sin_port));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[1], NULL}, *env[] = {NULL};
        execve(argv[1], args, env);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child=exit:%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
