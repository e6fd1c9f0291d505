// SPDX-License-Identifier: MIT
/*
 * The FILE* a Windows program holds for a file it opened. The program's own code reads and writes
 * inside it: MinGW's _lock_file (linked into every MinGW program, used by its printf and stdio)
 * enters the CRITICAL_SECTION that follows msvcrt's FILE (`_FILEX`), so the program gets this
 * msvcrt-shaped block, never glibc's FILE, and the shims map it back (host_file).
 */
#include <stdlib.h>
#include <string.h>

#include "shims.h"

#define GUEST_FILE_MAGIC 0x46455543u	/* "CUEF": a block from guest_file() */

struct guest_file {
	uint8_t ms_file[sizeof(void *) == 8 ? 48 : 32];	/* msvcrt's FILE: MinGW sets _flag bits in it */
	uint8_t lock[sizeof(void *) == 8 ? 40 : 24];	/* a CRITICAL_SECTION (threads.c's shims) */
	FILE *host;
	uint32_t magic;
};

typedef STDCALL void critical_section_fn(void *cs);

static critical_section_fn *section_shim(const char *name)
{
	critical_section_fn *fn = (critical_section_fn *)find_shim("kernel32.dll", name);

	if (!fn)
		die(126, "no %s shim for FILE locks", name);
	return fn;
}

void *guest_file(FILE *host)
{
	struct guest_file *g;

	if (!host)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		die(126, "out of memory");
	section_shim("InitializeCriticalSection")(g->lock);
	g->host = host;
	g->magic = GUEST_FILE_MAGIC;
	return g;
}

FILE *guest_file_host(void *f)
{
	struct guest_file *g = f;

	if (g->magic != GUEST_FILE_MAGIC)
		die(126, "a FILE* the program did not get from fopen was passed to a stdio function");
	return g->host;
}

FILE *guest_file_release(void *f)
{
	struct guest_file *g = f;
	FILE *host = guest_file_host(f);

	section_shim("DeleteCriticalSection")(g->lock);
	g->magic = 0;
	free(g);
	return host;
}
