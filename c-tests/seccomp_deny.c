/* The hosts of old kernels and strict containers, on this kernel: runs a command
 * under a seccomp filter (inherited by every child; PR_SET_NO_NEW_PRIVS) that makes
 * the newer system calls the shim may use fail —
 *   enosys: as on a kernel that predates them (close_range 5.9, pidfd_open 5.3,
 *           pidfd_send_signal 5.1, openat2 5.6, pidfd_getfd 5.6, clone3 5.3,
 *           faccessat2 5.8; process_vm_readv, present since 3.2, as on a kernel
 *           built without CONFIG_CROSS_MEMORY_ATTACH; kcmp, as on one built
 *           without CONFIG_CHECKPOINT_RESTORE; madvise(MADV_WIPEONFORK) answers
 *           EINVAL, as before 4.14, every other advice passing);
 *   eperm:  as a container profile that denies what it does not know (EPERM;
 *           Docker's default profile denies kcmp and process_vm_readv without
 *           CAP_SYS_PTRACE), with clone3 and faccessat2 answering ENOSYS so that
 *           libc falls back.
 * Usage: seccomp_deny enosys|eperm CMD [ARGS...]. Raw BPF, no libseccomp. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __x86_64__
#error "seccomp_deny: the filter checks AUDIT_ARCH_X86_64 and x86_64 system call numbers"
#endif

#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_faccessat2
#define __NR_faccessat2 439
#endif

#define DENY(nr, err) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "enosys") && strcmp(argv[1], "eperm"))) {
        fprintf(stderr, "usage: seccomp_deny enosys|eperm CMD [ARGS...]\n");
        return 2;
    }
    int e = strcmp(argv[1], "eperm") ? ENOSYS : EPERM;
    /* MADV_WIPEONFORK (4.14). */
    unsigned wipe = e == ENOSYS ? 18u : 0xffffffffu;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        DENY(__NR_close_range, e),
        DENY(__NR_pidfd_open, e),
        DENY(__NR_pidfd_send_signal, e),
        DENY(__NR_openat2, e),
        DENY(__NR_process_vm_readv, e),
        DENY(__NR_pidfd_getfd, e),
        DENY(__NR_kcmp, e),
        DENY(__NR_clone3, ENOSYS),
        DENY(__NR_faccessat2, ENOSYS),
        /* madvise with the advice old kernels do not know (enosys only: container
           profiles let madvise through). The third argument's low word; -1 never
           matches an advice. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, wipe, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("seccomp_deny: install filter");
        return 2;
    }
    execvp(argv[2], argv + 2);
    perror("seccomp_deny: exec");
    return 127;
}
