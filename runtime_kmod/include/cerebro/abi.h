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

#define CEREBRO_ABI_VERSION 3	/* 2: split calls run steps, the host meets the parts; 3: whole steps */

/* Every model object defines exactly this global function. */
#define CEREBRO_ENTRY_SYMBOL "cerebro_entry"

/* The arena and every tensor buffer a host passes is aligned to this. */
#define CEREBRO_BUFFER_ALIGN 64

/*
 * Runs stage @stage of the model (0 <= stage < meta.num_stages). A host calls
 * the stages in order with the same pointers; splitting into stages keeps
 * each kernel FPU section short. Inputs are read-only, outputs are written
 * whole, @arena holds meta.arena_size bytes of scratch owned by this call
 * (a split call: cbx_arena_bytes(meta, parts) of cbx.h, its regions).
 * Returns CEREBRO_OK (CEREBRO_LAST_STEP, below) or a CEREBRO_E* code.
 *
 * @stage is a stage word: bits 0-15 the index, bits 16-23 the part
 * (0-based), bits 24-31 parts - 1. A plain stage number is part 0 of 1 (what
 * the kernel module passes): the index is a stage. An index past the last
 * returns CEREBRO_EBADSTAGE.
 *
 * One call split into N > 1 parts (only if meta.parts >= N), to run on up
 * to N threads: with parts > 1 the index is a step, not a stage. The host
 * runs steps 0, 1, ... in order, every part = 0..N-1 of each with
 * CEREBRO_STAGE_WORD(step, part, N), the same pointers and the same arena,
 * on any of its threads, and begins no part of step k + 1 before every part
 * of step k has returned. Every part of the last step returns
 * CEREBRO_LAST_STEP (the others CEREBRO_OK); the call is complete once all
 * have returned. The code itself never waits, so a host may sleep, or have
 * another thread take a part, while a thread is descheduled. The first
 * CEREBRO_BARRIER_BYTES of the arena are reserved (meta.arena_size counts
 * them; the code never touches them). A model with meta.regions > 1 runs
 * its batch chunks whole on min(N, meta.regions) groups of consecutive
 * parts, each in its own arena region (cbx.h); a host that splits calls
 * into no more parts than it has threads allocates only the regions its
 * threads use. The code splits whole output elements
 * among the parts, each computed as with one part, so results do not depend
 * on N, bit for bit.
 *
 * A host running a call on one thread may run its steps whole instead of its
 * stages (a model with meta.parts > 1 and meta.regions <= 1):
 * CEREBRO_WHOLE_STEP(step) for steps 0, 1, ... until one returns
 * CEREBRO_LAST_STEP. A stage may be a slice of a node cut small for the
 * kernel's FPU sections; a whole step is that step with every node whole
 * (a convolution's slices each read its weights again). The same bits
 * either way.
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
/* Step @step of a call run whole on one thread: part 255 of 1, a word no split call uses. */
#define CEREBRO_WHOLE_STEP(step) ((step) | 0xffu << 16)

/* The most threads one call may be split across (meta.parts <= this). */
#define CEREBRO_MAX_PARTS 256

/* Arena bytes at offset 0 that parallel code leaves alone (ABI 1 kept its barrier there). */
#define CEREBRO_BARRIER_BYTES 64

#define CEREBRO_OK 0
#define CEREBRO_EBADSTAGE 1
#define CEREBRO_LAST_STEP 2	/* from the last step of a split call: done */

/*
 * The only undefined symbols a model object may reference; a host resolves
 * each to its own implementation and refuses every other name. LLVM turns
 * copy loops into memcpy/memmove and fill loops into memset on its own.
 */
#define CEREBRO_IMPORT_MEMCPY "memcpy"
#define CEREBRO_IMPORT_MEMSET "memset"
#define CEREBRO_IMPORT_MEMMOVE "memmove"
#define CEREBRO_IMPORT_RETURN_THUNK "__x86_return_thunk"
/* i686 only: 64-bit division has no instruction there, LLVM calls libgcc's. */
#define CEREBRO_IMPORT_UDIV64 "__udivdi3"
#define CEREBRO_IMPORT_UMOD64 "__umoddi3"
#define CEREBRO_IMPORT_SDIV64 "__divdi3"
#define CEREBRO_IMPORT_SMOD64 "__moddi3"

#endif /* CEREBRO_ABI_H */
