// SPDX-License-Identifier: MIT
/*
 * cbxrun [--threads N] MODEL.cbx IN0.bin [IN1.bin ...] -o OUT.bin
 *
 * Runs a .cbx with the user-space host, outside Python: for emulated
 * architectures (qemu-aarch64-static) and the kernel tests. Inputs are raw
 * little-endian tensors in signature order; outputs are written
 * concatenated in order. --threads N splits the call across N threads (the
 * model must allow it). Exit status: 0 ok, 1 model or I/O error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

static void *aligned_buffer(size_t size)
{
	void *p = NULL;

	if (size == 0)
		size = CEREBRO_BUFFER_ALIGN;
	if (posix_memalign(&p, CEREBRO_BUFFER_ALIGN, size) != 0)
		return NULL;
	memset(p, 0, size);
	return p;
}

/* Reads all of @path; returns NULL (with a message printed) on failure. */
static void *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	void *data;
	long len;

	if (!f) {
		fprintf(stderr, "cbxrun: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "cbxrun: cannot size %s\n", path);
		fclose(f);
		return NULL;
	}
	data = aligned_buffer((size_t)len);
	if (!data || fread(data, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "cbxrun: cannot read %s\n", path);
		free(data);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*size = (size_t)len;
	return data;
}

/* The model at @path, read once (its weights' pages then move into the model: cbx_model_load_file). */
static int load_model(struct cbx_model **model, const char *path)
{
	struct cbx_error err = { 0 };
	struct cbx_file file;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0) {
		fprintf(stderr, "cbxrun: cannot open %s: %s\n", path, strerror(errno));
		return CBX_ETRUNC;
	}
	ret = cbx_file_read(fd, path, &file, &err);
	close(fd);
	if (ret != CBX_OK) {
		fprintf(stderr, "cbxrun: %s\n", err.msg);	/* it names the file */
		return ret;
	}
	ret = cbx_model_load_file(model, &file, &err);
	cbx_file_free(&file);
	if (ret != CBX_OK)
		fprintf(stderr, "cbxrun: %s: %s\n", path, err.msg);
	return ret;
}

static int usage(void)
{
	fprintf(stderr, "usage: cbxrun [--threads N] MODEL.cbx IN0.bin [IN1.bin ...] -o OUT.bin\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *out_path = NULL, *model_path = NULL;
	const char *in_paths[CBX_MAX_TENSORS];
	void *buffers[CBX_MAX_TENSORS];
	struct cbx_error err = { 0 };
	struct cbx_model *model = NULL;
	struct cbx_pool *pool = NULL;
	unsigned int num_in = 0, i, count;
	unsigned long threads = 1;
	char *end;
	size_t size;
	void *arena;
	FILE *out;
	int status = 1;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < (unsigned int)argc) {
			out_path = argv[++i];
		} else if (strcmp(argv[i], "--threads") == 0 && i + 1 < (unsigned int)argc) {
			errno = 0;
			threads = strtoul(argv[++i], &end, 10);
			if (errno || *end || threads < 1 || threads > CEREBRO_MAX_PARTS)
				return usage();
		} else if (!model_path) {
			model_path = argv[i];
		} else if (num_in < CBX_MAX_TENSORS) {
			in_paths[num_in++] = argv[i];
		} else {
			return usage();
		}
	}
	if (!model_path || !out_path)
		return usage();
	if (load_model(&model, model_path) != CBX_OK)
		return 1;
	if (cbx_model_pool_create(&pool, model, (unsigned int)threads, &err) != CBX_OK) {
		fprintf(stderr, "cbxrun: %s\n", err.msg);
		cbx_model_free(model);
		return 1;
	}
	if (num_in != model->meta.num_inputs) {
		fprintf(stderr, "cbxrun: model takes %u inputs, got %u\n", model->meta.num_inputs, num_in);
		cbx_model_free(model);
		return 2;
	}
	count = model->meta.num_inputs + model->meta.num_outputs;
	memset(buffers, 0, sizeof(buffers));
	arena = aligned_buffer(cbx_model_arena_bytes(model, pool));
	for (i = 0; i < count; i++) {
		const struct cbx_tensor *t = &model->tensors[i];

		if (i < num_in) {
			buffers[i] = read_file(in_paths[i], &size);
			if (buffers[i] && size != t->nbytes) {
				fprintf(stderr, "cbxrun: input '%s' (%s): expected %llu bytes, got %zu\n",
					t->name, in_paths[i], (unsigned long long)t->nbytes, size);
				goto out;
			}
		} else {
			buffers[i] = aligned_buffer(t->nbytes);
		}
		if (!buffers[i] || !arena)
			goto out;
	}
	if (cbx_model_run_pool(model, pool, (const void *const *)buffers, buffers + num_in, arena, &err)) {
		fprintf(stderr, "cbxrun: %s\n", err.msg);
		goto out;
	}
	out = fopen(out_path, "wb");
	if (!out) {
		fprintf(stderr, "cbxrun: cannot create %s: %s\n", out_path, strerror(errno));
		goto out;
	}
	status = 0;
	for (i = num_in; i < count; i++) {
		if (fwrite(buffers[i], 1, model->tensors[i].nbytes, out) != model->tensors[i].nbytes)
			status = 1;
	}
	if (fclose(out) != 0)
		status = 1;
	if (status)
		fprintf(stderr, "cbxrun: cannot write %s\n", out_path);
out:
	for (i = 0; i < count; i++)
		free(buffers[i]);
	free(arena);
	cbx_pool_destroy(pool);
	cbx_model_free(model);
	return status;
}
