/* Incident 4 (programs started from Python and other runtimes ignore SIGPIPE): a
 * parent that set SIGPIPE to SIG_IGN execs ordinary Unix tools. SIG_IGN survives
 * exec, so a writer whose reader went away gets EPIPE instead of dying quietly:
 * `yes | head -n 1` makes `yes` print "Broken pipe" and exit 1 instead of being
 * killed by SIGPIPE (status 141 in the shell). The parent also ignores SIGHUP, as
 * `nohup` does; that one must stay ignored in the children.
 *
 * usage: sigpipe_ign            (parent: runs both children below)
 *        sigpipe_ign --child    (writes into a pipe whose reader is closed)
 * stdout: writer=<what the --child saw>    child=exit:N|signal:NAME
 *         shell=<what `yes` said and its status in sh -c '(yes; ...) | head -n 1'>
 *         shell_child=exit:N|signal:NAME */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(void)
{
    struct sigaction sa;
    sigaction(SIGHUP, NULL, &sa);
    const char *hup = sa.sa_handler == SIG_IGN ? "ign" : "dfl";
    sigaction(SIGPIPE, NULL, &sa);
    const char *pip = sa.sa_handler == SIG_IGN ? "ign" : "dfl";
    int p[2];
    if (pipe(p))
        return 99;
    close(p[0]);
    /* Report before writing: with SIGPIPE at its default, the write kills us. */
    printf("writer=sighup:%s,sigpipe:%s", hup, pip);
    fflush(stdout);
    ssize_t r = write(p[1], "x", 1);
    printf(",write:%s\n", r < 0 ? strerrorname_np(errno) : "ok");
    return 3;
}

static void report(const char *key, int st)
{
    if (WIFEXITED(st))
        printf("%s=exit:%d\n", key, WEXITSTATUS(st));
    else
        printf("%s=signal:%s\n", key, sigabbrev_np(WTERMSIG(st)));
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--child") == 0)
        return child();
    close_range(3, ~0U, 0);
    signal(SIGPIPE, SIG_IGN); /* what Python and many runtimes do */
    signal(SIGHUP, SIG_IGN);  /* what nohup does: meant for the children too */

    int st;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "--child", NULL};
        execv(argv[0], args);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        printf("\n"); /* the writer died before finishing its line */
    report("child", st);

    /* Everyday shell work: yes's status tells how it ended. head's own output is
     * dropped: head closes its stdin before flushing, so its line would race yes's. */
    int out[2];
    if (pipe2(out, O_CLOEXEC))
        return 99;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(out[1], 2);
        execl("/bin/sh", "sh", "-c", "(yes; echo yes_status=$? >&2) | head -n 1 >/dev/null", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(out[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = '|';
    printf("shell=%s\n", buf);
    waitpid(pid, &st, 0);
    report("shell_child", st);
    return 0;
}
