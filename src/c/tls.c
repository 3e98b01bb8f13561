/* The shim's per-thread state lives here because stable Rust can declare
 * thread-locals only through std, and linking std into the library drags
 * libgcc_s.so into every process (about 130 us per start on these machines).
 * initial-exec: a preloaded library's TLS is in the static block, so an access is
 * one %fs-relative load, never a lazy allocation (safe after fork and in vfork
 * children). The Rust side (src/postfork/tls.rs) owns the layout; zero is its
 * initial state. Async-signal-safe. Hidden, not static: the x86-64 signal-mask
 * trampolines read one field of it themselves (src/hooks/sigmask.rs). */
#define EXECGUARD_TLS_SIZE 1024

__thread __attribute__((tls_model("initial-exec"), aligned(16), visibility("hidden")))
unsigned char execguard_tls_block[EXECGUARD_TLS_SIZE];

/* In the startup section with the hook paths that call it (see build.rs). */
__attribute__((visibility("hidden"), section(".text.startup.execguard_tls"))) void *execguard_tls(void) { return execguard_tls_block; }
/* A constant, not a function: the constructor checks it, and the C functions sit
 * on a text page no process start needs otherwise. */
__attribute__((visibility("hidden"))) const unsigned long execguard_tls_bytes = EXECGUARD_TLS_SIZE;

/* glibc (>= 2.32) sets this char to 0 once the process makes a thread. Referenced
 * weakly, so the loader binds it with the library's other imports (where a program
 * has a copy of it, the program's copy, which is the one glibc writes) and a libc
 * without it leaves NULL. A dlsym in the constructor instead costs several µs of
 * every process start. Data, not a function: see src/real.rs. */
extern char __libc_single_threaded __attribute__((weak));

__attribute__((visibility("hidden"))) const char *const execguard_single_threaded_flag = &__libc_single_threaded;

/* Which libc loaded us, and how the constructor finds its arguments. glibc calls
 * .init_array entries with (argc, argv, envp); musl calls them with none (the
 * registers hold garbage). gnu_get_libc_version exists in every glibc and in no
 * other libc; a weak reference costs one binding at load, like the flag above. On
 * a libc that is not glibc, argv[0] comes from program_invocation_name (musl sets
 * it before any constructor runs), weak so that a libc without it loads us too. */
extern const char *gnu_get_libc_version(void) __attribute__((weak));
__attribute__((visibility("hidden"))) const void *const execguard_glibc_marker = (const void *)&gnu_get_libc_version;
extern char *program_invocation_name __attribute__((weak));
__attribute__((visibility("hidden"))) char *const *const execguard_progname = &program_invocation_name;

/* dlsym, for the rare lookups the shim's own reading of the loader's tables cannot
 * serve (src/resolve.rs). Weak: before glibc 2.34 it is libdl's, and a process that
 * did not load libdl has none — a strong import would make every such process fail
 * to start under the shim ("undefined symbol: dlsym", Debian 11, Ubuntu 20.04,
 * RHEL 8). NULL there; the shim then looks up without it (src/real.rs). */
extern void *dlsym(void *handle, const char *name) __attribute__((weak));
__attribute__((visibility("hidden"))) const void *const execguard_dlsym_fn = (const void *)&dlsym;

