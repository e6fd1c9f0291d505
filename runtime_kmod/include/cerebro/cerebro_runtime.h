/* SPDX-License-Identifier: MIT */
/*
 * The Cerebro user-space runtime as a C library (libcerebro_runtime.a):
 * load a .cbx from a file or from memory, read its signature, run it.
 *
 *   cerebroc runtime-lib -o DIR      writes DIR/lib/libcerebro_runtime.a
 *                                    and DIR/include/cerebro/{cerebro_runtime,abi,cbx}.h
 *   cc -IDIR/include main.c DIR/lib/libcerebro_runtime.a -pthread
 *
 * Every function that can fail returns 0 or a nonzero status code and, when
 * @err is not NULL, writes a one-line message of at most @err_len bytes
 * (NUL included; CBX_RUNTIME_ERROR_LEN is always enough) there. A loaded
 * model is read-only: one model may run on several threads at once, each
 * call with its own buffers and arena. See docs/embedding.md.
 */
#ifndef CEREBRO_RUNTIME_H
#define CEREBRO_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <cerebro/abi.h>
#include <cerebro/cbx.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CBX_RUNTIME_ERROR_LEN 200

/* A loaded model (opaque). */
struct cbx_model;

/* Checks and maps the .cbx at @path. */
int cbx_runtime_load_file(struct cbx_model **out, const char *path, char *err, size_t err_len);

/* Checks and maps the .cbx image @data of @size bytes; @data may be freed afterwards. */
int cbx_runtime_load_memory(struct cbx_model **out, const void *data, size_t size,
			    char *err, size_t err_len);

/* Unmaps @model (NULL is fine). */
void cbx_runtime_free(struct cbx_model *model);

/* The signature: the model's name, its inputs and outputs (name, dtype, shape, bytes). */
const char *cbx_runtime_model_name(const struct cbx_model *model);
uint32_t cbx_runtime_num_inputs(const struct cbx_model *model);
uint32_t cbx_runtime_num_outputs(const struct cbx_model *model);
/* Input @index, or NULL past the last. */
const struct cbx_tensor *cbx_runtime_input(const struct cbx_model *model, uint32_t index);
/* Output @index, or NULL past the last. */
const struct cbx_tensor *cbx_runtime_output(const struct cbx_model *model, uint32_t index);
/* "float32", "int64", ... for an enum cbx_dtype code; "unknown" otherwise. */
const char *cbx_runtime_dtype_name(uint32_t dtype);

/*
 * Bytes of scratch one call needs (a multiple of CEREBRO_BUFFER_ALIGN): a
 * call here runs on the calling thread, so one arena region (cbx.h) however
 * many a batch-chunked model could use on more threads.
 */
size_t cbx_runtime_arena_bytes(const struct cbx_model *model);

/*
 * Runs the model once. @inputs and @outputs hold one pointer per tensor in
 * signature order, each CEREBRO_BUFFER_ALIGN-aligned and as large as the
 * tensor's nbytes (aligned_alloc(CEREBRO_BUFFER_ALIGN, ...) gives such
 * buffers). @arena is cbx_runtime_arena_bytes() aligned bytes, or NULL to
 * have this call allocate and free one.
 */
int cbx_runtime_run(const struct cbx_model *model, const void *const *inputs,
		    void *const *outputs, void *arena, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* CEREBRO_RUNTIME_H */
