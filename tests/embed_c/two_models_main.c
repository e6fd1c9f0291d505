// SPDX-License-Identifier: MIT
/*
 * two_models IN0.bin IN1.bin
 *
 * Two exports of one model (cerebroc export-c --prefix first / --prefix
 * second) in one program: both headers included, both objects linked, no
 * name clashes; both must give the same outputs. Prints "same" if they do.
 */
#include "first.h"
#include "second.h"
#include "tensor_io.h"

int main(int argc, char **argv)
{
	void *inputs[FIRST_NUM_INPUTS], *one[FIRST_NUM_OUTPUTS], *two[SECOND_NUM_OUTPUTS];
	void *arena = tensor_alloc(FIRST_ARENA_BYTES);
	int i;

	if (argc != 1 + FIRST_NUM_INPUTS || FIRST_NUM_OUTPUTS != SECOND_NUM_OUTPUTS)
		return 2;
	for (i = 0; i < FIRST_NUM_INPUTS; i++)
		inputs[i] = tensor_read(argv[1 + i], first_inputs[i].nbytes);
	for (i = 0; i < FIRST_NUM_OUTPUTS; i++) {
		one[i] = tensor_alloc(first_outputs[i].nbytes);
		two[i] = tensor_alloc(second_outputs[i].nbytes);
	}
	if (first_run((const void *const *)inputs, one, arena) || second_run((const void *const *)inputs, two, arena))
		return 1;
	for (i = 0; i < FIRST_NUM_OUTPUTS; i++) {
		if (memcmp(one[i], two[i], (size_t)first_outputs[i].nbytes) != 0)
			return 1;
	}
	printf("same\n");
	return 0;
}
