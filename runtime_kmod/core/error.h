/* SPDX-License-Identifier: MIT */
/*
 * Loader errors: a code for programs and a sentence for people.
 */
#ifndef CBX_ERROR_H
#define CBX_ERROR_H

#include "port.h"

enum cbx_status {
	CBX_OK = 0,
	CBX_ETRUNC,	/* a header, table or section runs past the end */
	CBX_EMAGIC,	/* not ELF64 little-endian, or no CBXMETA magic */
	CBX_EFORMAT,	/* structurally invalid ELF */
	CBX_EMACHINE,	/* built for another architecture */
	CBX_EMETA,	/* .cerebro.meta is missing or inconsistent */
	CBX_EHASH,	/* content hash mismatch */
	CBX_ERELOC,	/* unknown, overflowing or misplaced relocation */
	CBX_ESYMBOL,	/* undefined or missing symbol */
	CBX_ENOMEM,
	CBX_ERUN,	/* the model returned an error code */
	CBX_ECPU,	/* the CPU lacks a feature the model needs */
	CBX_EINTR,	/* the host asked to stop (a fatal signal in the kernel) */
};

#define CBX_ERROR_LEN 200

struct cbx_error {
	int code;
	char msg[CBX_ERROR_LEN];
};

/* Records @code and a printf-style message in @err; returns @code. */
int cbx_fail(struct cbx_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "x86-64", "aarch64" or "machine N" (into a static or caller buffer). */
const char *cbx_machine_name(uint32_t machine);

#endif /* CBX_ERROR_H */
