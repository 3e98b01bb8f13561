/* Blame the creator, the other way round: a program inherits fd 10 from its caller
 * (stray_launch) and then puts an open file of its own onto that number with dup2 —
 * "same": another open of /dev/null, the inode fd 10 already had (fstat cannot tell
 * the two apart; the dup2 hook can); "other": /etc/hostname. The fd is now the
 * program's, and handing it to a child is its leak. The child is PROBE, run with
 * fork+execv; fds 251 and 500 stay as inherited (passed through).
 *
 * usage: replace_fd same|other PROBE   stdout: the probe's line, then status=N */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int fd = open(strcmp(argv[1], "same") == 0 ? "/dev/null" : "/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || dup2(fd, 10) != 10)
        return 99;
    close(fd);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = { argv[2], NULL };
        execv(argv[2], args);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
    return 0;
}
