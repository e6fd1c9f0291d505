// SPDX-License-Identifier: MIT
/*
 * msvcrt's file and process functions that real console programs (Lua's io/os libraries, the brotli
 * tool) import beyond fopen/fread: freopen, setvbuf, tmpfile/tmpnam, remove/rename/_unlink,
 * _open/_sopen/_fdopen/_read/_close, _utime64, system/_popen, setlocale/strcoll. Windows flag and mode values are
 * translated to Linux's; Windows behaviour the program can see (rename never replaces, system
 * returns the exit code) is kept. Commands run by /bin/sh, not cmd.exe. File names go through
 * host_path (paths.c): '\\' separates their parts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

#include "shims.h"

/* ---- streams ---- */

/* freopen keeps the program's FILE*: for stdin/stdout/stderr that is msvcrt's _iob entry, not glibc's. */
static WINAPI void *s_freopen(const char *name, const char *mode, void *f)
{
	char buf[4096];

	name = host_path(name, buf);
	return name && freopen(name, mode, host_file(f)) ? f : NULL;
}

static WINAPI void s_clearerr(void *f) { clearerr(host_file(f)); }

static const struct { int win, host; } buffer_modes[] = {	/* msvcrt _IOFBF, _IOLBF, _IONBF */
	{ 0x0000, _IOFBF }, { 0x0040, _IOLBF }, { 0x0004, _IONBF },
};

static WINAPI int s_setvbuf(void *f, char *buf, int mode, size_t size)
{
	for (size_t i = 0; i < sizeof(buffer_modes) / sizeof(buffer_modes[0]); i++)
		if (buffer_modes[i].win == mode)
			return setvbuf(host_file(f), buf, buffer_modes[i].host, size);
	errno = EINVAL;
	return -1;
}

static WINAPI void *s_tmpfile(void) { return guest_file(tmpfile()); }

/*
 * tmpnam: msvcrt's L_tmpnam is 14 bytes, so the name is /tmp/sXXXXXX (13). The file is created
 * (mode 0600) so that no other process can take the name between this call and the program's
 * fopen, as Lua does with mkstemp on POSIX systems.
 */
static WINAPI char *s_tmpnam(char *buf)
{
	static __thread char own[14];
	char name[] = "/tmp/sXXXXXX";
	int fd = mkstemp(name);

	if (fd < 0)
		return NULL;
	close(fd);
	buf = buf ? buf : own;
	memcpy(buf, name, sizeof(name));
	return buf;
}

static WINAPI void *s__fdopen(int fd, const char *mode) { return guest_file(fdopen(fd, mode)); }

/* ---- files by name ---- */

/* remove is DeleteFile on Windows: files only (glibc's would remove an empty directory too). */
static WINAPI int s__unlink(const char *path)
{
	char buf[4096];

	path = host_path(path, buf);
	return path ? unlink(path) : -1;
}

/* rename on Windows never replaces an existing file (MoveFile without MOVEFILE_REPLACE_EXISTING). */
static WINAPI int s_rename(const char *from, const char *to)
{
	char from_buf[4096], to_buf[4096];

	from = host_path(from, from_buf);
	to = host_path(to, to_buf);
	return from && to ? renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) : -1;
}

/* _utime64(path, {actime, modtime} or NULL for now) */
static WINAPI int s__utime64(const char *path, const int64_t times[2])
{
	struct utimbuf t;
	char buf[4096];

	if (!(path = host_path(path, buf)))
		return -1;
	if (!times)
		return utime(path, NULL);
	t = (struct utimbuf){ .actime = (time_t)times[0], .modtime = (time_t)times[1] };
	return utime(path, &t);
}

/* msvcrt _O_* flags and what they become; text/binary, sequential/random access and the like are hints. */
static const struct { int win, host; } open_flags[] = {
	{ 0x0001, O_WRONLY }, { 0x0002, O_RDWR }, { 0x0008, O_APPEND }, { 0x0100, O_CREAT },
	{ 0x0200, O_TRUNC }, { 0x0400, O_EXCL }, { 0x0080, O_CLOEXEC },	/* _O_NOINHERIT */
	{ 0x4000, 0 }, { 0x8000, 0 }, { 0x0010, 0 }, { 0x0020, 0 }, { 0x1000, 0 },	/* text, binary, hints */
};

enum { W_S_IWRITE = 0x80 };

/* Opens like msvcrt's _sopen (sharing modes do not exist here); -1 and EINVAL for flags it lacks. */
static int win_open(const char *path, int oflag, int pmode)
{
	int flags = 0, known = 0;
	char buf[4096];

	for (size_t i = 0; i < sizeof(open_flags) / sizeof(open_flags[0]); i++)
		if (oflag & open_flags[i].win) {
			flags |= open_flags[i].host;
			known |= open_flags[i].win;
		}
	if (oflag & ~known) {	/* _O_TEMPORARY, _O_WTEXT... */
		errno = EINVAL;
		return -1;
	}
	if (!(path = host_path(path, buf)))
		return -1;
	/* Windows has one permission: read-only or not (the umask then applies, as msvcrt's _umask). */
	return open(path, flags, pmode & W_S_IWRITE ? 0666 : 0444);
}

static int sopen_args(const char *path, int oflag, const win_slot *ap)
{
	return win_open(path, oflag, oflag & 0x0100 ? (int)ap[0] : 0);	/* pmode only with _O_CREAT */
}

static WINAPI int s__sopen(const char *path, int oflag, int share, ...)
{
	(void)share;
#define CALL(ap) sopen_args(path, oflag, ap)
	return MS_VARARGS(share, CALL);
#undef CALL
}

static WINAPI int s__sopen_s(int *fd, const char *path, int oflag, int share, int pmode)
{
	(void)share;
	if (!fd || !path)
		return EINVAL;
	*fd = win_open(path, oflag, pmode);
	return *fd < 0 ? errno : 0;
}

static WINAPI int s__open(const char *path, int oflag, ...)
{
#define CALL(ap) sopen_args(path, oflag, ap)
	return MS_VARARGS(oflag, CALL);
#undef CALL
}

/* _read/_close of a descriptor _open gave: text mode is a hint here too (files hold '\n' lines). */
static WINAPI int s__read(int fd, void *buf, unsigned count)
{
	if (count > INT_MAX) {
		errno = EINVAL;
		return -1;
	}
	return (int)read(fd, buf, count);
}

static WINAPI int s__close(int fd) { return close(fd); }

/* ---- commands: the exit code, as msvcrt's system and _pclose return it ---- */

static int exit_code(int status)
{
	if (status == -1)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static WINAPI int s_system(const char *cmd)
{
	fflush(NULL);
	return cmd ? exit_code(system(cmd)) : system(NULL);
}

/* _popen's mode may carry 't' or 'b'; popen takes "r" or "w" (and 'e'). */
static WINAPI void *s__popen(const char *cmd, const char *mode)
{
	char host[3] = { 0 };
	size_t n = 0;

	for (; *mode && n < 2; mode++)
		if (*mode == 'r' || *mode == 'w')
			host[n++] = *mode;
	if (n != 1) {
		errno = EINVAL;
		return NULL;
	}
	fflush(NULL);
	return guest_file(popen(cmd, host));
}

static WINAPI int s__pclose(void *f) { return exit_code(pclose(guest_file_release(f))); }

/* ---- locale: the program's locale is always "C" (the shims' ctype, strtod and printf assume it) ---- */

static WINAPI char *s_setlocale(int category, const char *name)
{
	static char c_locale[] = "C";

	if (category < 0 || category > 5)	/* LC_ALL .. LC_TIME */
		return NULL;
	if (!name || !*name || !strcmp(name, "C") || !strcmp(name, "POSIX"))
		return c_locale;
	return NULL;
}

static WINAPI int s_strcoll(const char *a, const char *b) { return strcmp(a, b); }	/* "C" collation */

const struct shim crt_stdio_shims[] = {
	M("freopen", s_freopen), M("clearerr", s_clearerr), M("setvbuf", s_setvbuf), M("tmpfile", s_tmpfile),
	M("tmpnam", s_tmpnam), M("_fdopen", s__fdopen), M("remove", s__unlink), M("_unlink", s__unlink),
	M("rename", s_rename), M("_utime64", s__utime64), M("_sopen", s__sopen), M("_sopen_s", s__sopen_s),
	M("_open", s__open), M("_read", s__read), M("_close", s__close),
	M("system", s_system), M("_popen", s__popen), M("_pclose", s__pclose), M("setlocale", s_setlocale),
	M("strcoll", s_strcoll),
};

SHIM_TABLE_SIZE(crt_stdio);
