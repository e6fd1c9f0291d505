// SPDX-License-Identifier: MIT
/*
 * runtime MODEL.cbx OUT.bin IN0.bin [IN1.bin ...]
 *
 * A program using libcerebro_runtime.a: loads the model from its file and
 * again from memory, prints the signature, runs both (their outputs must be
 * identical), writes the outputs, then shows that half of the file and a
 * misaligned input are refused with a message. Built as:
 *   cc -IDIR/include runtime_main.c DIR/lib/libcerebro_runtime.a -pthread
 */
#include <inttypes.h>

#include <cerebro/cerebro_runtime.h>

#include "tensor_io.h"

static void print_tensor(const char *role, const struct cbx_tensor *t)
{
	uint32_t d;

	printf("%s %s %s [", role, t->name, cbx_runtime_dtype_name(t->dtype));
	for (d = 0; d < t->rank; d++)
		printf("%s%" PRIu64, d ? ", " : "", t->dims[d]);
	printf("] %" PRIu64 "\n", t->nbytes);
}

/* The whole of @path and its size, or exits. */
static void *read_whole(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	long len;
	void *data;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	data = tensor_alloc((uint64_t)len);
	if (fread(data, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	*size = (size_t)len;
	return data;
}

/* Runs @model on @inputs into fresh buffers (sizes into @sizes), or exits. */
static void **run(const struct cbx_model *model, void *const *inputs, uint64_t *sizes)
{
	uint32_t i, n = cbx_runtime_num_outputs(model);
	void **outputs = calloc(n, sizeof(*outputs));
	char err[CBX_RUNTIME_ERROR_LEN];

	for (i = 0; outputs && i < n; i++) {
		sizes[i] = cbx_runtime_output(model, i)->nbytes;
		outputs[i] = tensor_alloc(sizes[i]);
	}
	if (!outputs || cbx_runtime_run(model, (const void *const *)inputs, outputs, NULL, err, sizeof(err))) {
		fprintf(stderr, "run failed: %s\n", outputs ? err : "out of memory");
		exit(1);
	}
	return outputs;
}

int main(int argc, char **argv)
{
	char err[CBX_RUNTIME_ERROR_LEN];
	struct cbx_model *from_file, *from_memory, *half;
	void *inputs[CBX_MAX_TENSORS];
	uint64_t sizes[CBX_MAX_TENSORS];
	void **first, **second, *image;
	uint32_t i, n_in, n_out;
	size_t size;

	if (argc < 3)
		return 2;
	if (cbx_runtime_load_file(&from_file, argv[1], err, sizeof(err))) {
		fprintf(stderr, "load_file: %s\n", err);
		return 1;
	}
	n_in = cbx_runtime_num_inputs(from_file);
	n_out = cbx_runtime_num_outputs(from_file);
	if ((uint32_t)argc != 3 + n_in) {
		fprintf(stderr, "the model takes %u inputs\n", n_in);
		return 2;
	}
	printf("model %s arena %zu\n", cbx_runtime_model_name(from_file), cbx_runtime_arena_bytes(from_file));
	for (i = 0; i < n_in; i++) {
		print_tensor("input", cbx_runtime_input(from_file, i));
		inputs[i] = tensor_read(argv[3 + i], cbx_runtime_input(from_file, i)->nbytes);
	}
	for (i = 0; i < n_out; i++)
		print_tensor("output", cbx_runtime_output(from_file, i));
	first = run(from_file, inputs, sizes);

	image = read_whole(argv[1], &size);
	if (cbx_runtime_load_memory(&from_memory, image, size, err, sizeof(err))) {
		fprintf(stderr, "load_memory: %s\n", err);
		return 1;
	}
	second = run(from_memory, inputs, sizes);
	for (i = 0; i < n_out; i++) {
		if (memcmp(first[i], second[i], (size_t)sizes[i]) != 0) {
			fprintf(stderr, "output %u differs between the file and memory loads\n", i);
			return 1;
		}
	}
	tensor_write(argv[2], first, sizes, n_out);

	if (cbx_runtime_load_memory(&half, image, size / 2, err, sizeof(err)) == 0) {
		fprintf(stderr, "half of the image loaded\n");
		return 1;
	}
	printf("half refused: %s\n", err);
	inputs[0] = (char *)inputs[0] + 1;
	if (cbx_runtime_run(from_file, (const void *const *)inputs, second, NULL, err, sizeof(err)) == 0) {
		fprintf(stderr, "a misaligned input ran\n");
		return 1;
	}
	printf("misaligned refused: %s\n", err);
	cbx_runtime_free(from_file);
	cbx_runtime_free(from_memory);
	free(image);
	return 0;
}
