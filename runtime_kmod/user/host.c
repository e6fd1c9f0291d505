// SPDX-License-Identifier: MIT
/*
 * User-space memory for .cbx images: one anonymous mapping holds every
 * allocated section (so PC-relative references always reach), then the
 * code becomes R+X and constant data read-only.
 */
#define _GNU_SOURCE
#include "host.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "cpu.h"
#include "image.h"
#include "meta.h"

#if defined(__x86_64__) || defined(__i386__)
#if defined(__x86_64__)
#define HOST_MACHINE CBX_EM_X86_64
#else
#define HOST_MACHINE CBX_EM_386
#endif
/*
 * Generated x86 code returns through __x86_return_thunk (the kernel's
 * return-thunk mitigation); in user space a plain ret is that thunk.
 */
__asm__(".text\n"
	".p2align 4\n"
	".type cbx_user_return_thunk, @function\n"
	"cbx_user_return_thunk:\n"
	"\tret\n"
	".size cbx_user_return_thunk, .-cbx_user_return_thunk\n");
void cbx_user_return_thunk(void);
#if defined(__i386__)
/* libgcc's 64-bit division: i686 code calls it for i64 div/rem (abi.h). */
uint64_t __udivdi3(uint64_t a, uint64_t b);
uint64_t __umoddi3(uint64_t a, uint64_t b);
int64_t __divdi3(int64_t a, int64_t b);
int64_t __moddi3(int64_t a, int64_t b);
#endif
#elif defined(__aarch64__)
#define HOST_MACHINE CBX_EM_AARCH64
#else
#error "the user-space host supports x86-64, i686 and aarch64"
#endif

static const struct cbx_import *host_imports(uint32_t *count)
{
	static struct cbx_import imports[8];
	uint32_t n = 0;

	imports[n].name = CEREBRO_IMPORT_MEMCPY;
	imports[n++].address = (uint64_t)(uintptr_t)&memcpy;
	imports[n].name = CEREBRO_IMPORT_MEMSET;
	imports[n++].address = (uint64_t)(uintptr_t)&memset;
	imports[n].name = CEREBRO_IMPORT_MEMMOVE;
	imports[n++].address = (uint64_t)(uintptr_t)&memmove;
#if defined(__x86_64__) || defined(__i386__)
	imports[n].name = CEREBRO_IMPORT_RETURN_THUNK;
	imports[n++].address = (uint64_t)(uintptr_t)&cbx_user_return_thunk;
#endif
#if defined(__i386__)
	imports[n].name = CEREBRO_IMPORT_UDIV64;
	imports[n++].address = (uint64_t)(uintptr_t)&__udivdi3;
	imports[n].name = CEREBRO_IMPORT_UMOD64;
	imports[n++].address = (uint64_t)(uintptr_t)&__umoddi3;
	imports[n].name = CEREBRO_IMPORT_SDIV64;
	imports[n++].address = (uint64_t)(uintptr_t)&__divdi3;
	imports[n].name = CEREBRO_IMPORT_SMOD64;
	imports[n++].address = (uint64_t)(uintptr_t)&__moddi3;
#endif
	*count = n;
	return imports;
}

unsigned int cbx_host_machine(void)
{
	return HOST_MACHINE;
}

static int protect(void *base, uint64_t start, uint64_t end, int prot, struct cbx_error *err)
{
	if (end <= start)
		return CBX_OK;
	if (mprotect((uint8_t *)base + start, end - start, prot) != 0)
		return cbx_fail(err, CBX_ENOMEM, "mprotect failed while loading the model");
	return CBX_OK;
}

/* Copies what the host keeps from the file: the meta section. */
static int keep_meta(struct cbx_model *model, const struct cbx_image *img, struct cbx_error *err)
{
	uint32_t count = img->meta.num_inputs + img->meta.num_outputs;
	uint32_t i;

	model->meta = img->meta;
	model->meta_len = img->meta.meta_size;
	model->meta_bytes = malloc(model->meta_len);
	model->tensors = calloc(count, sizeof(*model->tensors));
	if (!model->meta_bytes || !model->tensors)
		return cbx_fail(err, CBX_ENOMEM, "out of memory loading the model");
	memcpy(model->meta_bytes, img->meta_data, model->meta_len);
	for (i = 0; i < count; i++)
		cbx_meta_tensor(img->meta_data, i, &model->tensors[i]);
	return CBX_OK;
}

/* Whether file bytes [@start, @start + @len) and section @index share no byte. */
static bool apart(const struct cbx_image *img, uint32_t index, uint64_t start, uint64_t len)
{
	struct cbx_shdr sh;

	cbx_image_section(img, index, &sh);
	if (sh.type == CBX_SHT_NOBITS || !sh.size)
		return true;
	return sh.offset + sh.size <= start || start + len <= sh.offset;
}

/*
 * The weights section, if its pages may move out of the caller's copy of the
 * file: loaded, with data, at least a few pages, and sharing no byte with the
 * ELF header, the section headers or any other section (all of which are read
 * again after the move). 0 otherwise: then every section is copied.
 */
static uint32_t movable_section(const struct cbx_image *img, uint64_t page_size)
{
	uint64_t headers = (uint64_t)img->ehdr.shnum * img->ehdr.shentsize;
	uint32_t w = img->weights_section, i;
	struct cbx_shdr sh;

	if (!w)
		return 0;
	cbx_image_section(img, w, &sh);
	if (sh.type != CBX_SHT_PROGBITS || !(sh.flags & CBX_SHF_ALLOC) || sh.size < 4 * page_size)
		return 0;
	if (sh.offset < (img->elf32 ? sizeof(struct cbx_ehdr32) : sizeof(struct cbx_ehdr)))
		return 0;
	if (sh.offset < img->ehdr.shoff + headers && img->ehdr.shoff < sh.offset + sh.size)
		return 0;
	for (i = 1; i < img->ehdr.shnum; i++) {
		if (i != w && !apart(img, i, sh.offset, sh.size))
			return 0;
	}
	return w;
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4	/* Linux 5.7; older kernels refuse it and the section is copied */
#endif

/*
 * Puts the in_place section at its load offset: its whole pages move from
 * @file (layout made the two addresses congruent modulo the page size), the
 * partial pages at its ends are copied. MREMAP_DONTUNMAP leaves the moved
 * range of @file mapped, reading as zeros: no moment in which another thread
 * reading @file could fault. A move the kernel refuses is a copy.
 */
static void move_in(struct cbx_model *model, const struct cbx_image *img, struct cbx_file *file,
		    uint64_t page_size)
{
	struct cbx_shdr sh;
	uint8_t *src, *dst;
	uint64_t head, whole;

	cbx_image_section(img, img->in_place, &sh);
	src = file->data + sh.offset;
	dst = (uint8_t *)model->base + img->load_offset[img->in_place];
	head = (page_size - (uintptr_t)src % page_size) % page_size;
	head = head < sh.size ? head : sh.size;
	whole = (sh.size - head) & ~(page_size - 1);
	memcpy(dst, src, head);
	if (!whole || mremap(src + head, whole, whole, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
			     dst + head) == MAP_FAILED)
		memcpy(dst + head, src + head, whole);
	memcpy(dst + head + whole, src + head + whole, sh.size - head - whole);
}

static int map_image(struct cbx_model *model, const struct cbx_image *img, struct cbx_file *file,
		     uint64_t page_size, struct cbx_error *err)
{
	const struct cbx_import *imports;
	uint32_t num_imports;
	int ret;

	imports = host_imports(&num_imports);
	model->map_size = img->load_size;
	model->base = mmap(NULL, model->map_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (model->base == MAP_FAILED) {
		model->base = NULL;
		return cbx_fail(err, CBX_ENOMEM, "cannot map %zu bytes for the model", model->map_size);
	}
	if (img->in_place)
		move_in(model, img, file, page_size);
	ret = cbx_image_load(img, model->base, imports, num_imports, err);
	if (ret)
		return ret;
	__builtin___clear_cache((char *)model->base, (char *)model->base + img->exec_end);
	ret = protect(model->base, 0, img->exec_end, PROT_READ | PROT_EXEC, err);
	if (!ret)
		ret = protect(model->base, img->exec_end, img->ro_end, PROT_READ, err);
	if (ret)
		return ret;
	model->entry = (cerebro_entry_fn)(void *)((uint8_t *)model->base + img->entry_offset);
	return CBX_OK;
}

/* cbx_model_load(), moving the weights' pages out of @file when one is given (cbx_model_load_file). */
static int load(struct cbx_model **out, const void *data, size_t size, struct cbx_file *file,
		struct cbx_error *err)
{
	uint64_t page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	struct cbx_model *model;
	struct cbx_image *img;
	uint32_t num_imports;
	int ret;

	*out = NULL;
	model = calloc(1, sizeof(*model));
	img = malloc(sizeof(*img));
	if (!model || !img) {
		free(model);
		free(img);
		return cbx_fail(err, CBX_ENOMEM, "out of memory loading the model");
	}
	host_imports(&num_imports);
	ret = cbx_image_parse(img, data, size, HOST_MACHINE, err);
	if (!ret)
		ret = cbx_cpu_check(img->meta.features, err);
	if (!ret && file)
		img->in_place = movable_section(img, page_size);
	if (!ret)
		ret = cbx_image_layout(img, page_size, num_imports, err);
	if (!ret && img->in_place && img->load_offset[img->in_place] == CBX_NOT_LOADED)
		img->in_place = 0;
	if (!ret)
		ret = keep_meta(model, img, err);
	if (!ret)
		ret = map_image(model, img, file, page_size, err);
	free(img);
	if (ret) {
		cbx_model_free(model);
		return ret;
	}
	*out = model;
	return CBX_OK;
}

int cbx_model_load(struct cbx_model **out, const void *data, size_t size, struct cbx_error *err)
{
	return load(out, data, size, NULL, err);
}

int cbx_model_load_file(struct cbx_model **out, struct cbx_file *file, struct cbx_error *err)
{
	return load(out, file->data, file->size, file, err);
}

int cbx_file_alloc(struct cbx_file *file, size_t size, struct cbx_error *err)
{
	size_t page_size = (size_t)sysconf(_SC_PAGESIZE);

	memset(file, 0, sizeof(*file));
	if (size > SIZE_MAX - page_size)
		return cbx_fail(err, CBX_ENOMEM, "%zu bytes is too large for a .cbx", size);
	file->size = size;
	file->map_size = size ? (size + page_size - 1) & ~(page_size - 1) : page_size;
	/* faulted in at once (all of it is written next): a fifth less CPU than a fault per page (435 MB) */
	file->data = mmap(NULL, file->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
			  -1, 0);
	if (file->data == MAP_FAILED) {
		memset(file, 0, sizeof(*file));
		return cbx_fail(err, CBX_ENOMEM, "out of memory for %zu bytes of .cbx", size);
	}
	return CBX_OK;
}

int cbx_file_read(int fd, const char *name, struct cbx_file *file, struct cbx_error *err)
{
	struct stat st;
	size_t done = 0;
	ssize_t got;
	int ret;

	memset(file, 0, sizeof(*file));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return cbx_fail(err, CBX_ETRUNC, "%s: not a regular file", name);
	ret = cbx_file_alloc(file, (size_t)st.st_size, err);
	if (ret)
		return cbx_fail(err, ret, "%s: out of memory reading %zu bytes", name, (size_t)st.st_size);
	while (done < file->size) {
		got = pread(fd, file->data + done, file->size - done, (off_t)done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			cbx_fail(err, CBX_ETRUNC, "%s: read failed after %zu of %zu bytes", name, done, file->size);
			cbx_file_free(file);
			return CBX_ETRUNC;
		}
		done += (size_t)got;
	}
	return CBX_OK;
}

void cbx_file_free(struct cbx_file *file)
{
	if (file->data)
		munmap(file->data, file->map_size);
	memset(file, 0, sizeof(*file));
}

void cbx_model_free(struct cbx_model *model)
{
	if (!model)
		return;
	if (model->base)
		munmap(model->base, model->map_size);
	free(model->meta_bytes);
	free(model->tensors);
	free(model);
}

/* The stages in order (abi.h); the first error, its stage in *@failed. */
static int32_t run_stages(const struct cbx_model *model, const void *const *inputs,
			  void *const *outputs, void *arena, uint32_t *failed)
{
	int32_t status;

	for (*failed = 0; *failed < model->meta.num_stages; ++*failed) {
		status = model->entry(inputs, outputs, arena, *failed);
		if (status != CEREBRO_OK)
			return status;
	}
	return CEREBRO_OK;
}

/*
 * Whether one thread runs @model's calls as whole steps (abi.h
 * CEREBRO_WHOLE_STEP) rather than stages: the code then calls a convolution
 * once, not slice by slice, each slice reading its weights again (slices keep
 * the kernel module's FPU sections short; user space has none). One Xeon
 * core, same bits: squeezenet1_1 5.42 -> 4.96 ms, resnet18 batch 8 196 -> 158.
 */
static bool steps_alone(const struct cbx_model *model)
{
	return model->meta.parts > 1 && model->meta.regions <= 1;
}

/* The whole steps in order (abi.h); the first error, its step in *@failed. */
static int32_t run_steps(const struct cbx_model *model, const void *const *inputs,
			 void *const *outputs, void *arena, uint32_t *failed)
{
	int32_t status;

	for (*failed = 0; *failed < CBX_MAX_STAGES; ++*failed) {
		status = model->entry(inputs, outputs, arena, CEREBRO_WHOLE_STEP(*failed));
		if (status == CEREBRO_LAST_STEP)
			return CEREBRO_OK;
		if (status != CEREBRO_OK)
			return status;
	}
	return CEREBRO_EBADSTAGE;	/* past the word's range: the code never said which step was last */
}

/* The whole call on this thread: in steps where the model allows, else in stages. */
static int32_t run_whole(const struct cbx_model *model, const void *const *inputs,
			 void *const *outputs, void *arena, uint32_t *failed)
{
	if (steps_alone(model))
		return run_steps(model, inputs, outputs, arena, failed);
	return run_stages(model, inputs, outputs, arena, failed);
}

int cbx_model_run(const struct cbx_model *model, const void *const *inputs,
		  void *const *outputs, void *arena, struct cbx_error *err)
{
	uint32_t stage;
	int32_t status = run_whole(model, inputs, outputs, arena, &stage);

	if (status != CEREBRO_OK)
		return cbx_fail(err, CBX_ERUN, "model returned error %d at %s %u", status,
				steps_alone(model) ? "step" : "stage", stage);
	return CBX_OK;
}

struct parallel_call {
	const struct cbx_model *model;
	const void *const *inputs;
	void *const *outputs;
	void *arena;
};

/* Part @part of @parts of step @step (abi.h); the pool runs each step's parts, then the next step. */
static int run_part(void *data, unsigned int step, unsigned int part, unsigned int parts)
{
	struct parallel_call *call = data;

	if (step >= CBX_MAX_STAGES)	/* past the word's range: the code never said which step was last */
		return CEREBRO_EBADSTAGE;
	return call->model->entry(call->inputs, call->outputs, call->arena,
				  CEREBRO_STAGE_WORD(step, (uint32_t)part, (uint32_t)parts));
}

/* The whole call on this thread, as with one thread. */
static int run_alone(void *data)
{
	struct parallel_call *call = data;
	uint32_t step;

	return run_whole(call->model, call->inputs, call->outputs, call->arena, &step);
}

/*
 * Parts per thread of a split call's steps (fewer if meta.parts allows no
 * more): a thread whose share is done takes the other's last parts, so a step
 * ends when the work, not one thread's fixed half, is done. 2 threads, 8 each
 * against 1 each, interleaved medians under SCHED_FIFO: regnet_y_400mf 0.90x
 * the time, squeezenet1_1 0.94x, shufflenet_v2 batch 8 0.91x, gpt2 1.02x.
 */
#define PARTS_PER_THREAD 8u

int cbx_model_pool_create(struct cbx_pool **out, const struct cbx_model *model, unsigned int threads,
			  struct cbx_error *err)
{
	unsigned int per_thread;

	*out = NULL;
	if (threads > model->meta.parts)
		return cbx_fail(err, CBX_EMETA,
				"cannot run '%s' on %u threads: it was compiled without parallel support (meta.parts = %u)",
				model->meta.model_name, threads, model->meta.parts);
	if (threads <= 1)
		return CBX_OK;
	/* batch chunks in parallel: a task per thread, so the call needs a region per thread, no more */
	per_thread = model->meta.regions > 1 ? 1 : model->meta.parts / threads;
	return cbx_pool_create(out, threads, per_thread < PARTS_PER_THREAD ? per_thread : PARTS_PER_THREAD, err);
}

size_t cbx_model_arena_bytes(const struct cbx_model *model, const struct cbx_pool *pool)
{
	uint64_t need = cbx_arena_bytes(&model->meta, pool ? cbx_pool_tasks(pool) : 1);
	size_t bytes = ((size_t)need + CEREBRO_BUFFER_ALIGN - 1) & ~(size_t)(CEREBRO_BUFFER_ALIGN - 1);

	return bytes < CEREBRO_BARRIER_BYTES ? CEREBRO_BARRIER_BYTES : bytes;
}

int cbx_model_run_pool(const struct cbx_model *model, struct cbx_pool *pool,
		       const void *const *inputs, void *const *outputs, void *arena,
		       struct cbx_error *err)
{
	struct parallel_call call = { model, inputs, outputs, arena };
	unsigned int threads = pool ? cbx_pool_threads(pool) : 1;
	int status;

	if (threads <= 1)
		return cbx_model_run(model, inputs, outputs, arena, err);
	if (threads > model->meta.parts)
		return cbx_fail(err, CBX_ERUN, "cannot split a call across %u threads: the model allows %u",
				threads, model->meta.parts);
	if (!cbx_pool_run(pool, run_part, run_alone, &call, &status))
		return cbx_model_run(model, inputs, outputs, arena, err);
	if (status != CEREBRO_OK)
		return cbx_fail(err, CBX_ERUN, "model returned error %d on %u threads", status, threads);
	return CBX_OK;
}

int cbx_model_profile(const struct cbx_model *model, const void *const *inputs,
		      void *const *outputs, void *arena, uint32_t repeats,
		      uint64_t *stage_ns, struct cbx_error *err)
{
	uint32_t round, stage, stages = model->meta.num_stages;
	uint64_t start, end;
	int32_t status;

	for (round = 0; round < repeats; round++) {
		for (stage = 0; stage < stages; stage++) {
			start = cbx_now_ns();
			status = model->entry(inputs, outputs, arena, stage);
			end = cbx_now_ns();
			if (status != CEREBRO_OK)
				return cbx_fail(err, CBX_ERUN, "model returned error %d at stage %u", status, stage);
			stage_ns[(size_t)round * stages + stage] = end - start;
		}
	}
	return CBX_OK;
}

int cbx_model_profile_pool(const struct cbx_model *model, struct cbx_pool *pool,
			   const void *const *inputs, void *const *outputs, void *arena,
			   uint32_t repeats, uint64_t *step_ns, uint32_t max_steps, uint32_t *steps,
			   struct cbx_error *err)
{
	struct parallel_call call = { model, inputs, outputs, arena };
	uint64_t *row, before;
	uint32_t round, step;
	unsigned int ran = 0;
	int status;

	if (!pool || cbx_pool_threads(pool) <= 1)
		return cbx_fail(err, CBX_ERUN, "a profile per step needs a pool of 2 or more threads");
	for (round = 0; round < repeats; round++) {
		row = step_ns + (size_t)round * max_steps;
		if (!cbx_pool_run_traced(pool, run_part, &call, &status, row, max_steps, &ran))
			return cbx_fail(err, CBX_ERUN, "the thread pool is busy with another call");
		if (status != CEREBRO_OK && status != CEREBRO_LAST_STEP)
			return cbx_fail(err, CBX_ERUN, "model returned error %d on %u threads", status,
					cbx_pool_threads(pool));
		if (ran > max_steps)
			return cbx_fail(err, CBX_ERUN, "the call took %u steps, more than the %u expected", ran, max_steps);
		for (step = 0, before = 0; step < ran; step++) {	/* ends -> each step's own time */
			uint64_t end = row[step];

			row[step] = end - before;
			before = end;
		}
		*steps = ran;
	}
	return CBX_OK;
}
