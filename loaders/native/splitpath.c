// SPDX-License-Identifier: MIT
/*
 * msvcrt's _splitpath and _makepath (setuptools' cli.exe finds python.exe with them). The caller's
 * buffers are the documented fixed sizes; a part that does not fit ends the program with one line,
 * as the CRT's invalid-parameter handler ends it, rather than writing past them.
 */
#include <string.h>

#include "shims.h"

enum { WIN_MAX_PATH = 260, MAX_DRIVE = 3, MAX_DIR = 256, MAX_FNAME = 256, MAX_EXT = 256 };

/* Copies len bytes of src and a NUL to out (when out is wanted), which holds size bytes. */
static void put_part(char *out, size_t size, const char *src, size_t len, const char *what)
{
	if (!out)
		return;
	if (len >= size)
		die(126, "_splitpath: the %s part (%zu bytes) does not fit its %zu-byte buffer", what, len, size);
	memcpy(out, src, len);
	out[len] = 0;
}

static WINAPI void s__splitpath(const char *path, char *drive, char *dir, char *fname, char *ext)
{
	const char *base, *dot;

	if (!path)
		die(126, "_splitpath: NULL path");
	size_t drive_len = path[0] && path[1] == ':' ? 2 : 0;

	put_part(drive, MAX_DRIVE, path, drive_len, "drive");
	path += drive_len;
	base = path;
	for (const char *p = path; *p; p++)
		if (*p == '\\' || *p == '/')
			base = p + 1;
	put_part(dir, MAX_DIR, path, (size_t)(base - path), "directory");
	dot = strrchr(base, '.');
	if (!dot)
		dot = base + strlen(base);
	put_part(fname, MAX_FNAME, base, (size_t)(dot - base), "file name");
	put_part(ext, MAX_EXT, dot, strlen(dot), "extension");
}

/* Appends len bytes of src at *at in out (MAX_PATH bytes with the NUL). */
static void append(char *out, size_t *at, const char *src, size_t len)
{
	if (*at + len >= WIN_MAX_PATH)
		die(126, "_makepath: the path is longer than MAX_PATH (%d)", WIN_MAX_PATH);
	memcpy(out + *at, src, len);
	*at += len;
	out[*at] = 0;
}

static WINAPI void s__makepath(char *path, const char *drive, const char *dir, const char *fname, const char *ext)
{
	size_t at = 0, len;

	if (!path)
		die(126, "_makepath: NULL path");
	path[0] = 0;
	if (drive && *drive) {
		append(path, &at, drive, 1);
		append(path, &at, ":", 1);
	}
	if (dir && (len = strlen(dir))) {
		append(path, &at, dir, len);
		if (dir[len - 1] != '\\' && dir[len - 1] != '/')
			append(path, &at, "\\", 1);
	}
	if (fname)
		append(path, &at, fname, strlen(fname));
	if (ext && *ext) {
		if (*ext != '.')
			append(path, &at, ".", 1);
		append(path, &at, ext, strlen(ext));
	}
}

const struct shim splitpath_shims[] = {
	M("_splitpath", s__splitpath), M("_makepath", s__makepath),
};

SHIM_TABLE_SIZE(splitpath);
