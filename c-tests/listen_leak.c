/* Incident 1 (nginx + os.execute("curl ...")): a server whose listening socket was
 * created without SOCK_CLOEXEC forks and execs a helper. The helper inherits the
 * listener, so after the server closes its own copy (or stops accepting), clients
 * that connect to the server's port land in the helper's backlog instead of
 * being refused: `ss` shows the helper "listening on nginx's port".
 *
 * usage: listen_leak PROBE
 * stdout (one key=value per line, in this order):
 *   server_pid=N  listen_fd=N  port=N  child_pid=N
 *   probe=<the probe's JSON line: what the exec'd child holds>
 *   connect_after_close=accepted|ECONNREFUSED|...  (server closed its listener first)
 *   child=exit:N|signal:N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "listen_leak: %s: %s\n", what, strerror(errno));
    exit(99);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: listen_leak PROBE\n");
        return 2;
    }
    /* Start clean: whatever the test harness leaked is not part of the incident. */
    close_range(3, ~0U, 0);

    int lfd = socket(AF_INET, SOCK_STREAM, 0); /* the bug: no SOCK_CLOEXEC */
    if (lfd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 16) ||
        getsockname(lfd, (struct sockaddr *)&a, &al))
        die("bind/listen");
    printf("server_pid=%d\nlisten_fd=%d\nport=%u\n", getpid(), lfd, ntohs(a.sin_port));

    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        die("pipe2");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        char *args[] = {argv[1], "--wait-stdin", NULL};
        execv(argv[1], args);
        _exit(127);
    }
    printf("child_pid=%d\n", pid);
    close(in[0]);
    close(out[1]);

    /* The probe's line tells what the child holds once it runs the new program. */
    char line[8192];
    size_t n = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (n < sizeof line - 1 && poll(&p, 1, 10000) > 0) {
        ssize_t r = read(out[0], line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += r;
        if (memchr(line, '\n', n))
            break;
    }
    line[n] = 0;
    printf("probe=%s%s", line, n && line[n - 1] == '\n' ? "" : "\n");

    /* The server stops listening; a client should now be refused. */
    close(lfd);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0)
        die("socket (client)");
    int rc = connect(c, (struct sockaddr *)&a, sizeof a);
    printf("connect_after_close=%s\n", rc == 0 ? "accepted" : strerrorname_np(errno));
    close(c);

    close(in[1]); /* lets the probe exit */
    int st;
    if (waitpid(pid, &st, 0) < 0)
        die("waitpid");
    if (WIFEXITED(st))
        printf("child=exit:%d\n", WEXITSTATUS(st));
    else
        printf("child=signal:%d\n", WTERMSIG(st));
    return 0;
}
