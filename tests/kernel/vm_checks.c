// SPDX-License-Identifier: MIT
/*
 * Runs inside the test VM: every malformed call /dev/cerebro must refuse,
 * each with its errno. Before each case it writes "cerebro-check: NAME" to
 * /dev/kmsg, so the host can find the kernel's explanation in dmesg.
 *
 *   vm-checks badinput GOOD.cbx TRUNCATED.cbx CORRUPT.cbx UNREGISTERED.cbx MODULE
 *   vm-checks write NAME PATH VALUE WANT_ERRNO  (a sysfs write; 0 = must succeed)
 *
 * Prints "@@CHECK NAME PASS" or "@@CHECK NAME FAIL why" per case.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerebro/uapi.h>

static int failures;

static void mark(const char *name)
{
	char line[160];
	int fd = open("/dev/kmsg", O_WRONLY);

	if (fd < 0)
		return;
	snprintf(line, sizeof(line), "cerebro-check: %s\n", name);
	if (write(fd, line, strlen(line)) < 0)
		perror("kmsg");
	close(fd);
}

/* @rc is an ioctl/syscall result: -1 with errno, or >= 0. */
static void expect(const char *name, int rc, int want)
{
	int got = rc < 0 ? errno : 0;

	if (got == want) {
		printf("@@CHECK %s PASS\n", name);
	} else {
		printf("@@CHECK %s FAIL errno %d (%s), want %d (%s)\n", name, got, strerror(got),
		       want, strerror(want));
		failures++;
	}
	fflush(stdout);
}

static int dev_open(void)
{
	int fd = open(CEREBRO_DEVICE_PATH, O_RDWR);

	if (fd < 0) {
		perror(CEREBRO_DEVICE_PATH);
		exit(1);
	}
	return fd;
}

static int load(int fd, const char *path, uint32_t *handle)
{
	struct cerebro_load ld = { .size = sizeof(ld), .version = CEREBRO_UAPI_VERSION };
	int rc;

	ld.path = (uint64_t)(uintptr_t)path;
	rc = ioctl(fd, CEREBRO_IOC_LOAD_MODEL, &ld);
	if (handle)
		*handle = ld.handle;
	return rc;
}

static int io(int fd, unsigned long cmd, uint32_t handle, struct cerebro_buffer *bufs, uint32_t n)
{
	struct cerebro_io arg = { .size = sizeof(arg), .version = CEREBRO_UAPI_VERSION };

	arg.handle = handle;
	arg.num_buffers = n;
	arg.buffers = (uint64_t)(uintptr_t)bufs;
	return ioctl(fd, cmd, &arg);
}

#define CASE(name, call, want) do { mark(name); expect(name, (call), (want)); } while (0)

static void load_cases(int fd, char **paths)
{
	struct cerebro_load ld = { .size = sizeof(ld) + 8, .version = CEREBRO_UAPI_VERSION };

	CASE("load_wrong_struct_size", ioctl(fd, CEREBRO_IOC_LOAD_MODEL, &ld), EINVAL);
	ld.size = sizeof(ld);
	ld.version = 99;
	CASE("load_wrong_version", ioctl(fd, CEREBRO_IOC_LOAD_MODEL, &ld), EINVAL);
	CASE("load_bad_arg_pointer", ioctl(fd, CEREBRO_IOC_LOAD_MODEL, (void *)16), EFAULT);
	CASE("load_bad_path_pointer", load(fd, (const char *)16, NULL), EFAULT);
	CASE("load_missing_file", load(fd, "/nonexistent.cbx", NULL), ENOENT);
	CASE("load_directory", load(fd, "/root", NULL), EINVAL);
	CASE("load_not_a_cbx", load(fd, "/bin/busybox", NULL), ENOEXEC);
	CASE("load_truncated_cbx", load(fd, paths[1], NULL), ENOEXEC);
	CASE("load_corrupt_cbx", load(fd, paths[2], NULL), EBADMSG);
	CASE("load_unregistered_model", load(fd, paths[3], NULL), ENOPKG);
	CASE("unknown_ioctl", ioctl(fd, _IO(CEREBRO_IOC_MAGIC, 99), 0), ENOTTY);
}

static void io_cases(int fd, const char *good)
{
	static float x[4096], y[4096];
	struct cerebro_buffer in = { (uint64_t)(uintptr_t)x, 0 };
	struct cerebro_buffer out = { (uint64_t)(uintptr_t)y, 0 };
	struct cerebro_info info = { .size = sizeof(info), .version = CEREBRO_UAPI_VERSION };
	struct cerebro_tensor_info t[2];
	struct cerebro_buffer bad_ptr;
	uint32_t handle;
	int other;

	if (load(fd, good, &handle) != 0) {
		printf("@@CHECK load_good FAIL errno %d\n", errno);
		failures++;
		return;
	}
	info.handle = handle;
	info.max_tensors = 2;
	info.tensors = (uint64_t)(uintptr_t)t;
	if (ioctl(fd, CEREBRO_IOC_MODEL_INFO, &info) != 0 || info.num_inputs != 1 ||
	    t[0].nbytes > sizeof(x) || t[1].nbytes > sizeof(y)) {
		printf("@@CHECK model_info FAIL (the bad-input model must have 1 input, small tensors)\n");
		failures++;
		return;
	}
	in.nbytes = t[0].nbytes;
	out.nbytes = t[1].nbytes;

	CASE("execute_unknown_handle", io(fd, CEREBRO_IOC_EXECUTE_MODEL, 99, &in, 1), ENOENT);
	CASE("execute_handle_zero", io(fd, CEREBRO_IOC_EXECUTE_MODEL, 0, &in, 1), ENOENT);
	CASE("get_before_execute", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), ENODATA);
	CASE("execute_wrong_buffer_count", io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 2), EINVAL);
	in.nbytes -= 4;
	CASE("execute_wrong_size", io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1), EINVAL);
	in.nbytes += 4;
	CASE("execute_bad_buffer_array", io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle,
					     (struct cerebro_buffer *)16, 1), EFAULT);
	bad_ptr = in;
	bad_ptr.data = 16;
	CASE("execute_bad_data_pointer", io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &bad_ptr, 1), EFAULT);
	CASE("get_after_failed_execute", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), ENODATA);
	mark("execute_good");
	expect("execute_good", io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1), 0);
	out.nbytes += 4;
	CASE("get_wrong_size", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), EINVAL);
	out.nbytes -= 4;
	bad_ptr = out;
	bad_ptr.data = 16;
	CASE("get_bad_data_pointer", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &bad_ptr, 1), EFAULT);
	CASE("get_wrong_buffer_count", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 0), EINVAL);
	mark("get_good");
	expect("get_good", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), 0);

	other = dev_open();
	CASE("handle_of_another_file", io(other, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1), ENOENT);
	close(other);
}

static void limit_cases(const char *good, const char *module)
{
	struct cerebro_handle_arg ha = { .size = sizeof(ha), .version = CEREBRO_UAPI_VERSION };
	char line[128];
	uint32_t handle = 0;
	int fd = dev_open(), i, rc = 0, sysfs;

	for (i = 0; i < CEREBRO_MAX_HANDLES && rc == 0; i++)
		rc = load(fd, good, &handle);
	CASE("too_many_handles", load(fd, good, NULL), EMFILE);
	ha.handle = handle;
	mark("unload_handle");
	expect("unload_handle", ioctl(fd, CEREBRO_IOC_UNLOAD_MODEL, &ha), 0);
	CASE("unload_unknown_handle", ioctl(fd, CEREBRO_IOC_UNLOAD_MODEL, &ha), ENOENT);

	/* the model is in use by this file's other handles */
	mark("unload_model_in_use");
	sysfs = open(CEREBRO_SYSFS_DIR "/unload", O_WRONLY);
	snprintf(line, sizeof(line), "%s\n", module);
	expect("unload_model_in_use", sysfs < 0 ? -1 : (int)write(sysfs, line, strlen(line)), EBUSY);
	if (sysfs >= 0)
		close(sysfs);
	CASE("rmmod_model_in_use", (int)syscall(SYS_delete_module, module, O_NONBLOCK), EAGAIN);
	close(fd);
}

static void sysfs_write(const char *name, const char *path, const char *value, int want)
{
	int fd = open(path, O_WRONLY);

	mark(name);
	expect(name, fd < 0 ? -1 : (int)write(fd, value, strlen(value)), want);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	int fd;

	if (argc == 7 && strcmp(argv[1], "badinput") == 0) {
		fd = dev_open();
		load_cases(fd, argv + 2);
		io_cases(fd, argv[2]);
		close(fd);
		limit_cases(argv[2], argv[6]);
		return failures ? 1 : 0;
	}
	if (argc == 6 && strcmp(argv[1], "write") == 0) {
		sysfs_write(argv[2], argv[3], argv[4], atoi(argv[5]));
		return failures ? 1 : 0;
	}
	fprintf(stderr, "usage: vm-checks badinput GOOD TRUNC CORRUPT UNREGISTERED MODULE | write NAME PATH VALUE ERRNO\n");
	return 2;
}
