/* SPDX-License-Identifier: MIT */
/*
 * Host CPU features, so a model compiled for AVX-512 or SVE is refused with
 * a message on a CPU without them instead of dying of SIGILL.
 */
#ifndef CBX_USER_CPU_H
#define CBX_USER_CPU_H

#include "error.h"

/*
 * Checks every "+name" of the LLVM feature string @features (as recorded
 * in the meta) against this CPU; "-name" entries need nothing.
 */
int cbx_cpu_check(const char *features, struct cbx_error *err);

/* Writes the names of the checkable features this CPU has, comma separated. */
void cbx_cpu_describe(char *out, size_t len);

#endif /* CBX_USER_CPU_H */
