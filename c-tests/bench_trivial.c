/* bench_trivial: the smallest dynamically linked program (libc only), the
 * child of scripts/bench's process-start case: its whole life is the dynamic
 * loader, the preload's constructor and an immediate exit. */
int main(void) { return 0; }
