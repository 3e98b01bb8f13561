/* The shim's per-thread state lives here because stable Rust can declare
 * thread-locals only through std, and linking std into the library drags
 * libgcc_s.so into every process (about 130 us per start on these machines).
 * initial-exec: a preloaded library's TLS is in the static block, so an access is
 * one %fs-relative load, never a lazy allocation (safe after fork and in vfork
 * children). The Rust side (src/postfork/tls.rs) owns the layout; zero is its
 * initial state. Async-signal-safe. */
#define EXECGUARD_TLS_SIZE 1024

static __thread __attribute__((tls_model("initial-exec"), aligned(16)))
unsigned char execguard_tls_block[EXECGUARD_TLS_SIZE];

__attribute__((visibility("hidden"))) void *execguard_tls(void) { return execguard_tls_block; }
__attribute__((visibility("hidden"))) unsigned long execguard_tls_size(void) { return EXECGUARD_TLS_SIZE; }
