// SPDX-License-Identifier: MIT
/*
 * GetModuleHandle/LoadLibrary/GetProcAddress for the DLLs the loader has shims for: a program that
 * looks a function up at run time gets the same shim an import would bind. No DLL file is ever
 * loaded: any other name fails with ERROR_MOD_NOT_FOUND, as a missing DLL does on Windows.
 */
#define _GNU_SOURCE
#include <string.h>
#include <strings.h>

#include "shims.h"

/* Module handles: addresses of these records (readable, distinct, never the image). */
static const struct module {
	char dll[16];
} modules[] = { { "kernel32.dll" }, { "msvcrt.dll" } };

enum { ERROR_MOD_NOT_FOUND = 126, ERROR_PROC_NOT_FOUND = 127, ERROR_INVALID_HANDLE = 6 };

#define MAX_MODULE_NAME 260	/* MAX_PATH */

/* The record for a DLL name ("C:\\x\\KERNEL32.DLL", "kernel32", a UCRT set name), or NULL. */
static const struct module *module_named(const char *name)
{
	char dll[MAX_MODULE_NAME + 5];
	const char *base = name;

	for (const char *p = name; *p && p - name < MAX_MODULE_NAME; p++)
		if (*p == '\\' || *p == '/')
			base = p + 1;
	size_t len = strnlen(base, MAX_MODULE_NAME);
	memcpy(dll, base, len);
	dll[len] = 0;
	if (!strchr(dll, '.'))
		memcpy(dll + len, ".dll", 5);	/* LoadLibrary's rule: no extension means .dll */
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++)
		if (!strcasecmp(shim_dll(dll), modules[i].dll))
			return &modules[i];
	return NULL;
}

static void *module_handle(const char *name)
{
	const struct module *m;

	if (!name)
		return loaded_image();
	m = module_named(name);
	if (!m)
		g_last_error = ERROR_MOD_NOT_FOUND;
	return (void *)m;
}

/* A UTF-16 name as ASCII ('?' for the rest), at most MAX_MODULE_NAME characters. */
static const char *narrow(const uint16_t *w, char *out)
{
	size_t i = 0;

	if (!w)
		return NULL;
	for (; i < MAX_MODULE_NAME && w[i]; i++)
		out[i] = w[i] < 128 ? (char)w[i] : '?';
	out[i] = 0;
	return out;
}

static STDCALL void *s_GetModuleHandleA(const char *name) { return module_handle(name); }
static STDCALL void *s_LoadLibraryA(const char *name) { return name ? module_handle(name) : NULL; }

static STDCALL void *s_LoadLibraryExA(const char *name, void *file, uint32_t flags)
{
	(void)file; (void)flags;
	return s_LoadLibraryA(name);
}

static STDCALL void *s_GetModuleHandleW(const uint16_t *name)
{
	char buf[MAX_MODULE_NAME + 1];

	return module_handle(narrow(name, buf));
}

static STDCALL void *s_LoadLibraryW(const uint16_t *name)
{
	char buf[MAX_MODULE_NAME + 1];

	return name ? module_handle(narrow(name, buf)) : NULL;
}

static STDCALL void *s_LoadLibraryExW(const uint16_t *name, void *file, uint32_t flags)
{
	(void)file; (void)flags;
	return s_LoadLibraryW(name);
}

static STDCALL int s_FreeLibrary(void *h) { (void)h; return 1; }	/* nothing was loaded */

/* Functions of the shim modules by name; the program's own exports and ordinals are not looked up. */
static STDCALL void *s_GetProcAddress(void *h, const char *name)
{
	const struct module *m = h;
	void *fn;

	if (m < modules || m >= modules + sizeof(modules) / sizeof(modules[0])) {
		g_last_error = h == loaded_image() ? ERROR_PROC_NOT_FOUND : ERROR_INVALID_HANDLE;
		return NULL;
	}
	if ((uintptr_t)name < 0x10000) {	/* by ordinal */
		g_last_error = ERROR_PROC_NOT_FOUND;
		return NULL;
	}
	fn = find_shim(m->dll, name);
	if (!fn)
		g_last_error = ERROR_PROC_NOT_FOUND;
	return fn;
}

const struct shim module_shims[] = {
	K("GetModuleHandleA", s_GetModuleHandleA), K("GetModuleHandleW", s_GetModuleHandleW),
	K("LoadLibraryA", s_LoadLibraryA), K("LoadLibraryW", s_LoadLibraryW), K("LoadLibraryExA", s_LoadLibraryExA),
	K("LoadLibraryExW", s_LoadLibraryExW), K("FreeLibrary", s_FreeLibrary), K("GetProcAddress", s_GetProcAddress),
};

SHIM_TABLE_SIZE(module);
