// SPDX-License-Identifier: MIT
/*
 * msvcrt functions only i386 programs import: stat and utime with a 32-bit time_t (Debian's i686
 * MinGW defines _USE_32BIT_TIME_T, so a program's stat() is msvcrt's _stat, utime() its _utime).
 * Each calls the 64-bit shim (found as the program would find it) and narrows or widens the
 * times; a size or time that does not fit 32 bits is EOVERFLOW, as msvcrt reports it.
 */
#include <errno.h>

#include "shims.h"

struct win_stat32 {	/* msvcrt's struct _stat32 (36 bytes) */
	uint32_t dev;
	uint16_t ino, mode;
	int16_t nlink, uid, gid, pad;
	uint32_t rdev;
	int32_t size, atime, mtime, ctime;
};

typedef WINAPI int (*stat64_fn)(const char *, struct win_stat64 *);
typedef WINAPI int (*fstat64_fn)(int, struct win_stat64 *);
typedef WINAPI int (*utime64_fn)(const char *, const int64_t *);

static int fits(int64_t v) { return v == (int32_t)v; }

static int narrow_stat(int r, const struct win_stat64 *w, struct win_stat32 *n)
{
	if (r)
		return r;
	if (!fits(w->size) || !fits(w->atime) || !fits(w->mtime) || !fits(w->ctime)) {
		errno = EOVERFLOW;
		return -1;
	}
	*n = (struct win_stat32){ .dev = w->dev, .ino = w->ino, .mode = w->mode, .nlink = w->nlink, .uid = w->uid,
				  .gid = w->gid, .rdev = w->rdev, .size = (int32_t)w->size,
				  .atime = (int32_t)w->atime, .mtime = (int32_t)w->mtime, .ctime = (int32_t)w->ctime };
	return 0;
}

static WINAPI int s__stat32(const char *path, struct win_stat32 *n)
{
	struct win_stat64 w;

	return narrow_stat(((stat64_fn)find_shim("msvcrt.dll", "_stat64"))(path, &w), &w, n);
}

static WINAPI int s__fstat32(int fd, struct win_stat32 *n)
{
	struct win_stat64 w;

	return narrow_stat(((fstat64_fn)find_shim("msvcrt.dll", "_fstat64"))(fd, &w), &w, n);
}

/* _utime32(path, {actime, modtime} or NULL for now) */
static WINAPI int s__utime32(const char *path, const int32_t *times)
{
	int64_t wide[2] = { times ? times[0] : 0, times ? times[1] : 0 };

	return ((utime64_fn)find_shim("msvcrt.dll", "_utime64"))(path, times ? wide : NULL);
}

const struct shim crt32_shims[] = {
	M("_stat", s__stat32), M("_stat32", s__stat32), M("_fstat", s__fstat32), M("_fstat32", s__fstat32),
	M("_utime", s__utime32), M("_utime32", s__utime32),
};

SHIM_TABLE_SIZE(crt32);
