/* The variadic exec entry points (execl, execlp, execle), which stable Rust cannot
 * define. Each collects its arguments into an argv on its own stack and hands it to
 * the Rust hook; the exported execl* symbols are jumps to these (src/hooks/execl.rs).
 * Async-signal-safe: no allocation, no locks (may run after fork). */
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>

extern char **environ;
int execguard_execl_impl(int which, const char *path, char *const argv[], char *const envp[]);

/* Count the arguments after arg0, up to the terminating NULL. */
static size_t count_args(va_list ap) {
    size_t n = 1;
    while (va_arg(ap, const char *) != NULL)
        n++;
    return n;
}

#define COLLECT(argv, arg0, ap, n)             \
    do {                                       \
        argv[0] = (char *)(arg0);              \
        for (size_t i_ = 1; i_ <= (n); i_++)   \
            argv[i_] = va_arg(ap, char *);     \
    } while (0)

int execguard_c_execl(const char *path, const char *arg0, ...) {
    va_list ap;
    va_start(ap, arg0);
    size_t n = count_args(ap);
    va_end(ap);
    char *argv[n + 1];
    va_start(ap, arg0);
    COLLECT(argv, arg0, ap, n);
    va_end(ap);
    return execguard_execl_impl(0, path, argv, environ);
}

int execguard_c_execlp(const char *file, const char *arg0, ...) {
    va_list ap;
    va_start(ap, arg0);
    size_t n = count_args(ap);
    va_end(ap);
    char *argv[n + 1];
    va_start(ap, arg0);
    COLLECT(argv, arg0, ap, n);
    va_end(ap);
    return execguard_execl_impl(1, file, argv, environ);
}

int execguard_c_execle(const char *path, const char *arg0, ...) {
    va_list ap;
    va_start(ap, arg0);
    size_t n = count_args(ap);
    va_end(ap);
    char *argv[n + 1];
    va_start(ap, arg0);
    COLLECT(argv, arg0, ap, n);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execguard_execl_impl(2, path, argv, envp);
}
