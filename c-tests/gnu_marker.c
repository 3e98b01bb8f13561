/* gnu_marker: a program linked against musl that defines gnu_get_libc_version, as
 * gcompat does for glibc programs on Alpine (built with -rdynamic, so the shim's weak
 * reference binds to it). musl's loader still passes the constructor no arguments.
 *   gnu_marker PROG ARGS...   open /dev/null without CLOEXEC (leaked), print its
 *                             number as fd=N, then execv PROG */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

const char *gnu_get_libc_version(void) { return "2.8"; }

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int fd = open("/dev/null", O_RDONLY);
    printf("fd=%d\n", fd);
    fflush(stdout);
    execv(argv[1], argv + 1);
    return 127;
}
