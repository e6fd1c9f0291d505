// SPDX-License-Identifier: MIT
/*
 * Runs inside the test VM: every malformed call /dev/cerebro must refuse,
 * each with its errno and a reason (the open file's LAST_ERROR for an
 * ioctl, the last_error next to the file written for sysfs); and what a
 * hostile caller may try (issue #10) must neither hang nor harm the kernel.
 * Before each case it writes "cerebro-check: NAME" to /dev/kmsg, so the
 * host can find the kernel's log lines after it.
 *
 *   vm-checks badinput GOOD.cbx TRUNCATED.cbx CORRUPT.cbx UNREGISTERED.cbx MODULE
 *   vm-checks write NAME PATH VALUE WANT_ERRNO   a sysfs write; 0 = must succeed
 *   vm-checks load NAME PATH WANT_ERRNO          one LOAD_MODEL
 *   vm-checks loadmany NAME COUNT PATH WANT_ERRNO
 *   vm-checks flood NAME COUNT                   COUNT unknown ioctls
 *   vm-checks race NAME MODULE.ko MODULE SECONDS sysfs unload writers vs insmod/rmmod
 *   vm-checks killable NAME GOOD.cbx             a waiter for a busy file dies on SIGKILL
 *   vm-checks memcg NAME CGROUP_DIR MODEL.cbx MIN_BYTES  handle memory is charged
 *   vm-checks perfile NAME                       each open file keeps its own last error
 *   vm-checks names PATH NAME_MIB FILE_MIB       write a .cbx whose 255 sections share one name
 *   vm-checks hostile NAME PATH WANT_ERRNO       one LOAD_MODEL of a crafted file, timed
 *   vm-checks killload NAME GOOD.cbx FILE_MIB    SIGKILL stops a long LOAD_MODEL (hashing)
 *   vm-checks killstages NAME SLOW.cbx GOOD.cbx  SIGKILL stops a long EXECUTE between stages
 *   vm-checks channel MODEL.cbx IN.bin OUT.bin MODEL2.cbx IN2.bin OUT2.bin
 *                                                the write()/read() command channel
 *   vm-checks killchannel NAME SLOW.cbx GOOD.cbx the same SIGKILL through the channel
 *
 * Prints "@@CHECK NAME PASS" or "@@CHECK NAME FAIL why" per case, and
 * "@@REASON NAME text" with the reason the case left.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerebro/uapi.h>

#define ALARM_SECONDS 3	/* a call blocked longer is interrupted: EINTR, and the case fails */
#define TEXT_LEN 512
#define MIB (1ULL << 20)
#define KILL_BOUND_SECONDS 10.0	/* a killed caller must be gone within this */

static int failures;

/* sysfs last_error files a case may set: /sys/kernel/cerebro's and a model's. */
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
	reason_files[1][0] = '\0';
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

static int last_error(int fd, struct cerebro_last_error *le)
{
	memset(le, 0, sizeof(*le));
	le->size = sizeof(*le);
	le->version = CEREBRO_UAPI_VERSION;
	return ioctl(fd, CEREBRO_IOC_LAST_ERROR, le);
}

/* The reason a refused call left in its file's LAST_ERROR, which must keep the call's errno. */
static void print_file_reason(const char *name, int fd, int got)
{
	struct cerebro_last_error le;
	char check[TEXT_LEN];

	snprintf(check, sizeof(check), "%s_last_error", name);
	if (last_error(fd, &le) != 0) {
		verdict(check, 0, strerror(errno));
		return;
	}
	printf("@@REASON %s %.*s\n", name, (int)sizeof(le.message), le.message);
	if (le.error == got) {
		verdict(check, 1, "");
	} else {
		char why[64];

		snprintf(why, sizeof(why), "LAST_ERROR says errno %d, the call got %d", le.error, got);
		verdict(check, 0, why);
	}
}

/* One refused sysfs write (or syscall): its errno, within ALARM_SECONDS, and the reason it left. */
#define CASE(name, call, want) do {					\
		struct snapshot before_;				\
		snapshot(&before_);					\
		mark(name);						\
		alarm(ALARM_SECONDS);					\
		expect(name, (call), (want));				\
		alarm(0);						\
		print_reason(name, &before_);				\
	} while (0)

/* One refused ioctl on @fd: its errno, within ALARM_SECONDS, and the file's LAST_ERROR. */
#define FILE_CASE(name, fd, call, want) do {				\
		int rc_, err_;						\
		mark(name);						\
		alarm(ALARM_SECONDS);					\
		rc_ = (call);						\
		err_ = errno;						\
		alarm(0);						\
		print_file_reason(name, fd, rc_ < 0 ? err_ : 0);	\
		errno = err_;						\
		expect(name, rc_, (want));				\
	} while (0)

static void load_cases(int fd, char **paths)
{
	struct cerebro_load ld = { .size = sizeof(ld) + 8, .version = CEREBRO_UAPI_VERSION };

	FILE_CASE("load_wrong_struct_size", fd, ioctl(fd, CEREBRO_IOC_LOAD_MODEL, &ld), EINVAL);
	ld.size = sizeof(ld);
	ld.version = 99;
	FILE_CASE("load_wrong_version", fd, ioctl(fd, CEREBRO_IOC_LOAD_MODEL, &ld), EINVAL);
	FILE_CASE("load_bad_arg_pointer", fd, ioctl(fd, CEREBRO_IOC_LOAD_MODEL, (void *)16), EFAULT);
	FILE_CASE("load_bad_path_pointer", fd, load(fd, (const char *)16, NULL), EFAULT);
	FILE_CASE("load_missing_file", fd, load(fd, "/nonexistent.cbx", NULL), ENOENT);
	FILE_CASE("load_directory", fd, load(fd, "/root", NULL), EINVAL);
	FILE_CASE("load_not_a_cbx", fd, load(fd, "/bin/busybox", NULL), ENOEXEC);
	FILE_CASE("load_truncated_cbx", fd, load(fd, paths[1], NULL), ENOEXEC);
	FILE_CASE("load_corrupt_cbx", fd, load(fd, paths[2], NULL), EBADMSG);
	FILE_CASE("load_unregistered_model", fd, load(fd, paths[3], NULL), ENOPKG);
	FILE_CASE("unknown_ioctl", fd, ioctl(fd, _IO(CEREBRO_IOC_MAGIC, 99), 0), ENOTTY);
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

	FILE_CASE("execute_unknown_handle", fd, io(fd, CEREBRO_IOC_EXECUTE_MODEL, 99, &in, 1), ENOENT);
	FILE_CASE("execute_handle_zero", fd, io(fd, CEREBRO_IOC_EXECUTE_MODEL, 0, &in, 1), ENOENT);
	FILE_CASE("get_before_execute", fd, io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), ENODATA);
	FILE_CASE("execute_wrong_buffer_count", fd, io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 2), EINVAL);
	in.nbytes -= 4;
	FILE_CASE("execute_wrong_size", fd, io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1), EINVAL);
	in.nbytes += 4;
	FILE_CASE("execute_bad_buffer_array", fd, io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle,
					     (struct cerebro_buffer *)16, 1), EFAULT);
	bad_ptr = in;
	bad_ptr.data = 16;
	FILE_CASE("execute_bad_data_pointer", fd, io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &bad_ptr, 1), EFAULT);
	FILE_CASE("get_after_failed_execute", fd, io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), ENODATA);
	mark("execute_good");
	expect("execute_good", io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1), 0);
	out.nbytes += 4;
	FILE_CASE("get_wrong_size", fd, io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), EINVAL);
	out.nbytes -= 4;
	bad_ptr = out;
	bad_ptr.data = 16;
	FILE_CASE("get_bad_data_pointer", fd, io(fd, CEREBRO_IOC_GET_RESULTS, handle, &bad_ptr, 1), EFAULT);
	FILE_CASE("get_wrong_buffer_count", fd, io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 0), EINVAL);
	mark("get_good");
	expect("get_good", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), 0);

	other = dev_open();
	FILE_CASE("handle_of_another_file", other, io(other, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1), ENOENT);
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
	FILE_CASE("too_many_handles", fd, load(fd, good, NULL), EMFILE);
	ha.handle = handle;
	mark("unload_handle");
	expect("unload_handle", ioctl(fd, CEREBRO_IOC_UNLOAD_MODEL, &ha), 0);
	FILE_CASE("unload_unknown_handle", fd, ioctl(fd, CEREBRO_IOC_UNLOAD_MODEL, &ha), ENOENT);

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


/* ---- per-file last error ---- */

/*
 * Each open file keeps its own last error: a refusal on one never shows on
 * another, and ioctl refusals never touch sysfs's last_error.
 */
static void per_file(const char *name)
{
	struct cerebro_last_error a, b, c;
	char sysfs_before[TEXT_LEN], sysfs_after[TEXT_LEN], why[3 * TEXT_LEN];
	int fa = dev_open(), fb = dev_open(), fc = dev_open(), ok;

	mark(name);
	read_text(CEREBRO_SYSFS_DIR "/last_error", sysfs_before, sizeof(sysfs_before));
	load(fa, "/nonexistent-on-file-a.cbx", NULL);		/* ENOENT on a, first */
	ioctl(fb, _IO(CEREBRO_IOC_MAGIC, 99), 0);		/* ENOTTY on b, last */
	read_text(CEREBRO_SYSFS_DIR "/last_error", sysfs_after, sizeof(sysfs_after));
	ok = last_error(fa, &a) == 0 && last_error(fb, &b) == 0 && last_error(fc, &c) == 0;
	snprintf(why, sizeof(why), "a: %d '%.160s'; b: %d '%.160s'; c: %d '%.160s'; sysfs '%.160s' -> '%.160s'",
		 a.error, a.message, b.error, b.message, c.error, c.message, sysfs_before, sysfs_after);
	ok = ok && a.error == ENOENT && strstr(a.message, "nonexistent-on-file-a.cbx: no such file") &&
	     b.error == ENOTTY && strstr(b.message, "unknown ioctl") &&
	     c.error == 0 && c.message[0] == '\0' && strcmp(sysfs_before, sysfs_after) == 0;
	printf("perfile %s\n", why);
	verdict(name, ok, why);
	close(fa);
	close(fb);
	close(fc);
}

/* ---- crafted .cbx files and fatal signals ---- */

static void put_le(uint8_t *at, uint64_t value, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		at[i] = (uint8_t)(value >> (8 * i));
}

/*
 * tests/test_image_parse.py's sections_sharing_one_name in C (a 128 MiB
 * name does not fit in the initramfs): an ELF whose 255 sections (the name
 * table among them) are all named by one @name_len-byte name, then a hole
 * up to @size bytes. The old parser rescanned the name once per section.
 */
static int write_name_sections(const char *path, uint64_t name_len, uint64_t size)
{
	enum { SHNUM = 256, EHDR = 64, SHDR = 64 };
	static uint8_t chunk[1 << 20];
	uint8_t ehdr[EHDR] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 }, shdr[SHDR] = { 0 };
	uint64_t table = name_len + 2, shoff = EHDR + table, left;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), ok = fd >= 0, i;

	put_le(ehdr + 16, 1, 2);		/* ET_REL */
	put_le(ehdr + 18, 62, 2);		/* EM_X86_64 */
	put_le(ehdr + 20, 1, 4);		/* EV_CURRENT */
	put_le(ehdr + 40, shoff, 8);
	put_le(ehdr + 52, EHDR, 2);
	put_le(ehdr + 58, SHDR, 2);
	put_le(ehdr + 60, SHNUM, 2);
	put_le(ehdr + 62, 1, 2);		/* shstrndx */
	ok = ok && write(fd, ehdr, EHDR) == EHDR;
	memset(chunk, 'A', sizeof(chunk));
	chunk[0] = '\0';
	for (left = table - 1; ok && left > 0; left -= left < sizeof(chunk) ? left : sizeof(chunk)) {
		size_t n = left < sizeof(chunk) ? left : sizeof(chunk);

		ok = write(fd, chunk, n) == (ssize_t)n;
		chunk[0] = 'A';
	}
	ok = ok && write(fd, "", 1) == 1 && write(fd, shdr, SHDR) == SHDR;
	put_le(shdr + 0, 1, 4);			/* sh_name: offset 1 */
	put_le(shdr + 4, 3, 4);			/* SHT_STRTAB */
	put_le(shdr + 24, EHDR, 8);		/* sh_offset */
	put_le(shdr + 32, table, 8);		/* sh_size */
	put_le(shdr + 48, 1, 8);		/* sh_addralign */
	for (i = 1; ok && i < SHNUM; i++)
		ok = write(fd, shdr, SHDR) == SHDR;
	ok = ok && ftruncate(fd, (off_t)size) == 0;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* A file of @size zero bytes (a hole: no memory), which LOAD_MODEL refuses at its first byte. */
static int write_hole(const char *path, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), ok;

	ok = fd >= 0 && ftruncate(fd, size) == 0;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

static double timed_load(int fd, const char *path, int *rc, int *err)
{
	double start = now();

	*rc = load(fd, path, NULL);
	*err = errno;
	return now() - start;
}

/*
 * One LOAD_MODEL of a crafted file: its errno and reason, in at most four
 * times the time (plus 10 s) it takes to read a plain file of the same size
 * and refuse it at its first byte: a crafted file costs one pass, whatever it
 * repeats (the old parser rescanned a name per section: 68 s for 128 MiB on
 * real hardware, minutes under TCG). The slack absorbs a busy host: the two
 * loads are timed a few seconds apart (8.3 s against 2.1 s seen at load 12).
 */
static void hostile(const char *name, const char *path, int want)
{
	const char *plain = "/tmp/plain.cbx";
	char why[128], check[TEXT_LEN];
	double read_only, took;
	int fd = dev_open(), rc, err;
	struct stat st;

	mark(name);
	if (stat(path, &st) != 0 || write_hole(plain, st.st_size) != 0) {
		verdict(name, 0, "cannot write the plain file");
		close(fd);
		return;
	}
	read_only = timed_load(fd, plain, &rc, &err);
	unlink(plain);
	took = timed_load(fd, path, &rc, &err);
	print_file_reason(name, fd, rc < 0 ? err : 0);
	close(fd);
	errno = err;
	expect(name, rc, want);
	snprintf(check, sizeof(check), "%s_in_time", name);
	snprintf(why, sizeof(why), "refused in %.2f s; a plain file of its size in %.2f s", took,
		 read_only);
	printf("hostile %s %s\n", name, why);
	verdict(check, took < 4 * read_only + 10, why);
}

/* A copy of @good followed by a hole up to @size bytes: valid up to its hash, which covers it all. */
static int write_long_cbx(const char *path, const char *good, uint64_t size)
{
	char buf[65536];
	int in = open(good, O_RDONLY), out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), ok;
	ssize_t n = 0;

	ok = in >= 0 && out >= 0;
	while (ok && (n = read(in, buf, sizeof(buf))) > 0)
		ok = write(out, buf, (size_t)n) == n;
	ok = ok && n == 0 && ftruncate(out, (off_t)size) == 0;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ok ? 0 : -1;
}

static int load_call(int fd, void *arg)
{
	return ioctl(fd, CEREBRO_IOC_LOAD_MODEL, arg);
}

static int execute_call(int fd, void *arg)
{
	return ioctl(fd, CEREBRO_IOC_EXECUTE_MODEL, arg);
}

/* Writes the bytes of @arg, a struct cerebro_buffer, to the command channel. */
static int write_call(int fd, void *arg)
{
	const struct cerebro_buffer *b = arg;

	return (int)write(fd, (const void *)(uintptr_t)b->data, b->nbytes);
}

/*
 * Runs @call on @fd in a child, kills it after @delay seconds and waits at
 * most KILL_BOUND_SECONDS for it. Returns the seconds from SIGKILL to its
 * end (-1 if it outlived the bound), and in @*finished whether the call had
 * already returned when the signal came (then nothing was shown).
 */
static double kill_during(int fd, int (*call)(int fd, void *arg), void *arg, double delay,
			  int *finished)
{
	int done[2], status;
	double killed_at, gone;
	pid_t child;
	char c;

	if (pipe(done) != 0)
		return -1;
	child = fork();
	if (child == 0) {
		close(done[0]);
		call(fd, arg);
		if (write(done[1], "x", 1) != 1)
			_exit(1);
		pause();	/* the parent kills it either way */
		_exit(0);
	}
	close(done[1]);
	usleep((useconds_t)(delay * 1e6));
	fcntl(done[0], F_SETFL, O_NONBLOCK);
	*finished = read(done[0], &c, 1) == 1;
	killed_at = now();
	kill(child, SIGKILL);
	gone = reaped_within(child, KILL_BOUND_SECONDS, &status) ? now() - killed_at : -1;
	close(done[0]);
	return gone;
}

/* A good model still loads and runs on a fresh file (the killed call left nothing behind). */
static int still_works(const char *good)
{
	static float x[1024];
	struct cerebro_buffer in = { (uint64_t)(uintptr_t)x, 0 };
	uint32_t handle;
	int fd = dev_open(), ok;

	ok = load(fd, good, &handle) == 0 && input_buffer(fd, handle, &in) == 0 &&
	     io(fd, CEREBRO_IOC_EXECUTE_MODEL, handle, &in, 1) == 0;
	close(fd);
	return ok;
}

/*
 * LOAD_MODEL of a @size_mib MiB file (a valid .cbx and a hole) spends its
 * time hashing; SIGKILL must end it within KILL_BOUND_SECONDS, and well
 * before the load would have ended, as timed on a file 1/8 the size.
 */
static void kill_load(const char *name, const char *good, uint64_t size_mib)
{
	struct cerebro_load ld = { .size = sizeof(ld), .version = CEREBRO_UAPI_VERSION };
	const char *small = "/tmp/long_small.cbx", *big = "/tmp/long.cbx";
	double start, full, gone, left;
	int fd, finished = 0, rc, err;
	char why[256];

	mark(name);
	if (write_long_cbx(small, good, size_mib * MIB / 8) || write_long_cbx(big, good, size_mib * MIB)) {
		verdict(name, 0, "cannot write the files");
		return;
	}
	fd = dev_open();
	start = now();
	rc = load(fd, small, NULL);
	err = errno;
	full = (now() - start) * 8;
	print_file_reason(name, fd, rc < 0 ? err : 0);
	errno = err;
	expect("long_load_refused", rc, EBADMSG);
	ld.path = (uint64_t)(uintptr_t)big;
	gone = kill_during(fd, load_call, &ld, 1.0, &finished);
	close(fd);
	unlink(small);
	unlink(big);
	left = full - 1.0;
	snprintf(why, sizeof(why),
		 "killed 1 s into a load estimated at %.1f s: gone %.2f s later (bound %.0f s)%s",
		 full, gone, KILL_BOUND_SECONDS, finished ? "; the load had already ended" : "");
	printf("killload %s\n", why);
	verdict(name, !finished && gone >= 0 && gone < left / 2, why);
	verdict("works_after_killed_load", still_works(good), "a good model no longer loads and runs");
}

/*
 * EXECUTE_MODEL of a model whose stages each spin for a while (65535 of
 * them: minutes even on real hardware): SIGKILL must end it between two
 * stages, leave the reason on the file, no results, and the file usable.
 */
static void kill_stages(const char *name, const char *slow, const char *good)
{
	static float x[1024], y[1024];
	struct cerebro_buffer in = { (uint64_t)(uintptr_t)x, 0 }, out = { (uint64_t)(uintptr_t)y, 4 };
	struct cerebro_io arg = { .size = sizeof(arg), .version = CEREBRO_UAPI_VERSION };
	struct cerebro_last_error le;
	int fd = dev_open(), finished = 0;
	uint32_t handle;
	char why[TEXT_LEN];
	double gone;

	mark(name);
	if (load(fd, slow, &handle) != 0 || input_buffer(fd, handle, &in) != 0) {
		verdict(name, 0, "cannot load the slow model");
		close(fd);
		return;
	}
	arg.handle = handle;
	arg.num_buffers = 1;
	arg.buffers = (uint64_t)(uintptr_t)&in;
	gone = kill_during(fd, execute_call, &arg, 1.0, &finished);
	if (gone < 0) {	/* still in the kernel, holding this file's lock: use no more of it */
		verdict(name, 0, "the killed caller outlived the bound");
		return;
	}
	last_error(fd, &le);
	snprintf(why, sizeof(why), "gone %.2f s after SIGKILL (bound %.0f s)%s; LAST_ERROR %d '%.160s'",
		 gone, KILL_BOUND_SECONDS, finished ? "; the call had already ended" : "", le.error,
		 le.message);
	printf("killstages %s\n", why);
	verdict(name, !finished && le.error == EINTR && strstr(le.message, "EXECUTE_MODEL: killed after stage"),
		why);
	expect("no_results_after_killed_execute", io(fd, CEREBRO_IOC_GET_RESULTS, handle, &out, 1), ENODATA);
	close(fd);
	verdict("works_after_killed_execute", still_works(good), "a good model no longer loads and runs");
}

/* ---- the write()/read() command channel (issue #16) ---- */

#define CHANNEL_MAX 65536	/* the test models' inputs and outputs are smaller */

struct blob {
	size_t len;
	char data[CHANNEL_MAX];
};

static int say(int fd, const char *text)
{
	return (int)write(fd, text, strlen(text));
}

static int read_blob(const char *path, struct blob *b)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, b->data, sizeof(b->data));

	if (fd >= 0)
		close(fd);
	b->len = n > 0 ? (size_t)n : 0;
	return n > 0 && (size_t)n < sizeof(b->data) ? 0 : -1;
}

/* Reads the reply in pieces of @step bytes up to EOF; 0 if it equals @want. */
static int reply_equals(int fd, size_t step, const struct blob *want)
{
	static struct blob got;
	ssize_t n;

	got.len = 0;
	do {
		size_t room = sizeof(got.data) - got.len;

		n = read(fd, got.data + got.len, step < room ? step : room);
		if (n > 0)
			got.len += (size_t)n;
	} while (n > 0 && got.len < sizeof(got.data));
	return n == 0 && got.len == want->len && memcmp(got.data, want->data, got.len) == 0 ? 0 : -1;
}

/* One write of: @head, @in's bytes (@extra more or fewer), @tail. */
static int write_framed(int fd, const char *head, const struct blob *in, long extra,
			const char *tail)
{
	static char buf[2 * CHANNEL_MAX];
	size_t len = strlen(head), n = (size_t)((long)in->len + extra);

	memcpy(buf, head, len);
	memset(buf + len, 0, n);
	memcpy(buf + len, in->data, n < in->len ? n : in->len);
	len += n;
	memcpy(buf + len, tail, strlen(tail));
	len += strlen(tail);
	return write(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

static int say_load(int fd, const char *path)
{
	char line[TEXT_LEN];

	snprintf(line, sizeof(line), "LOAD_MODEL %s\n", path);
	return say(fd, line) < 0 ? -1 : 0;
}

/* Inputs split at every byte, the command split too; then the whole reply at once. */
static int split_writes(int fd, const struct blob *in, const struct blob *want)
{
	size_t i;
	int ok = say(fd, "EXEC") == 4 && say(fd, "UTE_MODEL\n") == 10;

	for (i = 0; ok && i < in->len; i++)
		ok = write(fd, in->data + i, 1) == 1;
	return ok && say(fd, "GET_RESULTS\n") > 0 && reply_equals(fd, sizeof(want->data), want) == 0;
}

/*
 * Seeded random writes (command words, newlines, NULs and random bytes, up
 * to 6000 at a time) and reads, then a write that ends any unfinished line or
 * inputs: the channel must then load and run @model to @want's outputs.
 */
static int random_writes(int fd, const char *model, const struct blob *in, const struct blob *want)
{
	static const char *const words[] = {
		"LOAD_MODEL ", "EXECUTE_MODEL", "GET_RESULTS", "INFO", "UNLOAD_MODEL", "\n", " ",
	};
	static char buf[6000];
	unsigned int seed = 16;
	size_t len, target;
	int i;

	if (in->len >= sizeof(buf))
		return 0;
	for (i = 0; i < 1000; i++) {
		target = (size_t)rand_r(&seed) % sizeof(buf);
		for (len = 0; len < target; len++) {
			const char *word = words[rand_r(&seed) % (sizeof(words) / sizeof(words[0]))];

			if (rand_r(&seed) % 8 == 0 && len + strlen(word) < sizeof(buf)) {
				memcpy(buf + len, word, strlen(word));
				len += strlen(word) - 1;
			} else {
				buf[len] = (char)rand_r(&seed);
			}
		}
		if (rand_r(&seed) % 3 == 0)
			(void)!read(fd, buf, (size_t)rand_r(&seed) % 512);
		else
			(void)!write(fd, buf, len);
	}
	memset(buf, 'x', in->len + 1);	/* completes any inputs, and is no command line */
	(void)!write(fd, buf, in->len + 1);
	(void)!write(fd, "\n", 1);	/* ends any line */
	return say_load(fd, model) == 0 && write_framed(fd, "EXECUTE_MODEL\n", in, 0, "GET_RESULTS\n") == 0 &&
	       reply_equals(fd, 64, want) == 0;
}

/*
 * Every refusal (bad command, out of order, wrong byte count, oversized
 * line) has its errno and reason and leaves the channel usable; outputs
 * through it equal the ioctl path's (@argv[2], from cerebro-ctl); two
 * open files' channels do not mix.
 */
static void channel(char **argv)
{
	static struct blob in, want, in2, want2;
	static char line[8192];
	int fd, other, ok;

	if (read_blob(argv[1], &in) || read_blob(argv[2], &want) || read_blob(argv[4], &in2) ||
	    read_blob(argv[5], &want2) || in.len < 8) {
		verdict("channel_setup", 0, "cannot read the input and output files");
		return;
	}
	fd = dev_open();
	FILE_CASE("channel_execute_before_load", fd, say(fd, "EXECUTE_MODEL\n"), ENOENT);
	FILE_CASE("channel_unknown_command", fd, say(fd, "BOGUS\n"), EINVAL);
	FILE_CASE("channel_argument_to_info", fd, say(fd, "INFO please\n"), EINVAL);
	FILE_CASE("channel_nul_in_line", fd, (int)write(fd, "INFO\0\n", 6), EINVAL);
	memset(line, 'A', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	FILE_CASE("channel_oversized_line", fd, (int)write(fd, line, sizeof(line)), EMSGSIZE);
	FILE_CASE("channel_load_missing", fd, say(fd, "LOAD_MODEL /nonexistent.cbx\n"), ENOENT);
	FILE_CASE("channel_load_no_default", fd, say(fd, "LOAD_MODEL\n"), ENOENT);
	verdict("channel_load", say_load(fd, argv[0]) == 0, strerror(errno));
	FILE_CASE("channel_get_before_execute", fd, say(fd, "GET_RESULTS\n"), ENODATA);
	FILE_CASE("channel_read_before_get", fd, (int)read(fd, line, 16), ENODATA);

	/* a command, the inputs and a command in one write; the reply read 7 bytes at a time */
	ok = write_framed(fd, "EXECUTE_MODEL\n", &in, 0, "GET_RESULTS\n") == 0 &&
	     reply_equals(fd, 7, &want) == 0;
	verdict("channel_matches_ioctl", ok, "one write: outputs differ from the ioctl path's");
	FILE_CASE("channel_read_after_eof", fd, (int)read(fd, line, 16), ENODATA);

	FILE_CASE("channel_too_many_bytes", fd, write_framed(fd, "EXECUTE_MODEL\n", &in, 4, ""), EINVAL);
	FILE_CASE("channel_no_results_after_too_many", fd, say(fd, "GET_RESULTS\n"), ENODATA);
	ok = write_framed(fd, "EXECUTE_MODEL\n", &in, -4, "") == 0;
	FILE_CASE("channel_read_during_input", fd, (int)read(fd, line, 16), ENODATA);
	FILE_CASE("channel_too_few_then_command", fd, say(fd, "GET_RESULTS\n"), EINVAL);
	FILE_CASE("channel_no_results_after_too_few", fd, say(fd, "GET_RESULTS\n"), ENODATA);
	ok = ok && say(fd, "EXECUTE_MODEL\n") > 0;
	FILE_CASE("channel_bad_input_pointer", fd, (int)write(fd, (void *)16, in.len), EFAULT);
	verdict("channel_split_writes", ok && split_writes(fd, &in, &want),
		"byte-by-byte writes: outputs differ from the ioctl path's");

	/* a second open file runs another model while this one is half way through its inputs */
	other = dev_open();
	ok = say(fd, "EXECUTE_MODEL\n") > 0 && write(fd, in.data, in.len / 2) == (ssize_t)(in.len / 2) &&
	     say_load(other, argv[3]) == 0 &&
	     write_framed(other, "EXECUTE_MODEL\n", &in2, 0, "GET_RESULTS\n") == 0 &&
	     reply_equals(other, 5, &want2) == 0 &&
	     write(fd, in.data + in.len / 2, in.len - in.len / 2) == (ssize_t)(in.len - in.len / 2) &&
	     say(fd, "GET_RESULTS\n") > 0 && reply_equals(fd, 64, &want) == 0;
	verdict("channel_files_independent", ok, "interleaved channels on two files gave other outputs");
	close(other);

	verdict("channel_random_writes", random_writes(fd, argv[0], &in, &want),
		"after 1000 random writes and reads the channel no longer runs the model right");
	verdict("channel_unload", say(fd, "UNLOAD_MODEL\n") > 0, strerror(errno));
	FILE_CASE("channel_info_after_unload", fd, say(fd, "INFO\n"), ENOENT);
	close(fd);
}

/*
 * The slow model's EXECUTE through the channel (its input bytes written by
 * a child, which runs the stages) ends between two stages on SIGKILL, as
 * the ioctl does; the file's channel then has no results and still works.
 */
static void kill_channel(const char *name, const char *slow, const char *good)
{
	static float x[1024];
	struct cerebro_buffer in = { (uint64_t)(uintptr_t)x, 0 }, in_good = in;
	struct cerebro_last_error le;
	int fd = dev_open(), finished = 0, ok;
	uint32_t handle, handle_good;
	char why[TEXT_LEN];
	double gone;

	mark(name);
	/* the ioctls' handles tell the input sizes, and share the file with the channel */
	if (load(fd, slow, &handle) || input_buffer(fd, handle, &in) || load(fd, good, &handle_good) ||
	    input_buffer(fd, handle_good, &in_good) || say_load(fd, slow) ||
	    say(fd, "EXECUTE_MODEL\n") < 0) {
		verdict(name, 0, "setup failed");
		close(fd);
		return;
	}
	gone = kill_during(fd, write_call, &in, 1.0, &finished);
	if (gone < 0) {
		verdict(name, 0, "the killed writer outlived the bound");
		return;
	}
	last_error(fd, &le);
	snprintf(why, sizeof(why), "gone %.2f s after SIGKILL (bound %.0f s)%s; LAST_ERROR %d '%.160s'",
		 gone, KILL_BOUND_SECONDS, finished ? "; the call had already ended" : "", le.error,
		 le.message);
	printf("killchannel %s\n", why);
	verdict(name, !finished && le.error == EINTR && strstr(le.message, "EXECUTE_MODEL: killed after stage"),
		why);
	expect("channel_no_results_after_kill", say(fd, "GET_RESULTS\n"), ENODATA);
	ok = say_load(fd, good) == 0 && say(fd, "EXECUTE_MODEL\n") > 0 && write_call(fd, &in_good) > 0 &&
	     say(fd, "GET_RESULTS\n") > 0 && read(fd, x, sizeof(x)) > 0;
	verdict("channel_works_after_kill", ok, "the channel no longer loads and runs a good model");
	close(fd);
}

int main(int argc, char **argv)
{
	struct sigaction alarm_action = { .sa_handler = on_alarm };	/* no SA_RESTART */
	int fd;

	sigaction(SIGALRM, &alarm_action, NULL);
	if (argc == 7 && strcmp(argv[1], "badinput") == 0) {
		char model_dir[TEXT_LEN];

		struct snapshot sysfs;

		snprintf(model_dir, sizeof(model_dir), "%s/models/%s", CEREBRO_SYSFS_DIR, argv[6]);
		set_reason_files(model_dir);
		snapshot(&sysfs);
		fd = dev_open();
		load_cases(fd, argv + 2);
		io_cases(fd, argv[2]);
		close(fd);
		print_reason("ioctl_refusals_changed_sysfs", &sysfs);	/* a line here fails the host test */
		set_reason_files(NULL);
		limit_cases(argv[2], argv[6]);
	} else if (argc == 6 && strcmp(argv[1], "write") == 0) {
		sysfs_write(argv[2], argv[3], argv[4], atoi(argv[5]));
	} else if (argc == 5 && strcmp(argv[1], "load") == 0) {
		fd = dev_open();
		FILE_CASE(argv[2], fd, load(fd, argv[3], NULL), atoi(argv[4]));
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
	} else if (argc == 3 && strcmp(argv[1], "perfile") == 0) {
		per_file(argv[2]);
	} else if (argc == 5 && strcmp(argv[1], "names") == 0) {
		if (write_name_sections(argv[2], strtoull(argv[3], NULL, 10) * MIB,
					strtoull(argv[4], NULL, 10) * MIB) != 0) {
			perror(argv[2]);
			return 1;
		}
	} else if (argc == 5 && strcmp(argv[1], "hostile") == 0) {
		hostile(argv[2], argv[3], atoi(argv[4]));
	} else if (argc == 5 && strcmp(argv[1], "killload") == 0) {
		kill_load(argv[2], argv[3], strtoull(argv[4], NULL, 10));
	} else if (argc == 5 && strcmp(argv[1], "killstages") == 0) {
		kill_stages(argv[2], argv[3], argv[4]);
	} else if (argc == 8 && strcmp(argv[1], "channel") == 0) {
		channel(argv + 2);
	} else if (argc == 5 && strcmp(argv[1], "killchannel") == 0) {
		kill_channel(argv[2], argv[3], argv[4]);
	} else {
		fprintf(stderr, "usage: see the comment at the top of vm_checks.c\n");
		return 2;
	}
	return failures ? 1 : 0;
}
