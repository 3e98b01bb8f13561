/* The few GNU extensions the C tests print with or call, for a libc that lacks
 * them: musl (musl_compat.h) and glibc before 2.32/2.34 (old_glibc_compat.h).
 * Names only for the errnos and signals the tests meet; anything else prints as a
 * number, so a test that expects a name fails loudly instead of matching by
 * accident. */
#pragma once
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

/* No close_range wrapper (musl; glibc before 2.34, whose system call list may not
 * name it either: the number is 436 on every architecture); the kernel call is the
 * same. */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
static inline int close_range(unsigned first, unsigned last, int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

/* No execveat wrapper either (musl; glibc before 2.34): the system call itself,
 * which no preload sees (those runs of tests/exec_family.rs leave execveat out). */
static inline int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags) {
    return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}
