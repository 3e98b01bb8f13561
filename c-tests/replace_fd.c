/* Blame the creator, the other way round: a program inherits fd 10 from its caller
 * (stray_launch) and then puts an open file of its own onto that number. The fd is
 * now the program's, and handing it to a child is its leak. The child is PROBE, run
 * with fork+execv; fds 251 and 500 stay as inherited (passed through).
 *
 * How fd 10 gets its new file (each a different route to the same number):
 *   same     dup2 of another open of /dev/null, the inode fd 10 already had
 *   other    dup2 of /etc/hostname
 *   close    close(10), then open("/etc/hostname") lands on 10
 *   fclose   fdopen(10) + fclose (libc closes it inside), then fopen("/etc/hostname",
 *            "r") lands on 10 (libc opens it inside: neither call is a close or an
 *            open the program makes itself)
 *   range    close_range(10, 10, 0), then open lands on 10
 *   vfork    nothing is replaced: a vfork child closes fd 10 and runs PROBE, then
 *            the program runs PROBE again with fork: fd 10 is still the inherited
 *            one there (the vfork child's close was its own)
 * For close/fclose/range, fds 3-9 are taken first (CLOEXEC) so that 10 is the
 * lowest free number.
 *
 * usage: replace_fd HOW PROBE   stdout: the probe's line(s), then status=N */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(const char *probe, int use_vfork)
{
    fflush(stdout);
    pid_t pid = use_vfork ? vfork() : fork();
    if (pid == 0) {
        if (use_vfork)
            close(10);
        char *args[] = { (char *)probe, NULL };
        execv(probe, args);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void fill_below_10(void)
{
    for (;;) {
        int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (f < 0)
            exit(99);
        if (f >= 9)
            return;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *how = argv[1];
    if (strcmp(how, "same") == 0 || strcmp(how, "other") == 0) {
        int fd = open(strcmp(how, "same") == 0 ? "/dev/null" : "/etc/hostname", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || dup2(fd, 10) != 10)
            return 99;
        close(fd);
    } else if (strcmp(how, "close") == 0) {
        fill_below_10();
        close(10);
        if (open("/etc/hostname", O_RDONLY) != 10)
            return 98;
    } else if (strcmp(how, "fclose") == 0) {
        fill_below_10();
        FILE *in = fdopen(10, "r");
        if (!in || fclose(in) != 0)
            return 97;
        FILE *f = fopen("/etc/hostname", "r");
        if (!f || fileno(f) != 10)
            return 96;
    } else if (strcmp(how, "range") == 0) {
        fill_below_10();
        /* libc's wrapper, which the hook sees (musl_compat.h makes one for musl). */
        if (close_range(10, 10, 0) != 0)
            return 95;
        if (open("/etc/hostname", O_RDONLY) != 10)
            return 94;
    } else if (strcmp(how, "vfork") == 0) {
        int st = run(argv[2], 1);
        if (st != 0) {
            printf("status=%d\n", st);
            return 0;
        }
    } else {
        return 2;
    }
    printf("status=%d\n", run(argv[2], 0));
    return 0;
}
