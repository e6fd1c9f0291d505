// SPDX-License-Identifier: MIT
/*
 * cerebro-ctl: the command-line client of /dev/cerebro, static so it runs
 * in a bare initramfs.
 *
 *   cerebro-ctl load MODEL.cbx [--hold SECONDS]
 *   cerebro-ctl run MODEL.cbx|- IN0.bin [IN1.bin ...] -o OUT.bin [--repeat N]
 *   cerebro-ctl info
 *
 * Tensors are raw little-endian bytes in signature order; OUT.bin holds the
 * outputs one after another. "-" runs the default model (sysfs model_path).
 * A refused ioctl exits with its errno as the status, so scripts can check it.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerebro/uapi.h>

static const char *const dtype_names[] = {
	"?", "f32", "f64", "i8", "i16", "i32", "i64", "u8", "bool", "u16", "u32",
	"f16", "bf16",
};

struct session {
	int fd;
	uint32_t handle;
	struct cerebro_info info;
	struct cerebro_tensor_info tensors[CEREBRO_MAX_BUFFERS];
};

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
	va_list args;

	fputs("cerebro-ctl: ", stderr);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	exit(status);
}

/*
 * An ioctl on @fd that failed: report errno by name and the kernel's reason
 * (this open file's LAST_ERROR), and exit with errno.
 */
static void die_ioctl(int fd, const char *what)
{
	struct cerebro_last_error le = { .size = sizeof(le), .version = CEREBRO_UAPI_VERSION };
	int err = errno;

	if (ioctl(fd, CEREBRO_IOC_LAST_ERROR, &le) == 0 && le.message[0])
		die(err ? err : 1, "%s: %s (errno %d): %.*s", what, strerror(err), err,
		    (int)sizeof(le.message), le.message);
	die(err ? err : 1, "%s: %s (errno %d); no reason available", what, strerror(err), err);
}

static void *read_file(const char *path, __u64 *size)
{
	struct stat st;
	uint8_t *data;
	FILE *f = fopen(path, "rb");

	if (!f || fstat(fileno(f), &st) != 0)
		die(1, "cannot open %s: %s", path, strerror(errno));
	data = malloc(st.st_size ? st.st_size : 1);
	if (!data || fread(data, 1, st.st_size, f) != (size_t)st.st_size)
		die(1, "cannot read %s", path);
	fclose(f);
	*size = st.st_size;
	return data;
}

static void open_model(struct session *s, const char *path)
{
	struct cerebro_load ld = { .size = sizeof(ld), .version = CEREBRO_UAPI_VERSION };

	s->fd = open(CEREBRO_DEVICE_PATH, O_RDWR);
	if (s->fd < 0)
		die(1, "cannot open %s: %s (is cerebro.ko loaded?)", CEREBRO_DEVICE_PATH, strerror(errno));
	ld.path = strcmp(path, "-") == 0 ? 0 : (uint64_t)(uintptr_t)path;
	if (ioctl(s->fd, CEREBRO_IOC_LOAD_MODEL, &ld) != 0)
		die_ioctl(s->fd, "LOAD_MODEL");
	s->handle = ld.handle;
	memset(&s->info, 0, sizeof(s->info));
	s->info.size = sizeof(s->info);
	s->info.version = CEREBRO_UAPI_VERSION;
	s->info.handle = s->handle;
	s->info.max_tensors = CEREBRO_MAX_BUFFERS;
	s->info.tensors = (uint64_t)(uintptr_t)s->tensors;
	if (ioctl(s->fd, CEREBRO_IOC_MODEL_INFO, &s->info) != 0)
		die_ioctl(s->fd, "MODEL_INFO");
}

static void print_signature(const struct session *s)
{
	uint32_t count = s->info.num_inputs + s->info.num_outputs;
	uint32_t i, d;

	printf("model %s module %s handle %u stages %u\n", s->info.model_name,
	       s->info.module_name, s->handle, s->info.num_stages);
	for (i = 0; i < count; i++) {
		const struct cerebro_tensor_info *t = &s->tensors[i];

		printf("%s %s %s[", i < s->info.num_inputs ? "input" : "output", t->name,
		       t->dtype < sizeof(dtype_names) / sizeof(dtype_names[0]) ? dtype_names[t->dtype] : "?");
		for (d = 0; d < t->rank && d < 8; d++)
			printf(d ? ",%llu" : "%llu", (unsigned long long)t->dims[d]);
		printf("] %llu\n", (unsigned long long)t->nbytes);
	}
}

static int cmd_load(int argc, char **argv)
{
	struct session s;

	if (argc != 1 && !(argc == 3 && strcmp(argv[1], "--hold") == 0))
		die(2, "usage: cerebro-ctl load MODEL.cbx [--hold SECONDS]");
	open_model(&s, argv[0]);
	print_signature(&s);
	fflush(stdout);
	if (argc == 3)
		sleep(atoi(argv[2]));
	close(s.fd);
	return 0;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmd_run(int argc, char **argv)
{
	struct cerebro_buffer in[CEREBRO_MAX_BUFFERS], out[CEREBRO_MAX_BUFFERS];
	struct cerebro_io exec = { .size = sizeof(exec), .version = CEREBRO_UAPI_VERSION };
	struct cerebro_io get = { .size = sizeof(exec), .version = CEREBRO_UAPI_VERSION };
	const char *out_path = NULL;
	uint32_t num_in = 0, i;
	long repeat = 1, r;
	double start, best = 1e30, total = 0;
	struct session s;
	FILE *f;

	if (argc < 1)
		die(2, "usage: cerebro-ctl run MODEL.cbx|- IN0.bin ... -o OUT.bin [--repeat N]");
	for (i = 1; i < (uint32_t)argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < (uint32_t)argc) {
			out_path = argv[++i];
		} else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < (uint32_t)argc) {
			repeat = atol(argv[++i]);
		} else if (num_in < CEREBRO_MAX_BUFFERS) {
			void *data = read_file(argv[i], &in[num_in].nbytes);

			in[num_in].data = (uint64_t)(uintptr_t)data;
			num_in++;
		} else {
			die(2, "too many inputs");
		}
	}
	if (!out_path || repeat < 1)
		die(2, "usage: cerebro-ctl run MODEL.cbx|- IN0.bin ... -o OUT.bin [--repeat N]");
	open_model(&s, argv[0]);
	for (i = 0; i < s.info.num_outputs; i++) {
		out[i].nbytes = s.tensors[s.info.num_inputs + i].nbytes;
		out[i].data = (uint64_t)(uintptr_t)malloc(out[i].nbytes ? out[i].nbytes : 1);
		if (!out[i].data)
			die(1, "out of memory");
	}
	exec.handle = get.handle = s.handle;
	exec.num_buffers = num_in;	/* the kernel checks it against the signature */
	exec.buffers = (uint64_t)(uintptr_t)in;
	get.num_buffers = s.info.num_outputs;
	get.buffers = (uint64_t)(uintptr_t)out;
	for (r = 0; r < repeat; r++) {
		start = now_us();
		if (ioctl(s.fd, CEREBRO_IOC_EXECUTE_MODEL, &exec) != 0)
			die_ioctl(s.fd, "EXECUTE_MODEL");
		if (ioctl(s.fd, CEREBRO_IOC_GET_RESULTS, &get) != 0)
			die_ioctl(s.fd, "GET_RESULTS");
		start = now_us() - start;
		total += start;
		best = start < best ? start : best;
	}
	if (repeat > 1)
		fprintf(stderr, "calls %ld mean_us %.2f min_us %.2f\n", repeat, total / repeat, best);
	f = fopen(out_path, "wb");
	if (!f)
		die(1, "cannot write %s: %s", out_path, strerror(errno));
	for (i = 0; i < s.info.num_outputs; i++) {
		if (fwrite((void *)(uintptr_t)out[i].data, 1, out[i].nbytes, f) != out[i].nbytes)
			die(1, "cannot write %s", out_path);
	}
	fclose(f);
	close(s.fd);
	return 0;
}

static void print_file(const char *dir, const char *name)
{
	char path[512], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("  %s: %s", name, line);
	fclose(f);
}

static int cmd_info(void)
{
	static const char *const top[] = { "version", "model_path", "last_error" };
	static const char *const per_model[] = {
		"name", "hash", "stages", "max_stage_flops", "signature", "users", "calls",
		"mean_latency_ns", "max_fpu_section_ns", "preprocess_scale", "preprocess_offset",
		"postprocess", "last_error",
	};
	char dir[512];
	struct dirent *entry;
	DIR *models;
	size_t i;

	printf("%s\n", CEREBRO_SYSFS_DIR);
	for (i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		print_file(CEREBRO_SYSFS_DIR, top[i]);
	models = opendir(CEREBRO_SYSFS_DIR "/models");
	if (!models)
		die(1, "cannot read %s/models: is cerebro.ko loaded?", CEREBRO_SYSFS_DIR);
	while ((entry = readdir(models))) {
		if (entry->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/models/%s", CEREBRO_SYSFS_DIR, entry->d_name);
		printf("model module %s\n", entry->d_name);
		for (i = 0; i < sizeof(per_model) / sizeof(per_model[0]); i++)
			print_file(dir, per_model[i]);
	}
	closedir(models);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "load") == 0)
		return cmd_load(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (argc == 2 && strcmp(argv[1], "info") == 0)
		return cmd_info();
	die(2, "usage: cerebro-ctl load MODEL.cbx | run MODEL.cbx IN0.bin ... -o OUT.bin | info");
}
