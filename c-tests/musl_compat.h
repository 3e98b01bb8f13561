/* Force-included (-include) when the C tests are built with musl-gcc: the few GNU
 * extensions they print with, which musl lacks. Names only for the errnos and
 * signals the tests meet; anything else prints as a number, so a test that expects
 * a name fails loudly instead of matching by accident. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define EG_NAME(x) case x: return #x;
static inline const char *strerrorname_np(int e) {
    static __thread char num[16];
    switch (e) {
        EG_NAME(EPERM) EG_NAME(ENOENT) EG_NAME(ESRCH) EG_NAME(EINTR) EG_NAME(EIO) EG_NAME(E2BIG)
        EG_NAME(ENOEXEC) EG_NAME(EBADF) EG_NAME(ECHILD) EG_NAME(EAGAIN) EG_NAME(ENOMEM) EG_NAME(EACCES)
        EG_NAME(EFAULT) EG_NAME(ENOTDIR) EG_NAME(EISDIR) EG_NAME(EINVAL) EG_NAME(EMFILE) EG_NAME(ENFILE)
        EG_NAME(EPIPE) EG_NAME(ENOSYS) EG_NAME(ELOOP) EG_NAME(ENAMETOOLONG) EG_NAME(ENOTSOCK)
        EG_NAME(EADDRINUSE) EG_NAME(ECONNRESET) EG_NAME(ETIMEDOUT) EG_NAME(ECONNREFUSED)
        EG_NAME(EALREADY) EG_NAME(EINPROGRESS) EG_NAME(ENOTCONN)
    }
    snprintf(num, sizeof num, "%d", e);
    return num;
}

static inline const char *sigabbrev_np(int s) {
    static const char *const names[32] = {
        0, "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    };
    return s > 0 && s < 32 ? names[s] : 0;
}

/* musl has no close_range wrapper; the kernel call is the same. */
static inline int close_range(unsigned first, unsigned last, int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

/* musl has no execveat wrapper either: the system call itself, which no preload
 * sees (the musl runs of tests/exec_family.rs leave execveat out). */
static inline int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags) {
    return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

/* Nor fcntl64 (glibc >= 2.28 sends 64-bit-offset builds there): musl's off_t is
 * always 64-bit, and its programs call fcntl. */
#define fcntl64 fcntl
