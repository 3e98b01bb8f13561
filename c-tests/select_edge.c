/* select() with nfds far beyond the caller's fd_set (incident 2's neighbour): the
 * kernel clamps nfds to the size of the process's fd table, so a 1024-bit set with
 * nfds = 65536 works as long as no fd >= 1024 is open. A shim that scans all nfds
 * bits itself reads past the set; here the set ends exactly where an unmapped page
 * begins, so such a scan crashes the host where the kernel call succeeds. (The
 * everyday form is select(getdtablesize(), &set, ...) with a stack fd_set: nfds is
 * RLIMIT_NOFILE, 20 000 here, up to 1 M elsewhere.)
 *
 * Also: the errors of select/pselect (EBADF, EINVAL) come back unchanged.
 *
 * usage: select_edge          stdout: select=R errno=NAME isset=yes|no
 *                                     pselect=R errno=NAME isset=yes|no
 *        select_edge errors   stdout: errors=R:ERRNO,... */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <unistd.h>

static int errors(void)
{
    struct timeval tv = {0, 0};
    struct timespec ts = {0, 0};
    /* Errors come back as they are: same result, same errno. */
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(60, &rd); /* not open, inside the fd table */
    errno = 0;
    int e1 = select(61, &rd, NULL, NULL, &tv), n1 = errno;
    errno = 0;
    int e2 = select(-1, NULL, NULL, NULL, &tv), n2 = errno;
    struct timeval bad = {0, -5};
    errno = 0;
    int e3 = select(1, NULL, NULL, NULL, &bad), n3 = errno;
    FD_ZERO(&rd);
    FD_SET(60, &rd);
    errno = 0;
    int e4 = pselect(61, &rd, NULL, NULL, &ts, NULL), n4 = errno;
    printf("errors=%d:%s,%d:%s,%d:%s,%d:%s\n", e1, strerrorname_np(n1), e2, strerrorname_np(n2), e3,
           strerrorname_np(n3), e4, strerrorname_np(n4));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "errors"))
        return errors();
    close_range(3, ~0U, 0);
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + pg, pg, PROT_NONE))
        return 99;
    fd_set *w = (fd_set *)(m + pg - sizeof(fd_set)); /* the guard page follows */
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return 99;

    struct timeval tv = {0, 0};
    FD_ZERO(w);
    FD_SET(p[1], w);
    errno = 0;
    int r = select(65536, NULL, w, NULL, &tv);
    printf("select=%d errno=%s isset=%s\n", r, errno ? strerrorname_np(errno) : "0",
           r > 0 && FD_ISSET(p[1], w) ? "yes" : "no");

    struct timespec ts = {0, 0};
    FD_ZERO(w);
    FD_SET(p[1], w);
    errno = 0;
    r = pselect(65536, NULL, w, NULL, &ts, NULL);
    printf("pselect=%d errno=%s isset=%s\n", r, errno ? strerrorname_np(errno) : "0",
           r > 0 && FD_ISSET(p[1], w) ? "yes" : "no");

    return 0;
}
