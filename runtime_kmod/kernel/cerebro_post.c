// SPDX-License-Identifier: MIT
/*
 * What post-processing does to the signature of output 0 (integer code;
 * the arithmetic itself is in cerebro_fp.c).
 */
#include <linux/kernel.h>
#include <linux/string.h>

#include "cerebro_internal.h"

#define CEREBRO_MAX_TOPK 64

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
