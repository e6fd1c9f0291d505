// SPDX-License-Identifier: MIT
/*
 * direct OUT.bin IN0.bin [IN1.bin ...]
 *
 * A program with a model linked in (cerebroc export-c --prefix model): prints
 * the signature from model.h, runs model_run() and writes the outputs.
 * Built as: cc direct_main.c model.o
 */
#include <inttypes.h>

#include "model.h"
#include "tensor_io.h"

static void print_tensor(const char *role, const struct cerebro_tensor_info *t)
{
	uint32_t d;

	printf("%s %s %s [", role, t->name, t->dtype_name);
	for (d = 0; d < t->rank; d++)
		printf("%s%" PRIu64, d ? ", " : "", t->dims[d]);
	printf("] %" PRIu64 "\n", t->nbytes);
}

int main(int argc, char **argv)
{
	void *inputs[MODEL_NUM_INPUTS + 1], *outputs[MODEL_NUM_OUTPUTS];
	uint64_t sizes[MODEL_NUM_OUTPUTS];
	void *arena = tensor_alloc(MODEL_ARENA_BYTES);
	int i, status;

	if (argc != 2 + MODEL_NUM_INPUTS) {
		fprintf(stderr, "usage: direct OUT.bin and %d input files\n", MODEL_NUM_INPUTS);
		return 2;
	}
	printf("model %s stages %u arena %llu\n", MODEL_MODEL_NAME, MODEL_NUM_STAGES,
	       (unsigned long long)MODEL_ARENA_BYTES);
	for (i = 0; i < MODEL_NUM_INPUTS; i++) {
		print_tensor("input", &model_inputs[i]);
		inputs[i] = tensor_read(argv[2 + i], model_inputs[i].nbytes);
	}
	for (i = 0; i < MODEL_NUM_OUTPUTS; i++) {
		print_tensor("output", &model_outputs[i]);
		sizes[i] = model_outputs[i].nbytes;
		outputs[i] = tensor_alloc(sizes[i]);
	}
	status = model_run((const void *const *)inputs, outputs, arena);
	if (status != 0) {
		fprintf(stderr, "model_run failed: %d\n", status);
		return 1;
	}
	tensor_write(argv[1], outputs, sizes, MODEL_NUM_OUTPUTS);
	return 0;
}
