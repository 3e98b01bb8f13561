/* Force-included (-include) when the C tests are built against Debian 11's glibc
 * 2.31 (tests/common: on_glibc_old): the GNU extensions it lacks
 * (gnu_ext_compat.h). First, before any system header, so that they declare what
 * the tests' own _GNU_SOURCE asks for. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gnu_ext_compat.h"
