// SPDX-License-Identifier: MIT
/*
 * The fault reporter of cerebro-peload: a signal in the loaded program becomes one line on
 * stderr (signal, faulting address, module+offset of the instruction) and exit EXIT_FAULT.
 *
 * Everything here runs in a signal handler: no stdio, no malloc, only write/open/read/_exit.
 * What the handler needs is kept on a page made read-only once set, so a program that
 * scribbles over the loader's data cannot turn its report into a second, silent fault.
 */
#define _GNU_SOURCE
#include "fault_report.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define PAGE 4096u
#define ERR_WRITE 0x2		/* x86 page-fault error code bits */
#define ERR_FETCH 0x10
#ifdef __x86_64__
#define REG_PC REG_RIP
#else
#define REG_PC REG_EIP
#endif

static union {
	struct {
		char name[256];
		uintptr_t base;
		size_t size;
	};
	char page[PAGE];	/* a page of its own, so it can be made read-only */
} ctx __attribute__((aligned(PAGE)));

static char alt_stack[64 * 1024] __attribute__((aligned(16)));
static char maps[64 * 1024];	/* /proc/self/maps, read when a pc lies outside the image */
static volatile sig_atomic_t reporting;

struct line {
	char buf[768];
	size_t len;
};

static void put(struct line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

static void put_hex(struct line *l, uint64_t v)
{
	char digits[17];
	int n = 0;

	do
		digits[n++] = "0123456789abcdef"[v & 15];
	while (v >>= 4);
	put(l, "0x");
	while (n) {
		char c[2] = { digits[--n], 0 };
		put(l, c);
	}
}

static uint64_t parse_hex(const char **p)
{
	uint64_t v = 0;

	for (;; (*p)++) {
		char c = **p;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return v;
		v = v << 4 | (uint64_t)d;
	}
}

/* "file+offset" of the mapping holding pc, from /proc/self/maps; "?" when none is found. */
static void put_mapping(struct line *l, uintptr_t pc)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t got;

	if (fd >= 0) {
		while (len < sizeof(maps) - 1 && (got = read(fd, maps + len, sizeof(maps) - 1 - len)) > 0)
			len += (size_t)got;
		close(fd);
	}
	maps[len] = 0;
	for (const char *p = maps; *p;) {
		const char *eol = strchrnul(p, '\n');
		uint64_t start = parse_hex(&p), end, offset;

		p += *p == '-';
		end = parse_hex(&p);
		p += *p == ' ' ? 6 : 0;		/* " rwxp " */
		offset = parse_hex(&p);
		if (start <= pc && pc < end) {
			const char *path = memchr(p, '/', eol - p), *base = path;
			char name[256];
			size_t n;

			for (const char *q = path; q && q < eol; q++)
				if (*q == '/')
					base = q + 1;
			if (!path)
				break;
			n = (size_t)(eol - base) < sizeof(name) - 1 ? (size_t)(eol - base) : sizeof(name) - 1;
			memcpy(name, base, n);
			name[n] = 0;
			put(l, name);
			put(l, "+");
			put_hex(l, pc - start + offset);
			return;
		}
		p = *eol ? eol + 1 : eol;
	}
	put(l, "?");
}

static void put_memory_fault(struct line *l, const siginfo_t *si, const ucontext_t *uc)
{
	uint64_t err = (uint64_t)uc->uc_mcontext.gregs[REG_ERR];

	if (si->si_code == SI_KERNEL) {
		put(l, "general protection fault");	/* no address: non-canonical or privileged */
		return;
	}
	put(l, err & ERR_FETCH ? "execution of " : err & ERR_WRITE ? "write to " : "read of ");
	put(l, si->si_code == SEGV_ACCERR ? "protected address " : "unmapped address ");
	put_hex(l, (uintptr_t)si->si_addr);
}

static void put_cause(struct line *l, int sig, const siginfo_t *si, const ucontext_t *uc)
{
	switch (sig) {
	case SIGSEGV:
		put(l, "SIGSEGV (");
		put_memory_fault(l, si, uc);
		break;
	case SIGBUS:
		put(l, "SIGBUS (bus error at address ");
		put_hex(l, (uintptr_t)si->si_addr);
		break;
	case SIGILL:
		put(l, "SIGILL (illegal instruction at address ");
		put_hex(l, (uintptr_t)si->si_addr);
		break;
	case SIGFPE:
		put(l, si->si_code == FPE_INTDIV ? "SIGFPE (integer divide by zero" :
		       si->si_code == FPE_INTOVF ? "SIGFPE (integer overflow" : "SIGFPE (arithmetic error");
		break;
	case SIGTRAP:
		put(l, "SIGTRAP (breakpoint");
		break;
	default:
		put(l, "SIGABRT (abort");
		break;
	}
	put(l, ")");
}

static void on_fault(int sig, siginfo_t *si, void *context)
{
	const ucontext_t *uc = context;
	uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_PC];
	struct line l = { .len = 0 };

	if (reporting) {	/* a fault while reporting: say so, never loop */
		static const char msg[] = "cerebro-peload: fault while reporting a fault\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(EXIT_FAULT);
		_exit(EXIT_FAULT);
	}
	reporting = 1;
	put(&l, "cerebro-peload: ");
	put(&l, ctx.name);
	put(&l, " crashed: ");
	put_cause(&l, sig, si, uc);
	put(&l, " at ");
	if (pc - ctx.base < ctx.size) {
		put(&l, ctx.name);
		put(&l, "+");
		put_hex(&l, pc - ctx.base);
	} else {
		put_mapping(&l, pc);
	}
	put(&l, " (pc ");
	put_hex(&l, pc);
	put(&l, ")\n");
	if (write(2, l.buf, l.len) < 0)
		_exit(EXIT_FAULT);
	_exit(EXIT_FAULT);
}

void fault_report_install(const char *program_name)
{
	static const int signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT };
	const char *base = strrchr(program_name, '/');
	stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof(alt_stack) };
	struct sigaction sa;

	base = base ? base + 1 : program_name;
	strncpy(ctx.name, base, sizeof(ctx.name) - 1);
	for (char *c = ctx.name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';	/* one line, whatever the file is called */
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);	/* a fault in the handler re-enters it: see reporting */
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		sigaction(signals[i], &sa, NULL);
}

void *fault_report_thread(void)
{
	stack_t ss = { .ss_sp = malloc(sizeof(alt_stack)), .ss_size = sizeof(alt_stack) };

	if (ss.ss_sp)
		sigaltstack(&ss, NULL);
	return ss.ss_sp;
}

void fault_report_thread_end(void *stack)
{
	stack_t off = { .ss_flags = SS_DISABLE };

	sigaltstack(&off, NULL);
	free(stack);
}

void fault_report_set_image(const void *base, size_t size)
{
	ctx.base = (uintptr_t)base;
	ctx.size = size;
	mprotect(&ctx, sizeof(ctx), PROT_READ);	/* best effort: a report still works without it */
}
