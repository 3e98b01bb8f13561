/* Blame the creator, for signals: a chain of programs, each the next one's parent
 * (fork + execv of itself), started by a caller that ignores SIGPIPE and blocks
 * SIGUSR1 (what Python with restore_signals=False, or a supervisor, hands on). The
 * top of the chain ignores SIGUSR2 itself when OWN is "own": that one is its own
 * doing, the others it passes through.
 *
 * usage: sig_chain DEPTH OWN     (DEPTH more programs below this one)
 * stdout: one line per program, top first: depth=N ign=HEX blk=HEX (the kernel's
 * SigIgn/SigBlk words from /proc/self/status, as the program started). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(int depth)
{
    char line[256], ign[32] = "?", blk[32] = "?";
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "SigIgn:", 7) == 0)
            sscanf(line + 7, "%31s", ign);
        if (strncmp(line, "SigBlk:", 7) == 0)
            sscanf(line + 7, "%31s", blk);
    }
    if (f)
        fclose(f);
    printf("depth=%d ign=%s blk=%s\n", depth, ign, blk);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int depth = atoi(argv[1]);
    show(depth);
    if (strcmp(argv[2], "own") == 0)
        signal(SIGUSR2, SIG_IGN);
    if (depth <= 0)
        return 0;
    char n[16];
    snprintf(n, sizeof n, "%d", depth - 1);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = { argv[0], n, "none", NULL };
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
