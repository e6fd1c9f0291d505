/* SPDX-License-Identifier: MIT */
/*
 * Validation of the .cerebro.meta section against cbx.h.
 */
#ifndef CBX_META_H
#define CBX_META_H

#include <cerebro/cbx.h>

#include "error.h"

CBX_STATIC_ASSERT(sizeof(struct cbx_meta) == 536, "struct cbx_meta layout");
CBX_STATIC_ASSERT(sizeof(struct cbx_tensor) == 144, "struct cbx_tensor layout");

/* Refused above this, so hosts can round sizes up without overflow. */
#define CBX_MAX_ARENA_SIZE (1ull << 40)

/* Bytes per element of @dtype, 0 for an unknown code. */
uint32_t cbx_dtype_size(uint32_t dtype);

/*
 * Checks the meta section @sec of @size bytes (magic, versions, @machine,
 * sizes, every tensor record) and copies its header into @out.
 */
int cbx_meta_check(const uint8_t *sec, uint64_t size, uint32_t machine,
		   struct cbx_meta *out, struct cbx_error *err);

/* Copies tensor record @index of a checked meta section into @out. */
void cbx_meta_tensor(const uint8_t *sec, uint32_t index, struct cbx_tensor *out);

#endif /* CBX_META_H */
