/* The floor for scripts/bench: a preload library that does nothing.
 *
 * Any LD_PRELOAD shim makes the dynamic loader map, relocate and run the
 * constructor of one more object in every process.  This library pays exactly
 * that and nothing else, so "execguard over the empty preload" isolates what
 * execguard itself costs.
 *
 * Built by scripts/bench:  cc -O2 -shared -fPIC -o target/bench/libempty_preload.so
 */

__attribute__((constructor)) static void empty_preload_ctor(void) {}
