// SPDX-License-Identifier: MIT
/*
 * File names between Windows programs and Linux. A Windows program separates a path's parts with
 * '\\' or '/' ('\\' can never be part of a name there), so the file shims turn '\\' into '/'
 * before calling Linux; the other way, the program's own file name (GetModuleFileNameA) is its
 * absolute Linux path written with '\\' (`\tmp\lua.exe`, an absolute path on the current drive),
 * which programs split at the last '\\' (Lua finds its directory so) and which opens again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "shims.h"

const char *host_path(const char *path, char buf[PATH_MAX])
{
	size_t len;

	if (!path || !strchr(path, '\\'))
		return path;
	len = strlen(path);
	if (len >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	for (size_t i = 0; i <= len; i++)
		buf[i] = path[i] == '\\' ? '/' : path[i];
	return buf;
}

size_t windows_path(const char *path, char *buf, size_t size)
{
	char *full = realpath(path, NULL);
	const char *src = full ? full : path;
	size_t len = strlen(src), copy = len < size ? len : size ? size - 1 : 0;

	for (size_t i = 0; i < copy; i++)
		buf[i] = src[i] == '/' ? '\\' : src[i];
	if (size)
		buf[copy] = 0;
	free(full);
	return len;
}
