/* SPDX-License-Identifier: MIT */
/*
 * Raw tensor files for the C embedding tests (tests/test_embed_c.py): an input
 * file holds exactly the tensor's bytes; outputs are written concatenated.
 */
#ifndef TENSOR_IO_H
#define TENSOR_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 64 bytes: CEREBRO_BUFFER_ALIGN, which the model header repeats */
#define TENSOR_ALIGN 64

/* A zeroed buffer of @size bytes (rounded up for aligned_alloc), or exits. */
static inline void *tensor_alloc(uint64_t size)
{
	size_t bytes = ((size_t)size + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
	void *p = aligned_alloc(TENSOR_ALIGN, bytes ? bytes : TENSOR_ALIGN);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	memset(p, 0, bytes ? bytes : TENSOR_ALIGN);
	return p;
}

/* Reads @path, which must hold exactly @size bytes, into an aligned buffer, or exits. */
static inline void *tensor_read(const char *path, uint64_t size)
{
	void *p = tensor_alloc(size + 1);
	FILE *f = fopen(path, "rb");
	size_t got;

	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	got = fread(p, 1, (size_t)size + 1, f);
	fclose(f);
	if (got != size) {
		fprintf(stderr, "%s: expected %llu bytes, got %zu\n", path, (unsigned long long)size, got);
		exit(1);
	}
	return p;
}

/* Writes @count buffers of @sizes bytes to @path, one after another, or exits. */
static inline void tensor_write(const char *path, void *const *buffers, const uint64_t *sizes, unsigned int count)
{
	FILE *f = fopen(path, "wb");
	unsigned int i;

	for (i = 0; f && i < count; i++) {
		if (fwrite(buffers[i], 1, (size_t)sizes[i], f) != sizes[i])
			break;
	}
	if (!f || i < count || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(1);
	}
}

#endif /* TENSOR_IO_H */
