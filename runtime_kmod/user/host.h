/* SPDX-License-Identifier: MIT */
/*
 * The user-space host: maps a .cbx into this process and calls it.
 */
#ifndef CBX_USER_HOST_H
#define CBX_USER_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <cerebro/abi.h>
#include <cerebro/cbx.h>

#include "error.h"
#include "pool.h"

struct cbx_model {
	void *base;			/* the mapping, load_size bytes */
	size_t map_size;
	cerebro_entry_fn entry;
	struct cbx_meta meta;		/* checked header */
	struct cbx_tensor *tensors;	/* inputs then outputs */
	void *meta_bytes;		/* the raw .cerebro.meta section */
	size_t meta_len;
};

/* The e_machine this process runs (62, 3 or 183). */
unsigned int cbx_host_machine(void);

/*
 * Checks and maps the image @data of @size bytes; @data may be freed
 * afterwards. On failure returns a CBX_E* code with @err filled.
 */
int cbx_model_load(struct cbx_model **out, const void *data, size_t size, struct cbx_error *err);

void cbx_model_free(struct cbx_model *model);

/* A private copy of a .cbx file, read into an anonymous page-aligned mapping of map_size bytes. */
struct cbx_file {
	uint8_t *data;
	size_t size;
	size_t map_size;
};

/*
 * Reads the regular file open as @fd (@name: for messages) into @file
 * (read, not mapped: later changes to the file never reach the copy);
 * free it with cbx_file_free().
 */
int cbx_file_read(int fd, const char *name, struct cbx_file *file, struct cbx_error *err);

/*
 * An empty @file of @size bytes, to be filled by the caller (the compiler's
 * .cbx pieces, joined once: cbx_model_load_file then moves their weights).
 */
int cbx_file_alloc(struct cbx_file *file, size_t size, struct cbx_error *err);

void cbx_file_free(struct cbx_file *file);

/*
 * cbx_model_load() of @file, checked the same way, except that the pages of
 * the weights section (when no other part of the file shares them) move
 * from @file into the image rather than being copied: a hundreds-of-MB
 * model then needs no second copy of its weights. Afterwards those bytes of
 * @file read as zeros (the range stays mapped); every other byte is as read.
 */
int cbx_model_load_file(struct cbx_model **out, struct cbx_file *file, struct cbx_error *err);

/*
 * Runs every stage in order. Buffers must hold the sizes the meta gives
 * and be CEREBRO_BUFFER_ALIGN-aligned; @arena holds meta.arena_size bytes
 * (cbx_model_arena_bytes(@model, NULL)).
 */
int cbx_model_run(const struct cbx_model *model, const void *const *inputs,
		  void *const *outputs, void *arena, struct cbx_error *err);

/*
 * A pool that splits @model's calls across @threads (*@out stays NULL for
 * 1); refuses more threads than meta.parts allows (CBX_EMETA).
 */
int cbx_model_pool_create(struct cbx_pool **out, const struct cbx_model *model, unsigned int threads,
			  struct cbx_error *err);

/*
 * Bytes of arena a call through cbx_model_run_pool(@model, @pool) needs
 * (@pool NULL: cbx_model_run): the regions of @pool's parts per call
 * (cbx.h cbx_arena_bytes; one without a pool) rounded up to the buffer
 * alignment, and at least CEREBRO_BARRIER_BYTES. Bounded by the checked
 * meta (CBX_MAX_ARENA_SIZE).
 */
size_t cbx_model_arena_bytes(const struct cbx_model *model, const struct cbx_pool *pool);

/*
 * Runs one call split across @pool's threads, as abi.h describes: the
 * parts of each step, then the next step, each part on whichever thread
 * claims it first (a thread the scheduler took away leaves its parts to the
 * others, a waiting thread spins briefly, then sleeps); or serially (plain
 * stage numbers) while that is faster (cbx_pool_run), or when @pool is NULL,
 * has 1 thread or is busy with another thread's call. Refuses a pool larger
 * than meta.parts. @arena holds cbx_model_arena_bytes(@model, @pool).
 */
int cbx_model_run_pool(const struct cbx_model *model, struct cbx_pool *pool,
		       const void *const *inputs, void *const *outputs, void *arena,
		       struct cbx_error *err);

/*
 * Runs the model @repeats times, timing every stage on its own:
 * @stage_ns[round * num_stages + stage] gets nanoseconds (CLOCK_MONOTONIC).
 */
int cbx_model_profile(const struct cbx_model *model, const void *const *inputs,
		      void *const *outputs, void *arena, uint32_t repeats,
		      uint64_t *stage_ns, struct cbx_error *err);

/*
 * Runs the model @repeats times split across @pool (2 or more threads,
 * always shared), timing every step (abi.h) on the calling thread from the
 * end of the step before to when all its parts had returned: hand-offs and
 * waits count to the step. @step_ns[round * @max_steps + step] gets
 * nanoseconds; *@steps the steps a call took (at most @max_steps).
 */
int cbx_model_profile_pool(const struct cbx_model *model, struct cbx_pool *pool,
			   const void *const *inputs, void *const *outputs, void *arena,
			   uint32_t repeats, uint64_t *step_ns, uint32_t max_steps, uint32_t *steps,
			   struct cbx_error *err);

#endif /* CBX_USER_HOST_H */
