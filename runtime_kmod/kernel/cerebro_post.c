// SPDX-License-Identifier: MIT
/*
 * Pre- and post-processing of a call: what post-processing does to the
 * signature of output 0, and the work itself in bounded pieces.
 *
 * Float work (input scale/offset, softmax; the arithmetic is in
 * cerebro_fp.c) runs in FPU sections that end after CEREBRO_FPU_CHUNK
 * elements, with cond_resched() between them, so no section grows with the
 * size of a tensor. argmax and top-k need no FPU at all: they compare f32
 * bits mapped to integers that order like the floats, with cond_resched()
 * every CEREBRO_INT_CHUNK elements. Top-k keeps the k best in a heap
 * (O(n log k)).
 */
#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/timekeeping.h>

#include "cerebro_fpu.h"
#include "cerebro_internal.h"

#define CEREBRO_MAX_TOPK 64
/* Elements per FPU section: the polynomial exp of 16 K floats is ~0.2 ms on a 2 GHz core. */
#define CEREBRO_FPU_CHUNK 16384
/* Elements between two cond_resched() calls of the integer loops. */
#define CEREBRO_INT_CHUNK 65536

int cerebro_post_signature(const struct cbx_tensor *out0,
			   const struct cerebro_options *opts,
			   struct cerebro_tensor_info *info, char *why,
			   size_t why_len)
{
	u64 rows = 1;
	u64 last;
	u32 d;

	BUILD_BUG_ON(sizeof(*info) != sizeof(*out0));
	memcpy(info, out0, sizeof(*info));
	if (opts->post == CEREBRO_POST_NONE)
		return 0;
	if (out0->dtype != CBX_DTYPE_F32 || out0->rank == 0) {
		snprintf(why, why_len, "post-processing needs output 0 ('%s') to be f32 with rank >= 1",
			 out0->name);
		return -EINVAL;
	}
	last = out0->dims[out0->rank - 1];
	if (last == 0) {
		snprintf(why, why_len, "output 0 ('%s') has an empty last axis", out0->name);
		return -EINVAL;
	}
	for (d = 0; d + 1 < out0->rank; d++)
		rows *= out0->dims[d];
	switch (opts->post) {
	case CEREBRO_POST_SOFTMAX:
		return 0;
	case CEREBRO_POST_ARGMAX:
		info->dtype = CBX_DTYPE_I32;
		info->dims[out0->rank - 1] = 0;
		info->rank = out0->rank - 1;
		info->nbytes = rows * 4;
		return 0;
	case CEREBRO_POST_TOPK:
		if (opts->topk == 0 || opts->topk > last || opts->topk > CEREBRO_MAX_TOPK) {
			snprintf(why, why_len, "top-k needs 1 <= k <= min(%llu, %d), got %u",
				 last, CEREBRO_MAX_TOPK, opts->topk);
			return -EINVAL;
		}
		info->dtype = CBX_DTYPE_I32;
		info->dims[out0->rank - 1] = opts->topk;
		info->nbytes = rows * opts->topk * 4;
		return 0;
	}
	snprintf(why, why_len, "unknown post-processing %u", opts->post);
	return -EINVAL;
}

/* A run of FPU sections, each ended once it has done CEREBRO_FPU_CHUNK elements. */
struct fpu_run {
	u64 done;	/* elements in the open section */
	u64 start;	/* when it began, ns */
	u64 longest;	/* ns */
};

static void fpu_run_begin(struct fpu_run *run)
{
	kernel_fpu_begin();
	run->start = ktime_get_ns();
	run->done = 0;
}

static void fpu_run_end(struct fpu_run *run)
{
	run->longest = max(run->longest, ktime_get_ns() - run->start);
	kernel_fpu_end();
}

/* Counts @n elements just done; past the chunk, closes the section and yields. */
static void fpu_run_spent(struct fpu_run *run, u64 n)
{
	run->done += n;
	if (run->done < CEREBRO_FPU_CHUNK)
		return;
	fpu_run_end(run);
	cond_resched();
	fpu_run_begin(run);
}

u64 cerebro_preprocess(struct cerebro_handle *h, const struct cerebro_options *opts)
{
	struct cerebro_model *model = h->model;
	struct fpu_run run = { 0 };
	u64 at, n;
	u32 i;

	if (opts->scale_bits == CEREBRO_F32_ONE && opts->offset_bits == 0)
		return 0;
	fpu_run_begin(&run);
	for (i = 0; i < model->meta.num_inputs; i++) {
		if (model->tensors[i].dtype != CBX_DTYPE_F32)
			continue;
		n = model->tensors[i].nbytes / 4;
		for (at = 0; at < n; at += CEREBRO_FPU_CHUNK) {
			u64 len = min_t(u64, n - at, CEREBRO_FPU_CHUNK);

			cerebro_fp_affine((float *)h->inputs[i] + at, len, opts->scale_bits,
					  opts->offset_bits);
			fpu_run_spent(&run, len);
		}
	}
	fpu_run_end(&run);
	return run.longest;
}

/*
 * f32 bits as a u32 ordered like the floats: -0 equals +0, and every NaN
 * is above +inf (so argmax and top-k pick NaNs first, as numpy's argmax).
 */
static u32 order_key(u32 bits)
{
	if ((bits & 0x7fffffff) > 0x7f800000)
		return U32_MAX;
	if (bits == 0x80000000)
		bits = 0;
	return bits & 0x80000000 ? ~bits : bits | 0x80000000;
}

/* Element a ranks before b: a greater value, or an equal one at a lower index. */
static bool ranks_before(const u32 *v, s32 a, s32 b)
{
	u32 ka = order_key(v[a]), kb = order_key(v[b]);

	return ka > kb || (ka == kb && a < b);
}

/* The first greatest of v[best] and v[at..end-1] (best <= at): its index. */
static u64 first_greatest(const u32 *v, u64 at, u64 end, u64 best)
{
	u32 best_key = order_key(v[best]);

	for (; at < end; at++) {
		u32 key = order_key(v[at]);

		if (key > best_key) {
			best = at;
			best_key = key;
		}
	}
	return best;
}

static u64 argmax_row(const u32 *v, u64 n)
{
	u64 best = 0, at;

	for (at = 0; at < n; at += CEREBRO_INT_CHUNK) {
		best = first_greatest(v, at, min(n, at + CEREBRO_INT_CHUNK), best);
		cond_resched();
	}
	return best;
}

/* heap[0..size-1] is a heap whose root ranks last; restores it below @at. */
static void sift_down(const u32 *v, s32 *heap, u32 size, u32 at)
{
	for (;;) {
		u32 child = 2 * at + 1, last = at;

		if (child < size && ranks_before(v, heap[last], heap[child]))
			last = child;
		if (child + 1 < size && ranks_before(v, heap[last], heap[child + 1]))
			last = child + 1;
		if (last == at)
			return;
		swap(heap[at], heap[last]);
		at = last;
	}
}

/*
 * The k best of v[0..n-1] (1 <= k <= n), best first, ties to the lower
 * index: the order of k repeated selections, in O(n log k). @out holds the
 * heap while the row is scanned.
 */
static void topk_row(const u32 *v, u64 n, u32 k, s32 *out)
{
	u64 at, i;
	u32 j;

	for (j = 0; j < k; j++)
		out[j] = j;
	for (j = k / 2; j-- > 0;)
		sift_down(v, out, k, j);
	for (at = k; at < n; at += CEREBRO_INT_CHUNK) {
		for (i = at; i < min(n, at + CEREBRO_INT_CHUNK); i++) {
			if (ranks_before(v, i, out[0])) {
				out[0] = i;
				sift_down(v, out, k, 0);
			}
		}
		cond_resched();
	}
	for (j = k; j-- > 1;) {	/* the last-ranked goes to the end, and so on */
		swap(out[0], out[j]);
		sift_down(v, out, j, 0);
	}
}

/* max, then exp and their sum, then the division: each pass in bounded sections. */
static void softmax_row(float *v, u64 n, struct fpu_run *run)
{
	const u32 *bits = (const u32 *)v;
	u64 best = 0, at, len, sum_bits = 0;	/* 0: the bits of +0.0 */
	u32 max_bits;

	for (at = 0; at < n; at += len) {
		len = min_t(u64, n - at, CEREBRO_FPU_CHUNK);
		best = first_greatest(bits, at, at + len, best);
		fpu_run_spent(run, len);
	}
	max_bits = bits[best];
	for (at = 0; at < n; at += len) {
		len = min_t(u64, n - at, CEREBRO_FPU_CHUNK);
		sum_bits = cerebro_fp_exp_sum(v + at, len, max_bits, sum_bits);
		fpu_run_spent(run, len);
	}
	for (at = 0; at < n; at += len) {
		len = min_t(u64, n - at, CEREBRO_FPU_CHUNK);
		cerebro_fp_divide(v + at, len, sum_bits);
		fpu_run_spent(run, len);
	}
}

u64 cerebro_postprocess(struct cerebro_handle *h, const struct cerebro_options *opts)
{
	const struct cbx_tensor *out0 = &h->model->tensors[h->model->meta.num_inputs];
	u64 n = out0->rank ? out0->dims[out0->rank - 1] : 1;
	u64 rows = n ? out0->nbytes / 4 / n : 0;
	const u32 *bits = h->outputs[0];
	struct fpu_run run = { 0 };
	s32 *picked = h->post;
	u64 row;

	switch (opts->post) {
	case CEREBRO_POST_SOFTMAX:
		memcpy(h->post, h->outputs[0], out0->nbytes);
		fpu_run_begin(&run);
		for (row = 0; row < rows; row++)
			softmax_row((float *)h->post + row * n, n, &run);
		fpu_run_end(&run);
		break;
	case CEREBRO_POST_ARGMAX:
		for (row = 0; row < rows; row++)
			picked[row] = argmax_row(bits + row * n, n);
		break;
	case CEREBRO_POST_TOPK:
		for (row = 0; row < rows; row++) {
			topk_row(bits + row * n, n, opts->topk, picked + row * opts->topk);
			cond_resched();
		}
		break;
	}
	return run.longest;
}
