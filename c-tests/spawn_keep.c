/* posix_spawn with no file actions, in fix mode: the shim closes the leaked fds in
 * the child with close actions of its own (the top run as one close-from) and
 * leaves the parent's fds as they were. Leaked: /dev/null at 3-7 and 21-25; kept:
 * fd 20 (the test names it in EXECGUARD_KEEP_FDS); CLOEXEC: fd 10.
 *
 * usage: spawn_keep PROBE [fork|system|popen|pidfd_spawn|fork+system|fork+popen|fork+pidfd_spawn]
 *   fork: all of it in a forked child that does not exec (where the shim may not
 *   allocate, so it marks the fds in that child instead; the result is the same)
 *   system: system(PROBE) instead of posix_spawn (the shell gets the fds the same
 *   way, and hands its own on to PROBE); popen: popen(PROBE, "r"), its output
 *   copied to stdout; pidfd_spawn: glibc >= 2.39's pidfd_spawn, the child waited
 *   for through its pidfd (built with -DHAVE_PIDFD_SPAWN: tests/common on_glibc_new;
 *   without, it exits 3)
 * stdout: the probe's line, then parent=FD:FLAGS,... (F_GETFD of 3-7, 20, 21-25
 * after the spawn), then status=exit:N */
#define _GNU_SOURCE
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

#ifdef HAVE_PIDFD_SPAWN
/* glibc >= 2.39's <spawn.h>; declared here for builds with older headers. */
extern int pidfd_spawn(int *restrict, const char *restrict, const posix_spawn_file_actions_t *restrict,
                       const posix_spawnattr_t *restrict, char *const[restrict], char *const[restrict]);
#endif

static void at(int want, int flags)
{
    int fd = open("/dev/null", O_RDONLY | flags);
    if (fd != want && (dup3(fd, want, flags) != want || close(fd) != 0))
        _exit(99);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int use_fork = argc > 2 && strstr(argv[2], "fork") != NULL;
    int use_system = argc > 2 && strstr(argv[2], "system") != NULL;
    int use_popen = argc > 2 && strstr(argv[2], "popen") != NULL;
    int use_pidfd = argc > 2 && strstr(argv[2], "pidfd_spawn") != NULL;
#ifndef HAVE_PIDFD_SPAWN
    if (use_pidfd)
        return 3;
#endif
    if (use_fork) {
        fflush(stdout);
        pid_t worker = fork();
        if (worker < 0)
            return 97;
        if (worker > 0) {
            int wst = 0;
            waitpid(worker, &wst, 0);
            return WIFEXITED(wst) ? WEXITSTATUS(wst) : 96;
        }
    }
    for (int fd = 3; fd <= 7; fd++)
        at(fd, 0);
    at(10, O_CLOEXEC);
    at(20, 0);
    for (int fd = 21; fd <= 25; fd++)
        at(fd, 0);
    fflush(stdout);
    int st = 0;
    if (use_system) {
        st = system(argv[1]);
    } else if (use_popen) {
        FILE *f = popen(argv[1], "r");
        if (!f)
            return 95;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        st = pclose(f);
    } else if (use_pidfd) {
#ifdef HAVE_PIDFD_SPAWN
        int pidfd;
        char *args[] = { argv[1], NULL };
        siginfo_t si;
        if (pidfd_spawn(&pidfd, argv[1], NULL, NULL, args, environ) != 0)
            return 98;
        memset(&si, 0, sizeof si);
        if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) != 0)
            return 94;
        close(pidfd);
        st = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : si.si_status & 0x7f;
#endif
    } else {
        pid_t pid;
        char *args[] = { argv[1], NULL };
        if (posix_spawn(&pid, argv[1], NULL, NULL, args, environ) != 0)
            return 98;
        waitpid(pid, &st, 0);
    }
    printf("parent=");
    int fds[] = { 3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25 };
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++)
        printf("%s%d:%d", i ? "," : "", fds[i], fcntl(fds[i], F_GETFD));
    printf("\nstatus=exit:%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
    fflush(stdout);
    if (use_fork)
        _exit(0);
    return 0;
}
