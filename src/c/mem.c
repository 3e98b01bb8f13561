/* The library's own memcpy, memmove, memset and bcmp: the calls the compiler emits
 * for copies, fills and comparisons in the Rust code. Hidden, so the static linker
 * binds those calls here and the loader has four symbols fewer to look up in every
 * process that loads us (each of them an IFUNC that runs a resolver too): about a
 * microsecond of every start (docs/performance.md). Nothing else in the process
 * sees them; its own calls still go to its libc.
 *
 * Most of what the library copies is small (fd items, paths, names), so these move
 * eight bytes at a time, and cover a tail shorter than that with one more,
 * overlapping, eight-byte access where the operation allows it; a long copy or
 * fill (a 4 KiB line, an environment's pointer array) uses the string instructions
 * on x86-64. Built with -ffreestanding and without loop-idiom
 * recognition (build.rs), so that the compiler cannot turn a loop here back into a
 * call to the function it is in.
 *
 * Async-signal-safe: they touch only the memory they are given (no state, no
 * system call), so they may run after fork and in a vfork child. */
#include <stddef.h>
#include <stdint.h>

typedef uint64_t __attribute__((may_alias, aligned(1))) u64u;
typedef uint32_t __attribute__((may_alias, aligned(1))) u32u;
typedef uint16_t __attribute__((may_alias, aligned(1))) u16u;

/* Each beside its callers (build.rs orders the blocks): memcpy and memset with the
 * constructor, which calls them at every start; bcmp with the spawn paths'
 * environment rebuild; memmove with the report code, its only user. */
#define HIDDEN_IN(block) __attribute__((visibility("hidden"), section(block ".execguard_mem")))

/* From this length on, x86-64's string instructions (`rep movsb`, `rep stosb`):
 * their start-up cost is paid back. */
#define LONG 256

static inline __attribute__((always_inline)) uint64_t ld8(const unsigned char *p) { return *(const u64u *)p; }
static inline __attribute__((always_inline)) void st8(unsigned char *p, uint64_t v) { *(u64u *)p = v; }

/* Loads everything before storing anything, so it is right for overlapping
 * buffers too (memmove's short case). n < 16. */
static inline __attribute__((always_inline)) void short_copy(unsigned char *d, const unsigned char *s, size_t n) {
    if (n >= 8) {
        uint64_t a = ld8(s), b = ld8(s + n - 8);
        st8(d, a);
        st8(d + n - 8, b);
    } else if (n >= 4) {
        uint32_t a = *(const u32u *)s, b = *(const u32u *)(s + n - 4);
        *(u32u *)d = a;
        *(u32u *)(d + n - 4) = b;
    } else if (n >= 2) {
        uint16_t a = *(const u16u *)s, b = *(const u16u *)(s + n - 2);
        *(u16u *)d = a;
        *(u16u *)(d + n - 2) = b;
    } else if (n == 1) {
        *d = *s;
    }
}

HIDDEN_IN(".text.startup") void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n < 16) {
        short_copy(d, s, n);
        return dst;
    }
#if defined(__x86_64__)
    /* A whole line or a rebuilt environment: the string instruction, which moves a
     * cache line per cycle or two where the loop moves a word. */
    if (n >= LONG) {
        __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
        return dst;
    }
#endif
    /* Whole words from the front, then the last eight bytes, which may cover
     * bytes already written (with the same values: the buffers do not overlap). */
    for (size_t i = 0; i + 8 <= n; i += 8)
        st8(d + i, ld8(s + i));
    st8(d + n - 8, ld8(s + n - 8));
    return dst;
}

HIDDEN_IN(".text.report") void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n < 16) {
        short_copy(d, s, n);
        return dst;
    }
    uintptr_t du = (uintptr_t)d, su = (uintptr_t)s;
    if (du - su >= n) {
        /* The destination does not start inside the source: front to back. Each
         * word is read before it is written, and every byte written so far lies
         * below the next word read. */
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            st8(d + i, ld8(s + i));
        for (; i < n; i++)
            d[i] = s[i];
    } else {
        /* The destination starts inside the source: back to front. */
        size_t i = n;
        for (; i >= 8; i -= 8)
            st8(d + i - 8, ld8(s + i - 8));
        while (i > 0) {
            i--;
            d[i] = s[i];
        }
    }
    return dst;
}

HIDDEN_IN(".text.startup") void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    uint64_t v = (uint64_t)(unsigned char)c * 0x0101010101010101ULL;
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            d[i] = (unsigned char)c;
        return dst;
    }
#if defined(__x86_64__)
    if (n >= LONG) {
        __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
        return dst;
    }
#endif
    for (size_t i = 0; i + 8 <= n; i += 8)
        st8(d + i, v);
    st8(d + n - 8, v);
    return dst;
}

/* Zero when the two buffers are equal (it does not order them: that is memcmp). */
HIDDEN_IN(".text.hot") int bcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            if (ld8(x + i) != ld8(y + i))
                return 1;
        return ld8(x + n - 8) != ld8(y + n - 8);
    }
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return 1;
    return 0;
}
