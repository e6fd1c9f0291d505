// SPDX-License-Identifier: MIT
/*
 * Runs inside the test VM: every malformed call /dev/cerebro must refuse,
 * each with its errno and a reason in last_error; and what a hostile caller
 * may try (issue #10) must neither hang nor harm the kernel. Before each
 * case it writes "cerebro-check: NAME" to /dev/kmsg, so the host can find
 * the kernel's log lines after it.
 *
 *   vm-checks badinput GOOD.cbx TRUNCATED.cbx CORRUPT.cbx UNREGISTERED.cbx MODULE
 *   vm-checks write NAME PATH VALUE WANT_ERRNO   a sysfs write; 0 = must succeed
 *   vm-checks load NAME PATH WANT_ERRNO          one LOAD_MODEL
 *   vm-checks loadmany NAME COUNT PATH WANT_ERRNO
 *   vm-checks flood NAME COUNT                   COUNT unknown ioctls
 *   vm-checks race NAME MODULE.ko MODULE SECONDS sysfs unload writers vs insmod/rmmod
 *   vm-checks killable NAME GOOD.cbx             a waiter for a busy file dies on SIGKILL
 *   vm-checks memcg NAME CGROUP_DIR MODEL.cbx MIN_BYTES  handle memory is charged
 *
 * Prints "@@CHECK NAME PASS" or "@@CHECK NAME FAIL why" per case, and
 * "@@REASON NAME text" with the last_error the case left.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerebro/uapi.h>

#define ALARM_SECONDS 3	/* a call blocked longer is interrupted: EINTR, and the case fails */
#define TEXT_LEN 512

static int failures;

/* last_error files a case may set: the global one and the model's (or the written file's). */
static char reason_files[2][TEXT_LEN];

struct snapshot {
	char text[2][TEXT_LEN];
};

static void read_text(const char *path, char *out, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, out, size - 1);

	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	if (fd >= 0)
		close(fd);
}

static void snapshot(struct snapshot *s)
{
	int i;

	for (i = 0; i < 2; i++) {
		s->text[i][0] = '\0';
		if (reason_files[i][0])
			read_text(reason_files[i], s->text[i], TEXT_LEN);
	}
}

/* The first last_error the case changed. */
static void print_reason(const char *name, const struct snapshot *before)
{
	struct snapshot after;
	int i;

	snapshot(&after);
	for (i = 0; i < 2; i++) {
		if (strcmp(after.text[i], before->text[i]) != 0) {
			printf("@@REASON %s %s\n", name, after.text[i]);
			return;
		}
	}
}

static void set_reason_files(const char *model_dir)
{
	snprintf(reason_files[0], TEXT_LEN, "%s/last_error", CEREBRO_SYSFS_DIR);
	if (model_dir)
		snprintf(reason_files[1], TEXT_LEN, "%s/last_error", model_dir);
}

static void on_alarm(int sig)
{
	(void)sig;	/* only there to interrupt a blocked call */
}

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

static void verdict(const char *name, int ok, const char *why)
{
	printf("@@CHECK %s %s %s\n", name, ok ? "PASS" : "FAIL", ok ? "" : why);
	failures += !ok;
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

/* One refused call: its errno, within ALARM_SECONDS, and the reason it left. */
#define CASE(name, call, want) do {					\
		struct snapshot before_;				\
		snapshot(&before_);					\
		mark(name);						\
		alarm(ALARM_SECONDS);					\
		expect(name, (call), (want));				\
		alarm(0);						\
		print_reason(name, &before_);				\
	} while (0)

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
	sysfs = open(CEREBRO_SYSFS_DIR "/unload", O_WRONLY);
	snprintf(line, sizeof(line), "%s\n", module);
	CASE("unload_model_in_use", sysfs < 0 ? -1 : (int)write(sysfs, line, strlen(line)), EBUSY);
	if (sysfs >= 0)
		close(sysfs);
	CASE("rmmod_model_in_use", (int)syscall(SYS_delete_module, module, O_NONBLOCK), EAGAIN);
	close(fd);
}

static void sysfs_write(const char *name, const char *path, const char *value, int want)
{
	char dir[TEXT_LEN];
	int fd = open(path, O_WRONLY);

	strncpy(dir, path, sizeof(dir) - 1);
	dir[sizeof(dir) - 1] = '\0';
	set_reason_files(dirname(dir));
	CASE(name, fd < 0 ? -1 : (int)write(fd, value, strlen(value)), want);
	if (fd >= 0)
		close(fd);
}

/* ---- hostile callers (issue #10) ---- */

static void load_many(const char *name, int count, const char *path, int want)
{
	int fd = dev_open(), i, wrong = 0;
	char why[64];

	mark(name);
	for (i = 0; i < count; i++)
		wrong += (load(fd, path, NULL) < 0 ? errno : 0) != want;
	close(fd);
	snprintf(why, sizeof(why), "%d of %d loads without errno %d", wrong, count, want);
	verdict(name, wrong == 0, why);
}

static void flood(const char *name, int count)
{
	int fd = dev_open(), i, wrong = 0;
	char why[64];

	mark(name);
	for (i = 0; i < count; i++)
		wrong += ioctl(fd, _IO(CEREBRO_IOC_MAGIC, 99), 0) == 0 || errno != ENOTTY;
	close(fd);
	snprintf(why, sizeof(why), "%d of %d unknown ioctls without ENOTTY", wrong, count);
	verdict(name, wrong == 0, why);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 if @pid exited within @seconds (reaped; its status in @status), else 0. */
static int reaped_within(pid_t pid, double seconds, int *status)
{
	double end = now() + seconds;

	do {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		usleep(10000);
	} while (now() < end);
	return 0;
}

/*
 * Writers of a model module's name to sysfs "unload" against an
 * insmod/rmmod loop of that module: a model found by name must not be used
 * after rmmod frees it (with slub_debug the kernel reports or faults).
 */
static void race(const char *name, const char *ko, const char *module, int seconds)
{
	double end = now() + seconds;
	int cycles = 0, errors = 0, stuck = 0, i, kfd;
	pid_t writers[3];
	char why[128];

	mark(name);
	for (i = 0; i < 3; i++) {
		writers[i] = fork();
		if (writers[i] == 0) {
			int fd = open(CEREBRO_SYSFS_DIR "/unload", O_WRONLY);

			while (fd >= 0 && now() < end)
				if (pwrite(fd, module, strlen(module), 0) >= 0)
					_exit(2);	/* nothing to release: it must refuse */
			_exit(fd < 0);
		}
	}
	while (now() < end) {
		kfd = open(ko, O_RDONLY);
		errors += kfd < 0 || syscall(SYS_finit_module, kfd, "", 0) != 0;
		if (kfd >= 0)
			close(kfd);
		errors += syscall(SYS_delete_module, module, O_NONBLOCK) != 0;
		cycles++;
	}
	for (i = 0; i < 3; i++) {
		int status = 0;

		if (!reaped_within(writers[i], 5, &status))
			stuck++;
		else
			errors += status != 0;
	}
	snprintf(why, sizeof(why), "%d insmod/rmmod cycles, %d failed calls or writers, %d writers stuck in the kernel",
		 cycles, errors, stuck);
	printf("race %s\n", why);
	verdict(name, cycles > 0 && errors == 0 && stuck == 0, why);
}

/* The input buffer of handle @h's model (one small input), or -1. */
static int input_buffer(int fd, uint32_t handle, struct cerebro_buffer *in)
{
	struct cerebro_info info = { .size = sizeof(info), .version = CEREBRO_UAPI_VERSION };
	struct cerebro_tensor_info t[1];

	info.handle = handle;
	info.max_tensors = 1;
	info.tensors = (uint64_t)(uintptr_t)t;
	if (ioctl(fd, CEREBRO_IOC_MODEL_INFO, &info) != 0 || info.num_inputs != 1 ||
	    t[0].nbytes > 4096)
		return -1;
	in->nbytes = t[0].nbytes;
	return 0;
}

/* A page whose first touch waits for a userfaultfd nobody serves. */
static void *parked_page(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (uffd < 0 || page == MAP_FAILED || ioctl(uffd, UFFDIO_API, &api) != 0)
		return NULL;
	reg.range.start = (uintptr_t)page;
	reg.range.len = 4096;
	return ioctl(uffd, UFFDIO_REGISTER, &reg) == 0 ? page : NULL;
}

/*
 * A holder's EXECUTE_MODEL copies its input from a parked page, so it holds
 * the file's lock indefinitely; a second process calling on the same file
 * waits for that lock and must still die on SIGKILL.
 */
static void killable(const char *name, const char *good)
{
	static float x[1024];
	struct cerebro_buffer in = { (uint64_t)(uintptr_t)x, 0 };
	int fd = dev_open(), ready[2], died, holder_blocked;
	pid_t holder, waiter;
	uint32_t handle;
	char c = 0;

	mark(name);
	if (load(fd, good, &handle) != 0 || input_buffer(fd, handle, &in) != 0 || pipe(ready) != 0) {
		verdict(name, 0, "setup failed");
		return;
	}
	holder = fork();
	if (holder == 0) {
		void *page = parked_page();

		c = page ? 1 : 0;
		if (write(ready[1], &c, 1) != 1 || !page)
			_exit(1);
		in.data = (uint64_t)(uintptr_t)page;
		io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1);
		_exit(0);
	}
	if (read(ready[0], &c, 1) != 1 || !c) {
		verdict(name, 0, "no userfaultfd page in the holder");
		kill(holder, SIGKILL);
		waitpid(holder, NULL, 0);
		return;
	}
	usleep(300000);
	holder_blocked = waitpid(holder, NULL, WNOHANG) == 0;
	waiter = fork();
	if (waiter == 0) {
		io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1);
		_exit(0);
	}
	usleep(300000);
	kill(waiter, SIGKILL);
	died = reaped_within(waiter, 3, NULL);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	if (!died)
		waitpid(waiter, NULL, 0);
	close(fd);
	verdict(name, holder_blocked && died, !holder_blocked ?
		"the holder did not block on its parked page" :
		"the waiter outlived SIGKILL by 3 s (uninterruptible wait for the file's lock)");
}

static long read_number(const char *path)
{
	char text[64];

	read_text(path, text, sizeof(text));
	return atol(text);
}

/* This process moves into @cgroup; a LOAD_MODEL must raise its memory.current. */
static void memcg(const char *name, const char *cgroup, const char *path, long min_bytes)
{
	char file[TEXT_LEN], why[128];
	long before, after;
	int fd, procs, rc;
	uint32_t handle;

	mark(name);
	snprintf(file, sizeof(file), "%s/cgroup.procs", cgroup);
	procs = open(file, O_WRONLY);
	if (procs < 0 || write(procs, "0", 1) != 1) {
		verdict(name, 0, "cannot join the cgroup");
		return;
	}
	close(procs);
	snprintf(file, sizeof(file), "%s/memory.current", cgroup);
	fd = dev_open();
	before = read_number(file);
	rc = load(fd, path, &handle);
	after = read_number(file);
	close(fd);
	snprintf(why, sizeof(why), "load %d, memory.current %ld -> %ld, want +%ld", rc, before, after,
		 min_bytes);
	printf("memcg %s\n", why);
	verdict(name, rc == 0 && after - before >= min_bytes, why);
}

int main(int argc, char **argv)
{
	struct sigaction alarm_action = { .sa_handler = on_alarm };	/* no SA_RESTART */
	int fd;

	sigaction(SIGALRM, &alarm_action, NULL);
	if (argc == 7 && strcmp(argv[1], "badinput") == 0) {
		char model_dir[TEXT_LEN];

		snprintf(model_dir, sizeof(model_dir), "%s/models/%s", CEREBRO_SYSFS_DIR, argv[6]);
		set_reason_files(model_dir);
		fd = dev_open();
		load_cases(fd, argv + 2);
		io_cases(fd, argv[2]);
		close(fd);
		limit_cases(argv[2], argv[6]);
	} else if (argc == 6 && strcmp(argv[1], "write") == 0) {
		sysfs_write(argv[2], argv[3], argv[4], atoi(argv[5]));
	} else if (argc == 5 && strcmp(argv[1], "load") == 0) {
		set_reason_files(NULL);
		fd = dev_open();
		CASE(argv[2], load(fd, argv[3], NULL), atoi(argv[4]));
		close(fd);
	} else if (argc == 6 && strcmp(argv[1], "loadmany") == 0) {
		load_many(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]));
	} else if (argc == 4 && strcmp(argv[1], "flood") == 0) {
		flood(argv[2], atoi(argv[3]));
	} else if (argc == 6 && strcmp(argv[1], "race") == 0) {
		race(argv[2], argv[3], argv[4], atoi(argv[5]));
	} else if (argc == 4 && strcmp(argv[1], "killable") == 0) {
		killable(argv[2], argv[3]);
	} else if (argc == 6 && strcmp(argv[1], "memcg") == 0) {
		memcg(argv[2], argv[3], argv[4], atol(argv[5]));
	} else {
		fprintf(stderr, "usage: see the comment at the top of vm_checks.c\n");
		return 2;
	}
	return failures ? 1 : 0;
}
