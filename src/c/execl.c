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

/* argv on this frame's stack: arg0, the variadic arguments up to NULL, then NULL;
 * execle's envp follows the NULL. `count` is the number of arguments after arg0. */
static int run(int which, const char *path, const char *arg0, size_t count, va_list ap) {
    char *argv[count + 2];
    argv[0] = (char *)arg0;
    for (size_t i = 1; i <= count + 1; i++)
        argv[i] = va_arg(ap, char *);
    char *const *envp = which == EXECLE ? va_arg(ap, char *const *) : environ;
    return execguard_execl_impl(which, path, argv, envp);
}

static size_t count_args(va_list ap) {
    size_t n = 0;
    while (va_arg(ap, const char *) != NULL)
        n++;
    return n;
}

#define ENTRY(name, which)                                   \
    int name(const char *path, const char *arg0, ...) {      \
        va_list ap, cp;                                      \
        va_start(ap, arg0);                                  \
        va_copy(cp, ap);                                     \
        size_t n = count_args(cp);                           \
        va_end(cp);                                          \
        int r = run(which, path, arg0, n, ap);               \
        va_end(ap);                                          \
        return r;                                            \
    }

ENTRY(execguard_c_execl, EXECL)
ENTRY(execguard_c_execlp, EXECLP)
ENTRY(execguard_c_execle, EXECLE)
