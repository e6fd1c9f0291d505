/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (FIPS 180-4) for the .cbx content hash; user space has no crypto
 * library and the kernel host may reuse it as is. User space hands whole
 * blocks to the CPU's SHA instructions when it has them (user/sha256_hw.c).
 */
#ifndef CBX_SHA256_H
#define CBX_SHA256_H

#include "port.h"

#define CBX_SHA256_LEN 32

extern const uint32_t cbx_sha256_k[64];	/* the round constants */

struct cbx_sha256 {
	uint32_t state[8];
	uint64_t length;	/* bytes hashed so far */
	uint8_t block[64];
	uint32_t used;		/* bytes waiting in block */
};

void cbx_sha256_init(struct cbx_sha256 *ctx);
void cbx_sha256_update(struct cbx_sha256 *ctx, const void *data, uint64_t len);
void cbx_sha256_final(struct cbx_sha256 *ctx, uint8_t out[CBX_SHA256_LEN]);

#endif /* CBX_SHA256_H */
