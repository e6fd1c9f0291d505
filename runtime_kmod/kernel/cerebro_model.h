/* SPDX-License-Identifier: MIT */
/*
 * The contract between cerebro.ko and a model module: the model module's
 * glue fills a descriptor and registers it; the core pins the owner module
 * (try_module_get) for as long as a handle or the default model uses it.
 */
#ifndef CEREBRO_MODEL_H
#define CEREBRO_MODEL_H

#include <linux/module.h>
#include <linux/types.h>
#include <cerebro/cbx.h>

/* Runs one stage of the model; FPU state is the caller's business. */
typedef int (*cerebro_run_stage_fn)(const void *const *inputs,
				    void *const *outputs, void *arena,
				    u32 stage);

struct cerebro_model_desc {
	struct module *owner;
	const struct cbx_meta *meta;	/* the module's own .cerebro.meta */
	cerebro_run_stage_fn run_stage;
};

int cerebro_register_model(const struct cerebro_model_desc *desc);
void cerebro_unregister_model(const struct cerebro_model_desc *desc);

/*
 * A model module carries the alias CEREBRO_MODEL_ALIAS_PREFIX followed by
 * the first 16 bytes of its .cbx hash in hex, so request_module() finds it.
 */
#define CEREBRO_MODEL_ALIAS_PREFIX "cerebro-model-"

#endif /* CEREBRO_MODEL_H */
