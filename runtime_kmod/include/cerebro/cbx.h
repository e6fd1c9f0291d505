/* SPDX-License-Identifier: MIT */
/*
 * The .cbx format: an ELF64 relocatable object (ET_REL) as LLVM emits it,
 * plus sections that describe it. This header is the layout of the
 * .cerebro.meta section; every field is little-endian.
 *
 *   .cerebro.meta     struct cbx_meta followed by num_inputs + num_outputs
 *                     struct cbx_tensor records (inputs first)
 *   .cerebro.weights  constant tensors, pre-laid-out, 64-byte aligned; the
 *                     code reaches them through relocations against the
 *                     section's symbol (never spelled out in LLVM IR)
 *   .cerebro.ir       optional: the IR as readable text (NUL-terminated)
 *   .note.cerebro.tree     optional, non-loaded SHT_NOTE (owner "Cerebro",
 *                     type 1): an exported function's calling convention
 *                     (pytrees in and out) as JSON; compiler/cbx/tree.py
 *   .note.cerebro.profile  optional, non-loaded SHT_NOTE: a profiling
 *                     build's stage table; compiler/cbx/profile_table.py
 *
 * Loaders never map or read the notes; they are for the Python runtime
 * and `cerebroc inspect`/`profile`.
 *
 * meta.hash is the SHA-256 of the whole file with the 32 hash bytes zeroed.
 *
 * The arena: a call on one part (plain stage numbers: the kernel module, the
 * embedding API, a serial call) needs meta.arena_size bytes. A split call
 * of N parts (abi.h) of a model with meta.regions > 1 runs whole batch
 * chunks on G = min(N, meta.regions) groups of parts, group g in its own
 * region at g * meta.region_size, and needs (G - 1) * meta.region_size +
 * meta.arena_size bytes (cbx_arena_bytes below). So the host, not the
 * compiling machine, decides how many regions exist: the file only bounds
 * them, and a host that runs one part allocates one.
 */
#ifndef CEREBRO_CBX_H
#define CEREBRO_CBX_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#define CBX_META_SECTION ".cerebro.meta"
#define CBX_WEIGHTS_SECTION ".cerebro.weights"
#define CBX_IR_SECTION ".cerebro.ir"

#define CBX_MAGIC "CBXMETA"	/* 8 bytes with the NUL */
#define CBX_FORMAT_VERSION 2	/* 2: the arena in regions (regions, region_size) */
#define CBX_MAX_RANK 8
#define CBX_NAME_LEN 64
#define CBX_MAX_TENSORS 256
#define CBX_MAX_STAGES 65536	/* the stage word's index has 16 bits */

enum cbx_dtype {
	CBX_DTYPE_F32 = 1,
	CBX_DTYPE_F64 = 2,
	CBX_DTYPE_I8 = 3,
	CBX_DTYPE_I16 = 4,
	CBX_DTYPE_I32 = 5,
	CBX_DTYPE_I64 = 6,
	CBX_DTYPE_U8 = 7,
	CBX_DTYPE_BOOL = 8,	/* one byte, 0 or 1 */
	CBX_DTYPE_U16 = 9,
	CBX_DTYPE_U32 = 10,
	CBX_DTYPE_F16 = 11,	/* IEEE binary16 */
	CBX_DTYPE_BF16 = 12,	/* bfloat16: the high half of an f32 */
};

/*
 * What a model's code needs of the FP/SIMD registers. CBX_FPU_NONE: its
 * machine code names none (no x87/MMX/SSE/AVX, no FP/NEON/SVE), which the
 * compiler and `cerebroc kmod build` prove by disassembling it, so the
 * kernel runs its stages without an FPU section. Files written before the
 * field hold 0 there (the high half of a 32-bit parts).
 */
enum cbx_fpu {
	CBX_FPU_SIMD = 0,
	CBX_FPU_NONE = 1,
};

struct cbx_tensor {
	char name[CBX_NAME_LEN];	/* NUL-terminated */
	uint32_t dtype;			/* enum cbx_dtype */
	uint32_t rank;			/* <= CBX_MAX_RANK */
	uint64_t dims[CBX_MAX_RANK];	/* unused dims are 0 */
	uint64_t nbytes;		/* product(dims) * element size */
};

struct cbx_meta {
	char magic[8];			/* CBX_MAGIC */
	uint32_t format_version;	/* CBX_FORMAT_VERSION */
	uint32_t abi_version;		/* CEREBRO_ABI_VERSION */
	uint32_t machine;		/* ELF e_machine: 62 x86-64, 183 aarch64 */
	uint32_t num_inputs;
	uint32_t num_outputs;
	uint32_t num_stages;		/* >= 1 */
	uint64_t arena_size;		/* bytes of scratch of one region (a call on one part) */
	uint64_t weights_size;		/* bytes in .cerebro.weights */
	uint64_t flops;			/* estimated per call, all stages */
	uint64_t max_stage_flops;	/* estimated, the largest stage */
	char triple[64];		/* LLVM target triple */
	char cpu[32];			/* LLVM CPU name */
	char features[256];		/* LLVM feature string, "+avx2,+fma" */
	char model_name[CBX_NAME_LEN];
	uint8_t hash[32];		/* SHA-256, see above */
	uint32_t meta_size;		/* sizeof(struct cbx_meta) + tensors */
	uint16_t parts;			/* most threads per call, <= CEREBRO_MAX_PARTS; 0 means 1 */
	uint16_t fpu;			/* enum cbx_fpu: FP/SIMD registers the code uses */
	uint32_t regions;		/* arena regions a split call can use, 1..parts (below) */
	uint32_t reserved;		/* 0 */
	uint64_t region_size;		/* bytes from one region to the next; 0 when regions is 1 */
	struct cbx_tensor tensors[];	/* inputs, then outputs */
};

/*
 * Arena bytes a call split into @parts parts needs (1 for plain stage
 * numbers), for a header whose regions and sizes were checked (core/meta.c
 * bounds the result by CBX_MAX_ARENA_SIZE, so nothing here overflows).
 */
static inline uint64_t cbx_arena_bytes(const struct cbx_meta *meta, uint32_t parts)
{
	uint32_t regions = meta->regions > 1 ? meta->regions : 1;
	uint32_t used = parts < regions ? parts : regions;

	return used > 1 ? (uint64_t)(used - 1) * meta->region_size + meta->arena_size : meta->arena_size;
}

#endif /* CEREBRO_CBX_H */
