/* A fork no preload sees: the kernel call itself. x86-64 has a fork system call;
 * arm64 has only clone, which forks when given just the exit signal. */
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t raw_fork(void)
{
#ifdef SYS_fork
    return (pid_t)syscall(SYS_fork);
#else
    return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
#endif
}
