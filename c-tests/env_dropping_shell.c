/* A program that builds its own environment and then runs commands through
 * system() and popen(), as nginx's workers do for os.execute and io.popen: glibc
 * execs the shell internally with `environ`, which no longer names the preload.
 * Each command prints whether its shell maps the shim, and EXECGUARD_MODE as it
 * sees it.
 *
 * stdout: "system: N mode=M", "popen: N mode=M" (N: lines of /proc/PID/maps that
 * name execguard) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

#define PROBE "echo \"$(grep -c execguard /proc/$$/maps) mode=$EXECGUARD_MODE\""

int main(void)
{
    static char *env[] = { "PATH=/usr/bin:/bin", NULL };
    environ = env;
    fputs("system: ", stdout);
    fflush(stdout);
    int st = system(PROBE);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 2;
    FILE *p = popen(PROBE, "r");
    if (!p)
        return 3;
    char line[200];
    while (fgets(line, sizeof line, p))
        printf("popen: %s", line);
    return pclose(p) == 0 ? 0 : 4;
}
