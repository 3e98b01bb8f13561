/* Force-included (-include) when the C tests are built with musl-gcc: the GNU
 * extensions musl lacks (gnu_ext_compat.h), and one glibc name. */
#include "gnu_ext_compat.h"

/* musl has no fcntl64 (glibc >= 2.28 sends 64-bit-offset builds there): its off_t
 * is always 64-bit, and its programs call fcntl. */
#define fcntl64 fcntl
