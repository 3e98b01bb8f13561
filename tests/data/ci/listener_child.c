/* Test data for tests/ci_reports.rs: opens a TCP listener on 127.0.0.1:PORT
 * (argv[1]) without SOCK_CLOEXEC and starts /bin/true from a fork, so the child
 * inherits the listener: the exec_fd_leak that CI reports must point back here. */
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int listener(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* EG-SOCKET: the leaked listener */
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0)
        exit(2);
    return fd;
}

int main(int argc, char **argv) {
    int fd = listener(argc > 1 ? atoi(argv[1]) : 25011);
    pid_t p = fork();
    if (p == 0) {
        execl("/bin/true", "true", (char *)0);
        _exit(127);
    }
    int st = 0;
    waitpid(p, &st, 0);
    close(fd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
