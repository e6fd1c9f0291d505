// SPDX-License-Identifier: MIT
/*
 * Glue of a model module. Kbuild links the unchanged .cbx object (the code,
 * .cerebro.meta and .cerebro.weights) next to this file; the glue only
 * tells cerebro.ko where the entry point and the metadata are.
 */
#include <linux/module.h>
#include <cerebro/abi.h>

#include "cerebro_model.h"

extern const struct cbx_meta cerebro_meta;
int32_t cerebro_entry(const void *const *inputs, void *const *outputs,
		      void *arena, uint32_t stage);

/*
 * The generated code follows the SysV ABI and may keep 16-byte vectors on
 * its stack; the kernel only keeps 8-byte stack alignment. This file is
 * built with -mincoming-stack-boundary=3 -mpreferred-stack-boundary=4, so
 * gcc realigns the stack here before the call.
 */
static int run_stage(const void *const *inputs, void *const *outputs,
		     void *arena, u32 stage)
{
	return cerebro_entry(inputs, outputs, arena, stage);
}

static const struct cerebro_model_desc desc = {
	.owner = THIS_MODULE,
	.meta = &cerebro_meta,
	.run_stage = run_stage,
};

static int __init model_init(void)
{
	return cerebro_register_model(&desc);
}

static void __exit model_exit(void)
{
	cerebro_unregister_model(&desc);
}

module_init(model_init);
module_exit(model_exit);
MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("Cerebro model " CEREBRO_MODEL_HASH);
MODULE_ALIAS(CEREBRO_MODEL_ALIAS_PREFIX CEREBRO_MODEL_ALIAS);
