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
 */
typedef int32_t (*cerebro_entry_fn)(const void *const *inputs,
				    void *const *outputs, void *arena,
				    uint32_t stage);

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
