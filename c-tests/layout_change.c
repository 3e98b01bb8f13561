/* One finding, one line, when the leaked file changes under the same number: a
 * program leaks a /dev/null stream (fopen without "e", so not CLOEXEC) into N
 * children of /bin/true, then puts /etc/hostname on that number and spawns N more.
 * The second batch is another finding (another file), however the number changed
 * hands; with CHANGE "none" all 2N spawns are one finding.
 *
 *   CHANGE  none | close (close + open) | fclose (fclose + fopen: libc closes and
 *           opens inside) | dup2 (dup2 of another open onto the number)
 *   METHOD  forkexec | posix_spawn
 *
 * usage: layout_change CHANGE METHOD N   stdout: fd=NUMBER failures=K */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn_true.h"

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *change = argv[1], *method = argv[2];
    int n = atoi(argv[3]), failures = 0;
    FILE *f = fopen("/dev/null", "r");
    if (!f)
        return 99;
    int fd = fileno(f);
    for (int i = 0; i < n; i++)
        failures += spawn_true(method);
    if (strcmp(change, "close") == 0) {
        close(fd);
        if (open("/etc/hostname", O_RDONLY) != fd)
            return 98;
    } else if (strcmp(change, "fclose") == 0) {
        fclose(f);
        f = fopen("/etc/hostname", "r");
        if (!f || fileno(f) != fd)
            return 97;
    } else if (strcmp(change, "dup2") == 0) {
        int o = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
        if (o < 0 || dup2(o, fd) != fd)
            return 96;
        close(o);
    } else if (strcmp(change, "none") != 0) {
        return 2;
    }
    for (int i = 0; i < n; i++)
        failures += spawn_true(method);
    printf("fd=%d failures=%d\n", fd, failures);
    return 0;
}
