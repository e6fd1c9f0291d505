// SPDX-License-Identifier: MIT
/*
 * The public face of the user-space host (include/cerebro/cerebro_runtime.h):
 * host.c's loader and runner behind names and messages meant for embedders.
 */
#include <cerebro/cerebro_runtime.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

static const char *const dtype_names[] = {
	[CBX_DTYPE_F32] = "float32", [CBX_DTYPE_F64] = "float64", [CBX_DTYPE_I8] = "int8",
	[CBX_DTYPE_I16] = "int16", [CBX_DTYPE_I32] = "int32", [CBX_DTYPE_I64] = "int64",
	[CBX_DTYPE_U8] = "uint8", [CBX_DTYPE_BOOL] = "bool", [CBX_DTYPE_U16] = "uint16",
	[CBX_DTYPE_U32] = "uint32", [CBX_DTYPE_F16] = "float16", [CBX_DTYPE_BF16] = "bfloat16",
};

/* Copies @e's message to the caller's buffer; returns its code. */
static int report(const struct cbx_error *e, char *err, size_t err_len)
{
	if (err && err_len)
		snprintf(err, err_len, "%s", e->msg);
	return e->code ? e->code : CBX_ERUN;
}

int cbx_runtime_load_memory(struct cbx_model **out, const void *data, size_t size,
			    char *err, size_t err_len)
{
	struct cbx_error e = { 0 };

	if (cbx_model_load(out, data, size, &e) != CBX_OK)
		return report(&e, err, err_len);
	return CBX_OK;
}

int cbx_runtime_load_file(struct cbx_model **out, const char *path, char *err, size_t err_len)
{
	struct cbx_error e = { 0 };
	struct cbx_file file;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	*out = NULL;
	if (fd < 0) {
		cbx_fail(&e, CBX_ETRUNC, "cannot open %s: %s", path, strerror(errno));
		return report(&e, err, err_len);
	}
	ret = cbx_file_read(fd, path, &file, &e);
	close(fd);
	if (ret != CBX_OK)
		return report(&e, err, err_len);
	ret = cbx_model_load_file(out, &file, &e);	/* the weights' pages move from the copy: no second copy */
	cbx_file_free(&file);
	if (ret != CBX_OK) {
		/* name the file: the loader's message only describes its content */
		char msg[CBX_ERROR_LEN];

		snprintf(msg, sizeof(msg), "%s", e.msg);
		cbx_fail(&e, ret, "%s: %s", path, msg);
		return report(&e, err, err_len);
	}
	return CBX_OK;
}

void cbx_runtime_free(struct cbx_model *model)
{
	cbx_model_free(model);
}

const char *cbx_runtime_model_name(const struct cbx_model *model)
{
	return model->meta.model_name;
}

uint32_t cbx_runtime_num_inputs(const struct cbx_model *model)
{
	return model->meta.num_inputs;
}

uint32_t cbx_runtime_num_outputs(const struct cbx_model *model)
{
	return model->meta.num_outputs;
}

const struct cbx_tensor *cbx_runtime_input(const struct cbx_model *model, uint32_t index)
{
	return index < model->meta.num_inputs ? &model->tensors[index] : NULL;
}

const struct cbx_tensor *cbx_runtime_output(const struct cbx_model *model, uint32_t index)
{
	if (index >= model->meta.num_outputs)
		return NULL;
	return &model->tensors[model->meta.num_inputs + index];
}

const char *cbx_runtime_dtype_name(uint32_t dtype)
{
	if (dtype >= sizeof(dtype_names) / sizeof(dtype_names[0]) || !dtype_names[dtype])
		return "unknown";
	return dtype_names[dtype];
}

size_t cbx_runtime_arena_bytes(const struct cbx_model *model)
{
	return cbx_model_arena_bytes(model, NULL);
}

/* The first buffer the generated code could not use as given, or -1. */
static long misaligned(const void *const *buffers, uint32_t count)
{
	uint32_t i;

	for (i = 0; i < count; i++) {
		if (!buffers[i] || (uintptr_t)buffers[i] % CEREBRO_BUFFER_ALIGN)
			return (long)i;
	}
	return -1;
}

int cbx_runtime_run(const struct cbx_model *model, const void *const *inputs,
		    void *const *outputs, void *arena, char *err, size_t err_len)
{
	size_t arena_bytes = cbx_model_arena_bytes(model, NULL);
	struct cbx_error e = { 0 };
	void *own = NULL;
	long bad;
	int ret;

	bad = misaligned(inputs, model->meta.num_inputs);
	if (bad >= 0) {
		cbx_fail(&e, CBX_ERUN, "input '%s' is NULL or not %d-byte aligned",
			 model->tensors[bad].name, CEREBRO_BUFFER_ALIGN);
		return report(&e, err, err_len);
	}
	bad = misaligned((const void *const *)outputs, model->meta.num_outputs);
	if (bad >= 0 || (arena && (uintptr_t)arena % CEREBRO_BUFFER_ALIGN)) {
		cbx_fail(&e, CBX_ERUN, "%s%s%s is NULL or not %d-byte aligned",
			 bad >= 0 ? "output '" : "the arena",
			 bad >= 0 ? model->tensors[model->meta.num_inputs + bad].name : "",
			 bad >= 0 ? "'" : "", CEREBRO_BUFFER_ALIGN);
		return report(&e, err, err_len);
	}
	if (!arena) {
		own = aligned_alloc(CEREBRO_BUFFER_ALIGN, arena_bytes);
		if (!own) {
			cbx_fail(&e, CBX_ENOMEM, "out of memory for a %zu-byte arena", arena_bytes);
			return report(&e, err, err_len);
		}
		arena = own;
	}
	ret = cbx_model_run(model, inputs, outputs, arena, &e);
	free(own);
	return ret == CBX_OK ? CBX_OK : report(&e, err, err_len);
}
