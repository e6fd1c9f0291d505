// SPDX-License-Identifier: MIT
/*
 * kfuzz: a bounded fuzzer for /dev/cerebro and /sys/kernel/cerebro, run as a
 * static program inside the test VM (tests/kernel/test_kernel_fuzz_vm.py).
 *
 *   kfuzz SEED IOCTLS SECONDS VICTIM.cbx VICTIM.ko CHECKED.cbx
 *
 * Both models' modules are loaded before it starts. It stops after IOCTLS
 * ioctls (all workers together) or SECONDS, whichever comes first. Workers:
 *  - ioctl fuzzers (processes of two threads sharing their files): random
 *    commands, struct sizes, versions, handles, counts and pointers (NULL,
 *    unmapped, kernel, read-only, misaligned, straddling a guard page), and
 *    LOAD_MODEL of mutated .cbx copies (bit flips, truncation, ELF and meta
 *    fields at extremes, most resealed with a valid content hash) and of
 *    FIFOs, directories, device nodes, symlink loops, a path that keeps
 *    changing file type, a 3 GiB sparse file; read/write/mmap/poll too;
 *  - executors (two processes of two threads sharing one open file, plus a
 *    file each): run both models; CHECKED must always succeed and give the
 *    bytes of the first run; now and then a child is killed mid-call;
 *  - a sysfs writer: every file under /sys/kernel/cerebro (CHECKED's
 *    options excepted), random and hostile values;
 *  - a racer inserting and removing VICTIM's module, and two loops writing
 *    its name to `unload`, at a higher priority (their windows are short).
 * The host judges the kernel (dmesg, taint). This program reports what only
 * it can see: "@@KFUZZ FAIL why" for a checked run that failed or differed
 * and "@@KFUZZ HANG ..." for a call stuck over HANG_MS. The last line is
 * "@@KFUZZ done seed=S ioctls=N ... failures=F hangs=H".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerebro/cbx.h>
#include <cerebro/uapi.h>

/* Resealing mutants needs the .cbx content hash: the runtime's own SHA-256. */
#include "../../runtime_kmod/core/sha256.c"

/* The port's hook for SHA instructions: none here, the portable rounds are fast enough. */
int cbx_port_sha256_blocks(uint32_t state[8], const uint8_t *data, uint64_t blocks)
{
	(void)state;
	(void)data;
	(void)blocks;
	return 0;
}

#define DIR_TMP "/tmp/kfuzz"
#define HANG_MS 10000		/* one call longer than this is a hang */
#define MAX_SLOTS 32
#define MAX_FILE (1 << 20)	/* the models are small; mutants stay under this */
#define HUGE_SIZE (3ULL << 30)	/* sparse; far over the 512 MiB cap */
#define MAX_HUGE_LOADS 3
#define PAGE 4096
#define FORGED "\nKFUZZ-FORGED: BUG: a line the caller wrote\n"
#define REPORT DIR_TMP "/report"	/* the report lines again, for the host */
#define MAX_IO 8		/* inputs or outputs of the two models */
#define RACER_NICE -10
#define SWAP DIR_TMP "/swap"	/* a path whose file type changes all the time */

/* ---- state shared by every worker (one MAP_SHARED page set) ---- */

struct slot {
	_Atomic long since_ms;	/* start of the current call; 0 = between calls */
	_Atomic int tid;
	_Atomic int reported;
	char role[16];
	char op[160];
};

struct shared {
	_Atomic long ioctls, sysfs_ops, mutants, checked_runs, racer_cycles, huge_loads;
	_Atomic long failures;
	_Atomic int stop;
	_Atomic int next_slot;
	struct slot slots[MAX_SLOTS];
};

struct model {
	const char *path;
	char module[64];
	uint32_t nin, nout;
	uint64_t nbytes[CEREBRO_MAX_BUFFERS];
	uint8_t *inputs[CEREBRO_MAX_BUFFERS];	/* CHECKED: the reference inputs */
	uint8_t *outputs[CEREBRO_MAX_BUFFERS];	/* CHECKED: the first run's outputs */
};

/* Where the ELF and meta fields of the good file are (for targeted mutations). */
struct layout {
	uint64_t shoff, meta_off, meta_size, symtab_off, symtab_size;
	uint16_t shnum;
};

static struct shared *sh;
static struct model victim, checked;
static const char *victim_ko;
static uint8_t *good_data[2];
static size_t good_size[2];
static struct layout good_layout[2];
static unsigned long seed;
static long ioctl_limit;
static int shared_fd = -1;

/* ---- small helpers ---- */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One "@@KFUZZ" line, to the console and (one write, O_APPEND) to REPORT. */
static void report(const char *fmt, ...)
{
	char line[640];
	va_list args;
	int len, fd;

	len = snprintf(line, sizeof(line), "@@KFUZZ ");
	va_start(args, fmt);
	len += vsnprintf(line + len, sizeof(line) - (size_t)len - 1, fmt, args);
	va_end(args);
	len = len < (int)sizeof(line) - 1 ? len : (int)sizeof(line) - 2;
	line[len++] = '\n';
	fd = open(REPORT, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0 && write(fd, line, (size_t)len) < 0)
		perror(REPORT);
	if (fd >= 0)
		close(fd);
	fwrite(line, 1, (size_t)len, stdout);
	fflush(stdout);
}

static void fail(const char *fmt, ...)
{
	char why[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(why, sizeof(why), fmt, args);
	va_end(args);
	report("FAIL %s", why);
	sh->failures++;
}

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

static uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(next(r) % n) : 0;
}

static int chance(struct rng *r, int percent)
{
	return (int)below(r, 100) < percent;
}

static void fill_random(struct rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len--)
		*p++ = (uint8_t)next(r);
}

static int stopping(void)
{
	return sh->stop || sh->ioctls >= ioctl_limit;
}

/* A worker's slot: what it is doing now, for hang reports. */
static struct slot *slot_claim(const char *role)
{
	int i = sh->next_slot++;
	struct slot *s;

	if (i >= MAX_SLOTS) {
		fprintf(stderr, "kfuzz: more than %d workers\n", MAX_SLOTS);
		exit(2);
	}
	s = &sh->slots[i];
	snprintf(s->role, sizeof(s->role), "%s", role);
	s->tid = (int)syscall(SYS_gettid);
	return s;
}

static void begin(struct slot *s, const char *fmt, ...)
{
	va_list args;
	char *p;

	va_start(args, fmt);
	vsnprintf(s->op, sizeof(s->op), fmt, args);
	va_end(args);
	for (p = s->op; *p; p++) {	/* a report line stays one line */
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	}
	s->since_ms = now_ms();
}

static void end(struct slot *s)
{
	s->since_ms = 0;
}

static long do_ioctl(struct slot *s, int fd, unsigned long cmd, uint64_t arg, const char *what)
{
	long rc;

	begin(s, "ioctl fd %d cmd 0x%lx arg 0x%llx (%s)", fd, cmd, (unsigned long long)arg, what);
	rc = ioctl(fd, cmd, (void *)(uintptr_t)arg);
	end(s);
	sh->ioctls++;
	return rc;
}

/*
 * The same call through the 32-bit system call entry (int $0x80, ioctl is
 * 54 there), as a 32-bit program makes it: the kernel takes its compat path.
 * @arg must lie below 4 GiB.
 */
static long do_ioctl32(struct slot *s, int fd, unsigned long cmd, uint64_t arg)
{
	long rc;

	begin(s, "32-bit ioctl fd %d cmd 0x%lx arg 0x%llx", fd, cmd, (unsigned long long)arg);
	__asm__ volatile("int $0x80" : "=a"(rc) : "a"(54L), "b"((long)fd), "c"((long)(uint32_t)cmd),
			 "d"((long)(uint32_t)arg) : "memory", "r8", "r9", "r10", "r11");
	end(s);
	sh->ioctls++;
	return rc;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *size)
{
	uint8_t *buf = malloc(MAX_FILE);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (!buf || fd < 0) {
		perror(path);
		exit(2);
	}
	n = read(fd, buf, MAX_FILE);
	close(fd);
	if (n <= 0 || n == MAX_FILE) {
		fprintf(stderr, "kfuzz: %s: empty or over %d bytes\n", path, MAX_FILE);
		exit(2);
	}
	*size = (size_t)n;
	return buf;
}

/* A sysfs write as one write(2); returns 0 or errno. */
static int sysfs_write(struct slot *s, const char *path, const void *value, size_t len)
{
	int fd, ret = 0;

	begin(s, "write %zu bytes to %s: '%.60s'", len, path, (const char *)value);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, value, len) < 0)
		ret = errno;
	if (fd >= 0)
		close(fd);
	end(s);
	sh->sysfs_ops++;
	return ret;
}

/* ---- user memory for pointers: valid, misaligned, at a guard page, read-only, gone ---- */

struct memory {
	uint8_t *rw;		/* RW_SIZE bytes */
	uint8_t *guard;		/* first byte of a PROT_NONE page after a writable one */
	uint8_t *ro;		/* a read-only page */
	uint8_t *low;		/* LOW_SIZE bytes below 4 GiB, for 32-bit calls */
	uint64_t unmapped;
};

#define LOW_SIZE (2 * PAGE)

#define RW_SIZE (256 * 1024)
#define MAX_TENSOR (64 * 1024)	/* the most bytes of one tensor, or of MODEL_INFO's records */

static void memory_init(struct memory *m, struct rng *r)
{
	uint8_t *pages = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *gone = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	m->rw = mmap(NULL, RW_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m->ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m->low = mmap(NULL, LOW_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (pages == MAP_FAILED || gone == MAP_FAILED || m->rw == MAP_FAILED || m->ro == MAP_FAILED ||
	    m->low == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	fill_random(r, m->ro, PAGE);
	mprotect(m->ro, PAGE, PROT_READ);
	mprotect(pages + PAGE, PAGE, PROT_NONE);
	m->guard = pages + PAGE;
	munmap(gone, PAGE);
	m->unmapped = (uint64_t)(uintptr_t)gone;
}

static const uint64_t kernel_pointers[] = {
	0xffffffff81000000ULL,	/* kernel text */
	0xffff888000000000ULL,	/* direct map */
	0xffffc90000000000ULL,	/* vmalloc */
	0xffffffffff600000ULL,	/* vsyscall */
	0x8000000000000000ULL,	/* non-canonical */
	0x0000800000000000ULL,	/* just past user space */
	0xfffffffffffffff0ULL,
};

/*
 * A pointer to @need bytes: mostly valid, else one of the many ways to be
 * wrong. A valid one has MAX_TENSOR bytes behind it whatever @need says: the
 * handle may be the other model's, which the kernel then writes in full.
 */
static uint64_t pick_pointer(struct rng *r, struct memory *m, uint64_t need)
{
	uint64_t span = need > MAX_TENSOR ? need : MAX_TENSOR;
	uint64_t room = span < RW_SIZE ? RW_SIZE - span : 0;
	uint64_t at = (uint64_t)(uintptr_t)m->rw + (room ? below(r, (uint32_t)room / 64) * 64 : 0);

	switch (below(r, 16)) {
	case 0:
		return 0;
	case 1:
		return below(r, 2) ? 16 : PAGE - 1;
	case 2:
		return m->unmapped + below(r, PAGE);
	case 3:
		return kernel_pointers[below(r, sizeof(kernel_pointers) / sizeof(kernel_pointers[0]))];
	case 4:
		return (uint64_t)(uintptr_t)m->ro;
	case 5:	/* straddles the guard page: the copy faults part way */
		return (uint64_t)(uintptr_t)m->guard - 1 - below(r, need > 1 ? (uint32_t)(need - 1) : 1);
	case 6:	/* ends exactly at the guard page: valid */
		return (uint64_t)(uintptr_t)m->guard - (need < PAGE ? need : PAGE);
	case 7:
		return at + 1 + below(r, 7);	/* misaligned */
	default:
		return at;
	}
}

static uint32_t mutate_u32(struct rng *r, uint32_t good)
{
	static const uint32_t odd[] = { 0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 256, 257, 4096 };

	switch (below(r, 8)) {
	case 0:
		return odd[below(r, sizeof(odd) / sizeof(odd[0]))];
	case 1:
		return good + 1;
	case 2:
		return good - 1;
	case 3:
		return (uint32_t)next(r);
	default:
		return good;
	}
}

static uint64_t mutate_u64(struct rng *r, uint64_t good)
{
	static const uint64_t odd[] = {
		0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL, 1ULL << 62,
		0x7fffffffffffffffULL, 0xffffffffffffffffULL, 1ULL << 30, (1ULL << 30) + 1,
	};

	switch (below(r, 8)) {
	case 0:
		return odd[below(r, sizeof(odd) / sizeof(odd[0]))];
	case 1:
		return good + 1 + below(r, 64);
	case 2:
		return good - 1;
	case 3:
		return next(r);
	default:
		return good;
	}
}

/* ---- mutated .cbx files ---- */

static void find_layout(const uint8_t *data, size_t size, struct layout *l)
{
	const Elf64_Ehdr *eh = (const void *)data;
	const Elf64_Shdr *shdrs, *strs;
	uint16_t i;

	memset(l, 0, sizeof(*l));
	if (size < sizeof(*eh) || eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size ||
	    eh->e_shstrndx >= eh->e_shnum) {
		fprintf(stderr, "kfuzz: the good .cbx is not the ELF file expected\n");
		exit(2);
	}
	l->shoff = eh->e_shoff;
	l->shnum = eh->e_shnum;
	shdrs = (const void *)(data + eh->e_shoff);
	strs = &shdrs[eh->e_shstrndx];
	for (i = 1; i < eh->e_shnum; i++) {
		const char *name = (const char *)data + strs->sh_offset + shdrs[i].sh_name;

		if (shdrs[i].sh_type == SHT_SYMTAB) {
			l->symtab_off = shdrs[i].sh_offset;
			l->symtab_size = shdrs[i].sh_size;
		}
		if (strcmp(name, CBX_META_SECTION) == 0) {
			l->meta_off = shdrs[i].sh_offset;
			l->meta_size = shdrs[i].sh_size;
		}
	}
	if (!l->meta_off || !l->symtab_off) {
		fprintf(stderr, "kfuzz: the good .cbx has no %s or symbol table\n", CBX_META_SECTION);
		exit(2);
	}
}

static void put(uint8_t *buf, size_t size, uint64_t off, unsigned int width, uint64_t value)
{
	if (off <= size && width <= size - off)
		memcpy(buf + off, &value, width);	/* little-endian host */
}

static uint64_t extreme(struct rng *r, size_t size)
{
	static const uint64_t values[] = {
		0, 1, 2, 0x7f, 0xff, 0x100, 0x7fff, 0x8000, 0xfff1, 0xfff2, 0xffff, 0x10000,
		0x7fffffff, 0x80000000, 0xffffffff, 1ULL << 32, 1ULL << 63, ~0ULL,
	};

	switch (below(r, 4)) {
	case 0:
		return size - below(r, 64);
	case 1:
		return below(r, (uint32_t)size);
	default:
		return values[below(r, sizeof(values) / sizeof(values[0]))];
	}
}

/* Field offsets and widths inside the records the parser reads. */
struct field {
	uint16_t off;
	uint16_t width;
};

static const struct field ehdr_fields[] = {
	{ offsetof(Elf64_Ehdr, e_ident) + 4, 1 }, { offsetof(Elf64_Ehdr, e_ident) + 5, 1 },
	{ offsetof(Elf64_Ehdr, e_type), 2 }, { offsetof(Elf64_Ehdr, e_machine), 2 },
	{ offsetof(Elf64_Ehdr, e_shoff), 8 }, { offsetof(Elf64_Ehdr, e_shentsize), 2 },
	{ offsetof(Elf64_Ehdr, e_shnum), 2 }, { offsetof(Elf64_Ehdr, e_shstrndx), 2 },
};

static const struct field shdr_fields[] = {
	{ offsetof(Elf64_Shdr, sh_name), 4 }, { offsetof(Elf64_Shdr, sh_type), 4 },
	{ offsetof(Elf64_Shdr, sh_flags), 8 }, { offsetof(Elf64_Shdr, sh_offset), 8 },
	{ offsetof(Elf64_Shdr, sh_size), 8 }, { offsetof(Elf64_Shdr, sh_link), 4 },
	{ offsetof(Elf64_Shdr, sh_info), 4 }, { offsetof(Elf64_Shdr, sh_entsize), 8 },
};

static const struct field sym_fields[] = {
	{ offsetof(Elf64_Sym, st_name), 4 }, { offsetof(Elf64_Sym, st_info), 1 },
	{ offsetof(Elf64_Sym, st_shndx), 2 }, { offsetof(Elf64_Sym, st_value), 8 },
	{ offsetof(Elf64_Sym, st_size), 8 },
};

static const struct field meta_fields[] = {
	{ offsetof(struct cbx_meta, format_version), 4 }, { offsetof(struct cbx_meta, abi_version), 4 },
	{ offsetof(struct cbx_meta, machine), 4 }, { offsetof(struct cbx_meta, num_inputs), 4 },
	{ offsetof(struct cbx_meta, num_outputs), 4 }, { offsetof(struct cbx_meta, num_stages), 4 },
	{ offsetof(struct cbx_meta, arena_size), 8 }, { offsetof(struct cbx_meta, weights_size), 8 },
	{ offsetof(struct cbx_meta, flops), 8 }, { offsetof(struct cbx_meta, max_stage_flops), 8 },
	{ offsetof(struct cbx_meta, meta_size), 4 }, { offsetof(struct cbx_meta, parts), 4 },
	{ offsetof(struct cbx_meta, regions), 4 }, { offsetof(struct cbx_meta, reserved), 4 },
	{ offsetof(struct cbx_meta, region_size), 8 },
};

static const struct field tensor_fields[] = {
	{ offsetof(struct cbx_tensor, dtype), 4 }, { offsetof(struct cbx_tensor, rank), 4 },
	{ offsetof(struct cbx_tensor, dims), 8 }, { offsetof(struct cbx_tensor, dims) + 8, 8 },
	{ offsetof(struct cbx_tensor, dims) + 56, 8 }, { offsetof(struct cbx_tensor, nbytes), 8 },
};

/* Text fields filled to the last byte: no NUL for the parser to find. */
static const struct field meta_strings[] = {
	{ offsetof(struct cbx_meta, magic), 8 }, { offsetof(struct cbx_meta, triple), 64 },
	{ offsetof(struct cbx_meta, cpu), 32 }, { offsetof(struct cbx_meta, features), 256 },
	{ offsetof(struct cbx_meta, model_name), CBX_NAME_LEN },
};

#define PICK(table) (&(table)[below(r, sizeof(table) / sizeof((table)[0]))])

/* One mutation of @buf (@size bytes, room for MAX_FILE); returns the new size. */
static size_t mutate(struct rng *r, uint8_t *buf, size_t size, const struct layout *l)
{
	const struct field *f;
	uint64_t base;
	uint32_t i, n;

	switch (below(r, 10)) {
	case 0:	/* bit flips */
		for (n = 1 + below(r, 8); n; n--)
			buf[below(r, (uint32_t)size)] ^= (uint8_t)(1u << below(r, 8));
		return size;
	case 1:	/* bytes at extremes */
		for (n = 1 + below(r, 4); n; n--)
			buf[below(r, (uint32_t)size)] = (uint8_t[]){ 0, 0xff, 0x7f, 0x80 }[below(r, 4)];
		return size;
	case 2:	/* truncation */
		return below(r, (uint32_t)size);
	case 3:	/* garbage appended */
		n = size + PAGE < MAX_FILE ? below(r, PAGE) : 0;
		fill_random(r, buf + size, n);
		return size + n;
	case 4:
		f = PICK(ehdr_fields);
		put(buf, size, f->off, f->width, extreme(r, size));
		return size;
	case 5:
		f = PICK(shdr_fields);
		base = l->shoff + (uint64_t)below(r, l->shnum) * sizeof(Elf64_Shdr);
		put(buf, size, base + f->off, f->width, extreme(r, size));
		return size;
	case 6:
		f = PICK(sym_fields);
		base = l->symtab_off + (uint64_t)below(r, (uint32_t)(l->symtab_size / sizeof(Elf64_Sym))) *
			sizeof(Elf64_Sym);
		put(buf, size, base + f->off, f->width, extreme(r, size));
		return size;
	case 7:
		f = PICK(meta_fields);
		put(buf, size, l->meta_off + f->off, f->width, extreme(r, size));
		return size;
	case 8:
		f = PICK(tensor_fields);
		i = below(r, (uint32_t)((l->meta_size - sizeof(struct cbx_meta)) / sizeof(struct cbx_tensor) + 1));
		base = l->meta_off + sizeof(struct cbx_meta) + (uint64_t)i * sizeof(struct cbx_tensor);
		put(buf, size, base + f->off, f->width, extreme(r, size));
		return size;
	default:
		f = PICK(meta_strings);
		if (l->meta_off + f->off + f->width <= size)
			memset(buf + l->meta_off + f->off, 'A', f->width);
		return size;
	}
}

/* Writes the SHA-256 of the file (hash bytes zeroed) into meta.hash, as the compiler does. */
static void reseal(uint8_t *buf, size_t size, const struct layout *l)
{
	uint64_t at = l->meta_off + offsetof(struct cbx_meta, hash);
	struct cbx_sha256 ctx;

	if (at + CBX_SHA256_LEN > size)
		return;
	memset(buf + at, 0, CBX_SHA256_LEN);
	cbx_sha256_init(&ctx);
	cbx_sha256_update(&ctx, buf, size);
	cbx_sha256_final(&ctx, buf + at);
}

/* A mutated copy of one of the good files, written to this worker's own path. */
static const char *make_mutant(struct rng *r, struct slot *s, int worker, uint8_t *buf, char *path)
{
	int which = (int)below(r, 2);
	size_t size = good_size[which];
	uint32_t n;

	memcpy(buf, good_data[which], size);
	for (n = 1 + below(r, 3); n; n--)
		size = mutate(r, buf, size, &good_layout[which]);
	if (chance(r, 75))
		reseal(buf, size, &good_layout[which]);
	sprintf(path, DIR_TMP "/m%d.%u.cbx", worker, below(r, 4));
	begin(s, "write mutant %s", path);
	write_file(path, buf, size);
	end(s);
	sh->mutants++;
	return path;
}

/* ---- paths: good, mutated and hostile ---- */

static char long_path[2 * PATH_MAX];

static const char *const odd_paths[] = {
	DIR_TMP "/fifo", DIR_TMP, DIR_TMP "/null", DIR_TMP "/zero", DIR_TMP "/loop",
	DIR_TMP "/to-fifo", SWAP, SWAP, SWAP, "/dev/cerebro", "/dev/kmsg", "/proc/self/mem", "/proc/kallsyms",
	"/sys/kernel/cerebro/version", "/sys/kernel/cerebro/unload", "/nonexistent.cbx", "",
	"relative.cbx", "/tmp/kfuzz/\x1b[2J\x07" FORGED, " /root/leading-space.cbx", "/tmp/kfuzz/newline\n",
};

static const char *pick_path(struct rng *r, struct slot *s, int worker, uint8_t *buf, char *mutant)
{
	switch (below(r, 10)) {
	case 0:
		return victim.path;
	case 1:
		return checked.path;
	case 2:
	case 3:
	case 4:
		return make_mutant(r, s, worker, buf, mutant);
	case 5:
		return long_path + below(r, PATH_MAX + 16);
	case 6:
		if (sh->huge_loads < MAX_HUGE_LOADS && chance(r, 5)) {
			sh->huge_loads++;
			return DIR_TMP "/huge.cbx";
		}
		/* another worker's mutant, maybe being rewritten while the kernel reads it */
		sprintf(mutant, DIR_TMP "/m%u.%u.cbx", below(r, 4), below(r, 4));
		return mutant;
	default:
		return odd_paths[below(r, sizeof(odd_paths) / sizeof(odd_paths[0]))];
	}
}

/* ---- ioctl fuzzer ---- */

#define FILES 3

struct ioctl_worker {
	struct rng rng;
	struct slot *slot;
	struct memory *mem;
	int id;
	uint8_t *buf;		/* mutant bytes */
	char mutant[128];
};

static int files[FILES];	/* shared by the threads of one fuzzer process */
static _Atomic uint32_t last_handle[FILES];

static const unsigned long commands[] = {
	CEREBRO_IOC_LOAD_MODEL, CEREBRO_IOC_EXECUTE_MODEL, CEREBRO_IOC_GET_RESULTS,
	CEREBRO_IOC_MODEL_INFO, CEREBRO_IOC_UNLOAD_MODEL, CEREBRO_IOC_LAST_ERROR,
};
#define NUM_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static unsigned long random_command(struct rng *r)
{
	switch (below(r, 4)) {
	case 0:
		return (unsigned long)next(r) & 0xffffffff;
	case 1:	/* our magic, any number and size */
		return _IOC(below(r, 4), CEREBRO_IOC_MAGIC, below(r, 256), below(r, 1 << 14));
	case 2:	/* a real number with the wrong size or direction */
		return _IOC(below(r, 4), CEREBRO_IOC_MAGIC, 1 + below(r, NUM_COMMANDS), below(r, 512));
	default:
		return (unsigned long[]){ FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, TCGETS }[below(r, 5)];
	}
}

static uint32_t pick_handle(struct rng *r, int file)
{
	static const uint32_t odd[] = { 0, 1, CEREBRO_MAX_HANDLES, CEREBRO_MAX_HANDLES + 1, 0x80000000, 0xffffffff };

	if (chance(r, 70) && last_handle[file])
		return last_handle[file];
	return chance(r, 50) ? 1 + below(r, CEREBRO_MAX_HANDLES) : odd[below(r, 6)];
}

static const struct model *random_model(struct rng *r)
{
	return below(r, 2) ? &victim : &checked;
}

/* The argument of one of our ioctls, mostly well formed, at @arg in w->mem->rw. */
static void build_arg(struct ioctl_worker *w, unsigned long cmd, int file, uint8_t *arg)
{
	struct rng *r = &w->rng;
	const struct model *m = random_model(r);
	uint32_t size = _IOC_SIZE(cmd), n, i;
	struct cerebro_buffer *bufs;

	fill_random(r, arg, 256);
	if (cmd == CEREBRO_IOC_LOAD_MODEL) {
		struct cerebro_load *ld = (void *)arg;

		ld->path = chance(r, 5) ? 0 : chance(r, 8) ? pick_pointer(r, w->mem, 64) :
			(uint64_t)(uintptr_t)pick_path(r, w->slot, w->id, w->buf, w->mutant);
		ld->reserved = chance(r, 95) ? 0 : (uint32_t)next(r);
	} else if (cmd == CEREBRO_IOC_EXECUTE_MODEL || cmd == CEREBRO_IOC_GET_RESULTS) {
		struct cerebro_io *io = (void *)arg;
		uint32_t want = cmd == CEREBRO_IOC_EXECUTE_MODEL ? m->nin : m->nout;
		uint32_t first = cmd == CEREBRO_IOC_EXECUTE_MODEL ? 0 : m->nin;

		io->handle = pick_handle(r, file);
		io->num_buffers = mutate_u32(r, want);
		n = io->num_buffers < 64 ? io->num_buffers : 64;
		bufs = (void *)(arg + 256);
		for (i = 0; i < n; i++) {
			uint64_t nbytes = first + i < m->nin + m->nout ? m->nbytes[first + i] : 64;

			bufs[i].nbytes = mutate_u64(r, nbytes);
			bufs[i].data = pick_pointer(r, w->mem, nbytes);
		}
		io->buffers = chance(r, 85) ? (uint64_t)(uintptr_t)bufs : pick_pointer(r, w->mem, n * 16);
	} else if (cmd == CEREBRO_IOC_MODEL_INFO) {
		struct cerebro_info *info = (void *)arg;

		info->handle = pick_handle(r, file);
		info->max_tensors = mutate_u32(r, m->nin + m->nout);
		info->tensors = pick_pointer(r, w->mem, (uint64_t)(m->nin + m->nout) * 144);
	} else if (cmd == CEREBRO_IOC_UNLOAD_MODEL) {
		((struct cerebro_handle_arg *)arg)->handle = pick_handle(r, file);
		((struct cerebro_handle_arg *)arg)->reserved = 0;
	} else if (cmd == CEREBRO_IOC_LAST_ERROR) {
		((struct cerebro_last_error *)arg)->reserved = chance(r, 95) ? 0 : (uint32_t)next(r);
	}
	((uint32_t *)arg)[0] = chance(r, 85) ? size : mutate_u32(r, size);
	((uint32_t *)arg)[1] = chance(r, 85) ? CEREBRO_UAPI_VERSION : mutate_u32(r, CEREBRO_UAPI_VERSION);
}

/* read/write/mmap/lseek/poll: operations the device does not have. */
static void other_syscall(struct ioctl_worker *w, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	uint8_t *buf = w->mem->rw;
	void *map;

	begin(w->slot, "read/write/mmap/lseek/poll on fd %d", fd);
	if (read(fd, buf, 64) < 0 || write(fd, buf, 64) < 0 || lseek(fd, PAGE, SEEK_SET) < 0)
		errno = 0;	/* refusals are the expected answer */
	map = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (map != MAP_FAILED)
		munmap(map, PAGE);
	poll(&p, 1, 0);
	end(w->slot);
}

static void fuzz_ioctl_once(struct ioctl_worker *w)
{
	struct rng *r = &w->rng;
	int file = (int)below(r, FILES), fd = files[file];
	uint8_t *arg = w->mem->rw + 64 * below(r, 64) + (chance(r, 10) ? 1 + below(r, 7) : 0);
	struct cerebro_load *ld;
	unsigned long cmd;
	uint64_t ptr;
	long rc;

	if (chance(r, 2)) {	/* close a file with handles, under the other thread's feet */
		files[file] = open(CEREBRO_DEVICE_PATH, O_RDWR);
		last_handle[file] = 0;
		close(fd);
		return;
	}
	if (chance(r, 3)) {
		other_syscall(w, fd);
		return;
	}
	cmd = chance(r, 85) ? commands[below(r, NUM_COMMANDS)] : random_command(r);
	build_arg(w, cmd, file, arg);
	ptr = chance(r, 92) ? (uint64_t)(uintptr_t)arg : pick_pointer(r, w->mem, _IOC_SIZE(cmd));
	if (chance(r, 3))	/* the struct straddles the guard page */
		ptr = (uint64_t)(uintptr_t)w->mem->guard - 1 - below(r, 24);
	if (chance(r, 5)) {	/* a 32-bit caller: the struct copied below 4 GiB */
		memcpy(w->mem->low, arg, LOW_SIZE);
		do_ioctl32(w->slot, fd, cmd, (uint64_t)(uintptr_t)w->mem->low);
		return;
	}
	rc = do_ioctl(w->slot, fd, cmd, ptr, "fuzz");
	if (rc || cmd != CEREBRO_IOC_LOAD_MODEL || ptr != (uint64_t)(uintptr_t)arg)
		return;
	ld = (struct cerebro_load *)arg;
	if (ld->path == (uint64_t)(uintptr_t)victim.path && chance(r, 90)) {
		/* a victim handle pins its module: keep few, so the racer's rmmod gets through */
		struct cerebro_handle_arg ha = { sizeof(ha), CEREBRO_UAPI_VERSION, ld->handle, 0 };

		do_ioctl(w->slot, fd, CEREBRO_IOC_UNLOAD_MODEL, (uint64_t)(uintptr_t)&ha, "victim");
	} else {
		last_handle[file] = ld->handle;
	}
}

static void *ioctl_thread(void *data)
{
	struct ioctl_worker *w = data;

	w->slot = slot_claim("ioctl");
	w->buf = malloc(MAX_FILE);
	while (!stopping())
		fuzz_ioctl_once(w);
	return NULL;
}

static void run_ioctl_fuzzer(int id)
{
	struct ioctl_worker workers[2];
	struct memory mem;
	pthread_t thread;
	int i;

	for (i = 0; i < FILES; i++)
		files[i] = open(CEREBRO_DEVICE_PATH, O_RDWR);
	for (i = 0; i < 2; i++) {
		workers[i] = (struct ioctl_worker){ .rng = { seed * 7919 + (uint64_t)id * 104729 + (uint64_t)i + 1 },
						    .mem = &mem, .id = id * 2 + i };
	}
	memory_init(&mem, &workers[0].rng);
	pthread_create(&thread, NULL, ioctl_thread, &workers[1]);
	ioctl_thread(&workers[0]);
	pthread_join(thread, NULL);
}

/* ---- executors: valid calls from several processes and threads ---- */

struct executor {
	struct rng rng;
	struct slot *slot;
	int id;
};

static int load_model(struct slot *s, int fd, const struct model *m, uint32_t *handle)
{
	struct cerebro_load ld = { .size = sizeof(ld), .version = CEREBRO_UAPI_VERSION,
				   .path = (uint64_t)(uintptr_t)m->path };
	long rc = do_ioctl(s, fd, CEREBRO_IOC_LOAD_MODEL, (uint64_t)(uintptr_t)&ld, m->path);

	*handle = ld.handle;
	return rc ? errno : 0;
}

static int run_io(struct slot *s, int fd, unsigned long cmd, uint32_t handle, uint8_t *const *data,
		  const uint64_t *nbytes, uint32_t n)
{
	struct cerebro_buffer bufs[CEREBRO_MAX_BUFFERS];
	struct cerebro_io io = { .size = sizeof(io), .version = CEREBRO_UAPI_VERSION, .handle = handle,
				 .num_buffers = n, .buffers = (uint64_t)(uintptr_t)bufs };
	uint32_t i;

	for (i = 0; i < n; i++)
		bufs[i] = (struct cerebro_buffer){ (uint64_t)(uintptr_t)data[i], nbytes[i] };
	return do_ioctl(s, fd, cmd, (uint64_t)(uintptr_t)&io, "valid") ? errno : 0;
}

static int unload_handle(struct slot *s, int fd, uint32_t handle)
{
	struct cerebro_handle_arg ha = { .size = sizeof(ha), .version = CEREBRO_UAPI_VERSION, .handle = handle };

	return do_ioctl(s, fd, CEREBRO_IOC_UNLOAD_MODEL, (uint64_t)(uintptr_t)&ha, "valid") ? errno : 0;
}

/* The signature as seen through @handle (output 0 after post-processing). */
static int model_info(struct slot *s, int fd, uint32_t handle, struct model *m)
{
	static __thread struct cerebro_tensor_info t[CEREBRO_MAX_BUFFERS];
	struct cerebro_info info = { .size = sizeof(info), .version = CEREBRO_UAPI_VERSION, .handle = handle,
				     .max_tensors = CEREBRO_MAX_BUFFERS, .tensors = (uint64_t)(uintptr_t)t };
	uint32_t i;

	if (do_ioctl(s, fd, CEREBRO_IOC_MODEL_INFO, (uint64_t)(uintptr_t)&info, "valid"))
		return errno;
	if (info.num_inputs + info.num_outputs > CEREBRO_MAX_BUFFERS)
		return EOVERFLOW;
	m->nin = info.num_inputs;
	m->nout = info.num_outputs;
	for (i = 0; i < m->nin + m->nout; i++)
		m->nbytes[i] = t[i].nbytes;
	snprintf(m->module, sizeof(m->module), "%s", info.module_name);
	return 0;
}

/*
 * One load, several runs, unload; CHECKED's every step must succeed and
 * match. Returns 1 if it left the handle open (only on the thread's own file).
 */
static int execute_cycle(struct executor *e, int fd, int is_checked, uint8_t **in, uint8_t **out)
{
	struct rng *r = &e->rng;
	const struct model *ref = is_checked ? &checked : &victim;
	struct model seen;
	uint32_t handle, i, runs = 1 + below(r, 6);
	int err;

	err = load_model(e->slot, fd, ref, &handle);
	if (!err)
		err = model_info(e->slot, fd, handle, &seen);
	if (err) {
		if (is_checked)
			fail("executor %d: LOAD/MODEL_INFO of the checked model: %s", e->id, strerror(err));
		return 0;
	}
	if (is_checked && (seen.nin != ref->nin || seen.nout != ref->nout ||
			   memcmp(seen.nbytes, ref->nbytes, (ref->nin + ref->nout) * sizeof(uint64_t)))) {
		fail("executor %d: the checked model's signature changed", e->id);
		return 0;
	}
	if (seen.nin > MAX_IO || seen.nout > MAX_IO) {
		fail("executor %d: %s has %u inputs and %u outputs (MAX_IO %d)", e->id, ref->path,
		     seen.nin, seen.nout, MAX_IO);
		return 0;
	}
	for (i = 0; i < seen.nin && !is_checked; i++)
		fill_random(r, in[i], seen.nbytes[i]);
	for (i = 0; i < runs && !stopping(); i++) {
		err = run_io(e->slot, fd, CEREBRO_IOC_EXECUTE_MODEL, handle, is_checked ? ref->inputs : in,
			     seen.nbytes, seen.nin);
		if (!err)
			err = run_io(e->slot, fd, CEREBRO_IOC_GET_RESULTS, handle, out, seen.nbytes + seen.nin,
				     seen.nout);
		if (!is_checked)
			continue;
		if (err) {
			fail("executor %d: EXECUTE/GET_RESULTS of the checked model: %s", e->id, strerror(err));
			return 0;
		}
		for (uint32_t o = 0; o < seen.nout; o++) {
			if (memcmp(out[o], ref->outputs[o], seen.nbytes[seen.nin + o]) != 0) {
				fail("executor %d: output %u differs from the first run", e->id, o);
				return 0;
			}
		}
		sh->checked_runs++;
	}
	if (fd != shared_fd && chance(r, 10))
		return 1;	/* left for close() to release */
	err = unload_handle(e->slot, fd, handle);
	if (err && is_checked)
		fail("executor %d: UNLOAD_MODEL: %s", e->id, strerror(err));
	return 0;
}

/*
 * A child killed at a random moment: mid-call, or waiting for the shared
 * file's lock (MODEL_INFO there only reads, so the other executors' runs stay
 * as they are). Its handles live on its own file, which its death releases.
 */
static void killed_mid_call(struct executor *e, uint8_t **in, uint8_t **out)
{
	pid_t pid = fork();
	struct model seen;
	int fd;

	if (pid == 0) {
		fd = open(CEREBRO_DEVICE_PATH, O_RDWR);
		while (!stopping()) {
			execute_cycle(e, fd, 0, in, out);
			model_info(e->slot, shared_fd, 1 + below(&e->rng, CEREBRO_MAX_HANDLES), &seen);
		}
		_exit(0);
	}
	if (pid < 0)
		return;
	usleep(below(&e->rng, 3000));
	begin(e->slot, "SIGKILL to pid %d, running the victim, and wait for it", pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	end(e->slot);
}

static void *executor_thread(void *data)
{
	struct executor *e = data;
	uint8_t *in[MAX_IO], *out[MAX_IO];
	int own = open(CEREBRO_DEVICE_PATH, O_RDWR), left_open = 0, fd, i;

	e->slot = slot_claim("executor");
	for (i = 0; i < MAX_IO; i++) {
		in[i] = malloc(MAX_TENSOR);
		out[i] = malloc(MAX_TENSOR);
	}
	while (!stopping()) {
		if (left_open >= 4) {	/* close with handles still open: release frees them */
			close(own);
			own = open(CEREBRO_DEVICE_PATH, O_RDWR);
			left_open = 0;
		}
		if (chance(&e->rng, 3)) {
			killed_mid_call(e, in, out);
			continue;
		}
		fd = below(&e->rng, 2) ? shared_fd : own;
		left_open += execute_cycle(e, fd, chance(&e->rng, 80), in, out);
	}
	return NULL;
}

static void run_executor(int id)
{
	struct executor e[2] = {
		{ .rng = { seed * 31337 + (uint64_t)id * 2 + 1 }, .id = id * 2 },
		{ .rng = { seed * 31337 + (uint64_t)id * 2 + 2 }, .id = id * 2 + 1 },
	};
	pthread_t thread;

	pthread_create(&thread, NULL, executor_thread, &e[1]);
	executor_thread(&e[0]);
	pthread_join(thread, NULL);
}

/* ---- sysfs ---- */

#define MAX_SYSFS 128

struct sysfs_files {
	int count;
	char path[MAX_SYSFS][PATH_MAX];
};

/* CHECKED's options change its outputs: the only files left alone. */
static int protected(const char *path)
{
	static const char *const options[] = { "preprocess_scale", "preprocess_offset", "postprocess" };
	const char *base = strrchr(path, '/');
	size_t i;

	if (!strstr(path, checked.module) || !base)
		return 0;
	for (i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		if (strcmp(base + 1, options[i]) == 0)
			return 1;
	}
	return 0;
}

static void list_sysfs(const char *dir, int depth, struct sysfs_files *out)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((ent = readdir(d)) && out->count < MAX_SYSFS) {
		if (ent->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name) >= (int)sizeof(path))
			continue;
		if (ent->d_type == DT_DIR && depth < 3)
			list_sysfs(path, depth + 1, out);
		else if (ent->d_type == DT_REG && !protected(path))
			memcpy(out->path[out->count++], path, sizeof(path));
	}
	closedir(d);
}

static const char *const sysfs_words[] = {
	"none", "softmax", "argmax", "topk 1", "topk 3", "topk 8", "topk 0", "topk 9", "topk 4294967295",
	"topk 4294967296", "topk -1", "topk", "topk  2", " topk 2 \n", "softmax extra", "softmax\n\n",
	"0", "1", "-1", "0\n", "0.5", "-0.25", "1e30", "1e31", "1e-30", "-1e-31", "123456789", "1234567890",
	"9.99999999e30", "nan", "inf", "+", "-", ".", "e5", "1e", "1e+", "0x10", " 1", "1 ", "\n", "",
	"cerebro", "cbx_0000000000000000", "cbx_/../..", "\x1b[2J\r" FORGED,
};

/* A value for any sysfs file: words, names, paths, random bytes, long runs. */
static size_t sysfs_value(struct rng *r, struct slot *s, char *val, uint8_t *mutant_buf, char *mutant_path)
{
	const char *text;

	switch (below(r, 8)) {
	case 0:
	case 1:
		text = sysfs_words[below(r, sizeof(sysfs_words) / sizeof(sysfs_words[0]))];
		break;
	case 2:
		text = chance(r, 50) ? victim.module : checked.module;
		break;
	case 3:
	case 4:
		text = pick_path(r, s, 100, mutant_buf, mutant_path);
		break;
	case 5: {
		size_t n = 1 + below(r, 300);

		fill_random(r, val, n);
		return n;
	}
	case 6: {
		size_t n = (size_t[]){ 31, 32, 55, 56, 64, 4095, 4096, 5000 }[below(r, 8)];

		memset(val, 'A' + (int)below(r, 26), n);
		return n;
	}
	default:
		snprintf(val, PATH_MAX, "%s\n", chance(r, 50) ? victim.path : checked.path);
		return strlen(val);
	}
	snprintf(val, 2 * PATH_MAX, "%s", text);
	return strlen(val) + (chance(r, 30) ? 1 : 0);	/* sometimes the NUL too */
}

static void run_sysfs_writer(void)
{
	struct slot *s = slot_claim("sysfs");
	struct rng r = { seed * 65537 + 3 };
	static struct sysfs_files files_now;
	static char val[2 * PATH_MAX], mutant[128], readback[8192];
	uint8_t *mutant_buf = malloc(MAX_FILE);
	unsigned long ops = 0;
	const char *path;
	size_t len;
	int fd;

	while (!stopping()) {
		if (ops++ % 64 == 0) {
			files_now.count = 0;
			list_sysfs(CEREBRO_SYSFS_DIR, 0, &files_now);
		}
		if (!files_now.count)
			break;
		path = files_now.path[below(&r, (uint32_t)files_now.count)];
		if (chance(&r, 25)) {
			begin(s, "read %s", path);
			fd = open(path, O_RDONLY);
			if (fd >= 0) {
				while (read(fd, readback, sizeof(readback)) > 0)
					;
				close(fd);
			}
			end(s);
			sh->sysfs_ops++;
			continue;
		}
		len = sysfs_value(&r, s, val, mutant_buf, mutant);
		sysfs_write(s, path, val, len);
	}
}

/* ---- the racer: module insert/remove against `unload` writes ---- */

static void run_racer(void)
{
	struct slot *s = slot_claim("racer");
	struct rng r = { seed * 257 + 5 };
	char line[80];
	int fd;

	while (!stopping()) {
		begin(s, "insmod %s", victim_ko);
		fd = open(victim_ko, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			syscall(SYS_finit_module, fd, "", 0);
			close(fd);
		}
		end(s);
		usleep(below(&r, 5000));
		if (chance(&r, 10))	/* pinned as the default model: rmmod must wait for `unload` */
			sysfs_write(s, CEREBRO_SYSFS_DIR "/model_path", victim.path, strlen(victim.path));
		if (chance(&r, 30)) {
			snprintf(line, sizeof(line), "%s\n", victim.module);
			sysfs_write(s, CEREBRO_SYSFS_DIR "/unload", line, strlen(line));
		}
		begin(s, "rmmod %s", victim.module);
		syscall(SYS_delete_module, victim.module, O_NONBLOCK);
		end(s);
		sh->racer_cycles++;
	}
}

/* SWAP points in turn at a good file, a FIFO, a directory and a device node (one rename each). */
static void swap_link(unsigned int turn)
{
	const char *targets[] = { victim.path, DIR_TMP "/fifo", DIR_TMP, DIR_TMP "/null" };

	unlink(DIR_TMP "/swap.new");
	if (symlink(targets[turn % 4], DIR_TMP "/swap.new") == 0)
		rename(DIR_TMP "/swap.new", SWAP);
}

static void run_unloader(int id)
{
	struct slot *s = slot_claim("unload");
	char line[80], attr[160], value[256];
	int n = snprintf(line, sizeof(line), "%s\n", victim.module), fd;

	snprintf(attr, sizeof(attr), CEREBRO_SYSFS_DIR "/models/%s/%s", victim.module,
		 id ? "users" : "last_error");
	for (unsigned int turn = 0; !stopping(); turn++) {
		if (id == 0)
			swap_link(turn);
		sysfs_write(s, CEREBRO_SYSFS_DIR "/unload", line, (size_t)n - (size_t)id);	/* with and without \n */
		fd = open(attr, O_RDONLY);	/* a file of the model going away */
		if (fd >= 0) {
			if (read(fd, value, sizeof(value)) < 0)
				errno = 0;
			close(fd);
		}
		sched_yield();
	}
}

/* ---- setup and the watchdog ---- */

/* Loads CHECKED once and keeps its inputs and outputs as the reference. */
static void reference_run(void)
{
	struct slot *s = slot_claim("setup");
	struct rng r = { seed + 11 };
	uint32_t handle, i;
	int fd = open(CEREBRO_DEVICE_PATH, O_RDWR), err;

	if (fd < 0) {
		perror(CEREBRO_DEVICE_PATH);
		exit(2);
	}
	err = load_model(s, fd, &victim, &handle);
	if (!err)
		err = model_info(s, fd, handle, &victim);
	if (!err)
		err = load_model(s, fd, &checked, &handle);
	if (!err)
		err = model_info(s, fd, handle, &checked);
	if (!err && (checked.nin > MAX_IO || checked.nout > MAX_IO || victim.nin > MAX_IO || victim.nout > MAX_IO))
		err = E2BIG;
	for (i = 0; !err && i < CEREBRO_MAX_BUFFERS; i++) {
		if (checked.nbytes[i] > MAX_TENSOR || victim.nbytes[i] > MAX_TENSOR)
			err = EFBIG;
	}
	for (i = 0; !err && i < checked.nin; i++) {
		checked.inputs[i] = malloc(checked.nbytes[i]);
		fill_random(&r, checked.inputs[i], checked.nbytes[i]);
	}
	for (i = 0; !err && i < checked.nout; i++)
		checked.outputs[i] = malloc(checked.nbytes[checked.nin + i]);
	if (!err)
		err = run_io(s, fd, CEREBRO_IOC_EXECUTE_MODEL, handle, checked.inputs, checked.nbytes, checked.nin);
	if (!err)
		err = run_io(s, fd, CEREBRO_IOC_GET_RESULTS, handle, checked.outputs, checked.nbytes + checked.nin,
			     checked.nout);
	close(fd);
	if (err) {
		report("FAIL setup: the two models do not load and run: %s", strerror(err));
		exit(1);
	}
}

static void make_files(void)
{
	int fd;

	mkdir(DIR_TMP, 0755);
	mkfifo(DIR_TMP "/fifo", 0644);
	mknod(DIR_TMP "/null", S_IFCHR | 0666, makedev(1, 3));
	mknod(DIR_TMP "/zero", S_IFCHR | 0666, makedev(1, 5));
	symlink(DIR_TMP "/loop", DIR_TMP "/loop");
	symlink(DIR_TMP "/fifo", DIR_TMP "/to-fifo");
	fd = open(DIR_TMP "/huge.cbx", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, good_data[0], good_size[0]) < 0 || ftruncate(fd, (off_t)HUGE_SIZE) < 0)
		perror(DIR_TMP "/huge.cbx");
	if (fd >= 0)
		close(fd);
	memset(long_path, 'a', sizeof(long_path) - 1);
	for (size_t i = 0; i < sizeof(long_path) - 1; i += 200)
		long_path[i] = '/';
}

/* A worker process; @nice < 0 for the racers, whose windows are short and need the CPU. */
static pid_t spawn(void (*fn)(int), int arg, int nice)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpriority(PRIO_PROCESS, 0, nice);
		fn(arg);
		_exit(0);
	}
	return pid;
}

static void racer_entry(int arg)
{
	(void)arg;
	run_racer();
}

static void sysfs_entry(int arg)
{
	(void)arg;
	run_sysfs_writer();
}

/* The first line of /proc/TID/FILE, for hang reports ("?" if unreadable). */
static const char *proc_line(int tid, const char *file, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", tid, file);
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return n > 0 ? buf : "?";
}

/* Reports every call running longer than HANG_MS, once each; returns how many are running. */
static int check_hangs(int *hangs)
{
	char wchan[64], stack[128];
	long now = now_ms();
	int i, busy = 0;

	for (i = 0; i < sh->next_slot; i++) {
		struct slot *s = &sh->slots[i];
		long since = s->since_ms;

		if (!since)
			continue;
		busy++;
		if (now - since <= HANG_MS || s->reported)
			continue;
		s->reported = 1;
		(*hangs)++;
		report("HANG %s thread %d stuck %.1f s (wchan %s, stack %s) in: %s", s->role, s->tid,
		       (now - since) / 1000.0, proc_line(s->tid, "wchan", wchan, sizeof(wchan)),
		       proc_line(s->tid, "stack", stack, sizeof(stack)), s->op);
	}
	return busy;
}

/* Reaps exited workers (one that died by itself is a failure); returns how many are alive. */
static int reap(pid_t *pids, int npids, int killed)
{
	int i, alive = 0, status;

	for (i = 0; i < npids; i++) {
		if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
			if (!killed && (WIFSIGNALED(status) || WEXITSTATUS(status)))
				fail("worker process %d died (signal %d, exit %d)", pids[i],
				     WIFSIGNALED(status) ? WTERMSIG(status) : 0, WEXITSTATUS(status));
			pids[i] = 0;
		}
		alive += pids[i] > 0;
	}
	return alive;
}

static void progress(long start)
{
	printf("kfuzz: %5.1f s ioctls %ld sysfs %ld mutants %ld checked runs %ld racer %ld failures %ld\n",
	       (now_ms() - start) / 1000.0, (long)sh->ioctls, (long)sh->sysfs_ops, (long)sh->mutants,
	       (long)sh->checked_runs, (long)sh->racer_cycles, (long)sh->failures);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	pid_t pids[16];
	int npids = 0, hangs = 0, i;
	long start, budget_ms, last_report, stop_ms, elapsed_ms;

	if (argc != 7) {
		fprintf(stderr, "usage: kfuzz SEED IOCTLS SECONDS VICTIM.cbx VICTIM.ko CHECKED.cbx\n");
		return 2;
	}
	seed = strtoul(argv[1], NULL, 0);
	ioctl_limit = strtol(argv[2], NULL, 0);
	budget_ms = (long)(atof(argv[3]) * 1000);
	victim.path = argv[4];
	victim_ko = argv[5];
	checked.path = argv[6];
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	good_data[0] = read_file(victim.path, &good_size[0]);
	good_data[1] = read_file(checked.path, &good_size[1]);
	find_layout(good_data[0], good_size[0], &good_layout[0]);
	find_layout(good_data[1], good_size[1], &good_layout[1]);
	make_files();
	reference_run();
	printf("kfuzz: seed %lu, up to %ld ioctls in %.0f s; victim %s, checked %s\n", seed, ioctl_limit,
	       budget_ms / 1000.0, victim.module, checked.module);
	shared_fd = open(CEREBRO_DEVICE_PATH, O_RDWR);

	start = last_report = stop_ms = now_ms();
	for (i = 0; i < 2; i++)
		pids[npids++] = spawn(run_ioctl_fuzzer, i, 0);
	for (i = 0; i < 2; i++)
		pids[npids++] = spawn(run_executor, i, 0);
	pids[npids++] = spawn(sysfs_entry, 0, 0);
	pids[npids++] = spawn(racer_entry, 0, RACER_NICE);
	for (i = 0; i < 2; i++)
		pids[npids++] = spawn(run_unloader, i, RACER_NICE);

	/* run; after the stop, give a call in progress HANG_MS to finish before calling it a hang */
	while (reap(pids, npids, 0) && (!stopping() || now_ms() - stop_ms <= HANG_MS + 500)) {
		usleep(100000);
		check_hangs(&hangs);
		if (now_ms() - start >= budget_ms)
			sh->stop = 1;
		if (!stopping())
			stop_ms = now_ms();
		if (now_ms() - last_report >= 5000) {
			progress(start);
			last_report = now_ms();
		}
	}
	elapsed_ms = stop_ms - start;
	sh->stop = 1;
	for (i = 0; i < npids; i++) {
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	}
	for (i = 0; i < 30 && reap(pids, npids, 1); i++)
		usleep(100000);
	for (i = 0; i < npids; i++) {
		if (pids[i] > 0)
			report("HANG worker process %d survives SIGKILL", pids[i]);
	}
	progress(start);
	report("done seed=%lu ioctls=%ld seconds=%.1f ioctls_per_s=%.0f sysfs=%ld mutants=%ld checked_runs=%ld "
	       "racer_cycles=%ld failures=%ld hangs=%d", seed, (long)sh->ioctls, elapsed_ms / 1000.0,
	       sh->ioctls * 1000.0 / (elapsed_ms ? elapsed_ms : 1), (long)sh->sysfs_ops, (long)sh->mutants,
	       (long)sh->checked_runs, (long)sh->racer_cycles, (long)sh->failures, hangs);
	return sh->failures || hangs ? 1 : 0;
}
