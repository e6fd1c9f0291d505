/* SPDX-License-Identifier: MIT */
/*
 * The call contract between generated model code and every host that runs it
 * (the compiler's emitter, the user-space runtime and the kernel module).
 */
#ifndef CEREBRO_ABI_H
#define CEREBRO_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#define CEREBRO_ABI_VERSION 1

/* Every model object defines exactly this global function. */
#define CEREBRO_ENTRY_SYMBOL "cerebro_entry"

/* The arena and every tensor buffer a host passes is aligned to this. */
#define CEREBRO_BUFFER_ALIGN 64

/*
 * Runs stage @stage of the model (0 <= stage < meta.num_stages). A host calls
 * the stages in order with the same pointers; splitting into stages keeps
 * each kernel FPU section short. Inputs are read-only, outputs are written
 * whole, @arena holds meta.arena_size bytes of scratch owned by this call.
 * Returns CEREBRO_OK or a CEREBRO_E* code.
 *
 * @stage is a stage word: bits 0-15 the stage index, bits 16-23 the part
 * (0-based), bits 24-31 parts - 1. A plain stage number is part 0 of 1 (what
 * the kernel module passes). An index >= num_stages returns
 * CEREBRO_EBADSTAGE.
 *
 * One call split across N > 1 threads (only if meta.parts >= N): the host
 * zeroes the first CEREBRO_BARRIER_BYTES of the call's arena, then N threads
 * each run every stage in order with CEREBRO_STAGE_WORD(stage, part, N),
 * part = 0..N-1, the same pointers and the same arena. The call is complete
 * once all N have returned from the last stage. The code keeps a barrier
 * counter (i32 at arena offset 0) in those reserved bytes (meta.arena_size
 * counts them) and spins on it between node calls, so N should not exceed
 * the free cores. It splits whole output elements among the parts, each
 * computed as with one part, so results do not depend on N, bit for bit.
 */
typedef int32_t (*cerebro_entry_fn)(const void *const *inputs,
				    void *const *outputs, void *arena,
				    uint32_t stage);

/* The stage word of @stage for part @part of @parts (1..CEREBRO_MAX_PARTS). */
#define CEREBRO_STAGE_WORD(stage, part, parts) \
	((stage) | (part) << 16 | ((parts) - 1) << 24)
#define CEREBRO_STAGE_INDEX(word) ((word) & 0xffff)
#define CEREBRO_STAGE_PART(word) (((word) >> 16) & 0xff)
#define CEREBRO_STAGE_PARTS(word) (((word) >> 24) + 1)

/* The most threads one call may be split across (meta.parts <= this). */
#define CEREBRO_MAX_PARTS 256

/* Arena bytes at offset 0 that parallel code reserves for its barrier. */
#define CEREBRO_BARRIER_BYTES 64

#define CEREBRO_OK 0
#define CEREBRO_EBADSTAGE 1

/*
 * The only undefined symbols a model object may reference; a host resolves
 * each to its own implementation and refuses every other name. LLVM turns
 * copy loops into memcpy/memmove and fill loops into memset on its own.
 */
#define CEREBRO_IMPORT_MEMCPY "memcpy"
#define CEREBRO_IMPORT_MEMSET "memset"
#define CEREBRO_IMPORT_MEMMOVE "memmove"
#define CEREBRO_IMPORT_RETURN_THUNK "__x86_return_thunk"

#endif /* CEREBRO_ABI_H */
