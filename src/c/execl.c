/* The variadic exec entry points (execl, execlp, execle), which stable Rust cannot
 * define. Each collects its arguments into an argv on its own stack and hands it to
 * the Rust hook; the exported execl* symbols are jumps to these (src/hooks/execl.rs).
 * Async-signal-safe: no allocation, no locks (may run after fork). */
#include <stdarg.h>
#include <stddef.h>

extern char **environ;
/* Hidden: a direct call, and not a symbol the loader binds at every start. */
__attribute__((visibility("hidden"))) int execguard_execl_impl(int which, const char *path, char *const argv[], char *const envp[]);

enum { EXECL = 0, EXECLP = 1, EXECLE = 2 };

/* In the block of text every start maps (build.rs gathers .text.startup.*), with the
 * Rust exec hooks: a fork child's execl then faults in no other window. */
#define STARTUP __attribute__((section(".text.startup.execguard_execl")))

STARTUP static size_t count_args(va_list ap) {
    size_t n = 0;
    while (va_arg(ap, const char *) != NULL)
        n++;
    return n;
}

/* argv on this frame's stack: arg0, the variadic arguments up to NULL, then NULL;
 * execle's envp follows the NULL. The count and the copy are made here, once, not
 * in each entry point (the start block has no room to spare). */
STARTUP __attribute__((noinline)) static int run(int which, const char *path, const char *arg0, va_list ap) {
    va_list cp;
    va_copy(cp, ap);
    size_t count = count_args(cp);
    va_end(cp);
    char *argv[count + 2];
    argv[0] = (char *)arg0;
    for (size_t i = 1; i <= count + 1; i++)
        argv[i] = va_arg(ap, char *);
    char *const *envp = which == EXECLE ? va_arg(ap, char *const *) : environ;
    return execguard_execl_impl(which, path, argv, envp);
}

#define ENTRY(name, which)                                           \
    STARTUP int name(const char *path, const char *arg0, ...) {      \
        va_list ap;                                                  \
        va_start(ap, arg0);                                          \
        int r = run(which, path, arg0, ap);                          \
        va_end(ap);                                                  \
        return r;                                                    \
    }

ENTRY(execguard_c_execl, EXECL)
ENTRY(execguard_c_execlp, EXECLP)
ENTRY(execguard_c_execle, EXECLE)
