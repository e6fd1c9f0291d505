// SPDX-License-Identifier: MIT
/*
 * KERNEL32 file handles and the file system for MSVC-built programs (their CRT opens files with
 * CreateFileW, ninja stats with GetFileAttributesExA and lists directories with FindFirstFileExA).
 * A handle is HANDLE_BASE + a slot of one table (never a host pointer): a file or pipe end (a
 * host descriptor, opened O_CLOEXEC so only what CreateProcess hands over reaches a child), a
 * directory listing, or an object process.c keeps (a process, a completion port). Times are
 * FILETIMEs (100 ns since 1601); attributes are DIRECTORY, READONLY (no write permission) or NORMAL.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shims.h"

#define HANDLE_BASE 0x4000	/* above the console handles (0x100-0x102), below threads.c's (0x5e000) */
#define MAX_HANDLES 4096
#define INVALID_HANDLE ((void *)(intptr_t)-1)

static struct win_object objects[MAX_HANDLES];
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;

enum { ERROR_FILE_NOT_FOUND = 2, ERROR_PATH_NOT_FOUND = 3, ERROR_TOO_MANY_OPEN_FILES = 4,
       ERROR_ACCESS_DENIED = 5, ERROR_INVALID_HANDLE = 6, ERROR_NOT_ENOUGH_MEMORY = 8,
       ERROR_NO_MORE_FILES = 18, ERROR_FILE_EXISTS = 80, ERROR_INVALID_PARAMETER = 87,
       ERROR_INSUFFICIENT_BUFFER = 122, ERROR_DIR_NOT_EMPTY = 145, ERROR_ALREADY_EXISTS = 183,
       ERROR_FILENAME_EXCED_RANGE = 206, ERROR_DIRECTORY = 267 };

/* errno of a failed file call -> the Windows error GetLastError() gives (table, not a chain) */
static const struct { int host, win; } errors[] = {
	{ ENOENT, ERROR_FILE_NOT_FOUND }, { ENOTDIR, ERROR_PATH_NOT_FOUND }, { EMFILE, ERROR_TOO_MANY_OPEN_FILES },
	{ EACCES, ERROR_ACCESS_DENIED }, { EPERM, ERROR_ACCESS_DENIED }, { EBADF, ERROR_INVALID_HANDLE },
	{ ENOMEM, ERROR_NOT_ENOUGH_MEMORY }, { EEXIST, ERROR_ALREADY_EXISTS }, { EINVAL, ERROR_INVALID_PARAMETER },
	{ ENOTEMPTY, ERROR_DIR_NOT_EMPTY }, { ENAMETOOLONG, ERROR_FILENAME_EXCED_RANGE }, { EISDIR, ERROR_ACCESS_DENIED },
};

int fail_with_errno(void)
{
	g_last_error = 31;	/* ERROR_GEN_FAILURE */
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].host == errno)
			g_last_error = errors[i].win;
	return 0;
}

void *handle_new(struct win_object o)
{
	pthread_mutex_lock(&objects_lock);
	for (size_t i = 0; i < MAX_HANDLES; i++)
		if (objects[i].kind == OBJ_FREE) {
			objects[i] = o;
			pthread_mutex_unlock(&objects_lock);
			return (void *)(uintptr_t)(HANDLE_BASE + i);
		}
	pthread_mutex_unlock(&objects_lock);
	g_last_error = ERROR_TOO_MANY_OPEN_FILES;
	return NULL;
}

void *handle_find(enum object_kind kind, int (*match)(const struct win_object *, const void *), const void *arg)
{
	void *h = NULL;

	pthread_mutex_lock(&objects_lock);
	for (size_t i = 0; i < MAX_HANDLES && !h; i++)
		if (objects[i].kind == kind && match(&objects[i], arg))
			h = (void *)(uintptr_t)(HANDLE_BASE + i);
	pthread_mutex_unlock(&objects_lock);
	return h;
}

enum object_kind handle_kind(void *h)
{
	uintptr_t i = (uintptr_t)h - HANDLE_BASE;

	return (uintptr_t)h >= HANDLE_BASE && i < MAX_HANDLES ? objects[i].kind : OBJ_FREE;
}

struct win_object *handle_object(void *h, enum object_kind kind)
{
	uintptr_t i = (uintptr_t)h - HANDLE_BASE;

	if ((uintptr_t)h < HANDLE_BASE || i >= MAX_HANDLES || objects[i].kind == OBJ_FREE ||
	    (kind != OBJ_ANY && objects[i].kind != kind)) {
		g_last_error = ERROR_INVALID_HANDLE;
		return NULL;
	}
	return &objects[i];
}

int win_handle_fd(void *h)
{
	intptr_t v = (intptr_t)h;
	struct win_object *o;

	if (v >= 0x100 && v <= 0x102)	/* GetStdHandle's */
		return (int)(v - 0x100);
	o = handle_object(h, OBJ_ANY);
	return o && o->fd >= 0 ? o->fd : -1;
}

int win_handle_close(void *h)
{
	struct win_object *o = handle_object(h, OBJ_ANY);

	if (!o)
		return 0;
	if (o->fd >= 0)
		close(o->fd);
	if (o->dir)
		closedir(o->dir);
	free(o->data);
	*o = (struct win_object){ 0 };
	return 1;
}

/* ---- names: '\\' or '/' between parts (paths.c); NUL is /dev/null ---- */

static const char *file_name(const char *name, char buf[PATH_MAX])
{
	const char *p = host_path(name, buf);

	if (!p)
		fail_with_errno();
	else if (!strcasecmp(p, "NUL"))
		p = "/dev/null";
	return p;
}

/* A UTF-16 name as bytes (each unit below 256), NULL with an error when it is too long or not. */
static const char *narrow_name(const uint16_t *w, char out[PATH_MAX])
{
	size_t i;

	for (i = 0; w[i]; i++) {
		if (i + 1 >= PATH_MAX || w[i] > 255) {
			g_last_error = i + 1 >= PATH_MAX ? ERROR_FILENAME_EXCED_RANGE : ERROR_PATH_NOT_FOUND;
			return NULL;
		}
		out[i] = (char)w[i];
	}
	out[i] = 0;
	return out;
}

/* ---- CreateFile ---- */

#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define FILE_APPEND_DATA 0x4u
enum { CREATE_NEW = 1, CREATE_ALWAYS, OPEN_EXISTING, OPEN_ALWAYS, TRUNCATE_EXISTING };

static void *open_file(const char *name, uint32_t access, uint32_t disposition)
{
	static const int create_flags[] = { [CREATE_NEW] = O_CREAT | O_EXCL, [CREATE_ALWAYS] = O_CREAT | O_TRUNC,
					    [OPEN_EXISTING] = 0, [OPEN_ALWAYS] = O_CREAT, [TRUNCATE_EXISTING] = O_TRUNC };
	char buf[PATH_MAX];
	const char *path = file_name(name, buf);
	int flags, fd, existed;
	struct stat st;
	void *h;

	if (!path)
		return INVALID_HANDLE;
	if (disposition < CREATE_NEW || disposition > TRUNCATE_EXISTING) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return INVALID_HANDLE;
	}
	if (!strncmp(path, "//./pipe/", 9))
		return pipe_client(path + 9, access);
	flags = (access & (GENERIC_WRITE | FILE_APPEND_DATA)) ? (access & GENERIC_READ ? O_RDWR : O_WRONLY) : O_RDONLY;
	existed = !stat(path, &st);
	fd = open(path, flags | create_flags[disposition] | O_CLOEXEC, 0666);
	if (fd < 0 && errno == EISDIR)	/* a directory opens for its attributes (FILE_FLAG_BACKUP_SEMANTICS) */
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == EEXIST)
			errno = 0, g_last_error = ERROR_FILE_EXISTS;
		else
			fail_with_errno();
		return INVALID_HANDLE;
	}
	h = handle_new((struct win_object){ .kind = OBJ_FILE, .fd = fd });
	if (!h) {
		close(fd);
		return INVALID_HANDLE;
	}
	/* CREATE_ALWAYS and OPEN_ALWAYS succeed with ERROR_ALREADY_EXISTS when the file was there */
	g_last_error = existed && (disposition == CREATE_ALWAYS || disposition == OPEN_ALWAYS) ? ERROR_ALREADY_EXISTS : 0;
	return h;
}

static STDCALL void *s_CreateFileA(const char *name, uint32_t access, uint32_t share, void *security,
				   uint32_t disposition, uint32_t flags, void *template_file)
{
	(void)share; (void)security; (void)flags; (void)template_file;
	return open_file(name, access, disposition);
}

static STDCALL void *s_CreateFileW(const uint16_t *wname, uint32_t access, uint32_t share, void *security,
				   uint32_t disposition, uint32_t flags, void *template_file)
{
	char buf[PATH_MAX];
	const char *name = narrow_name(wname, buf);

	(void)share; (void)security; (void)flags; (void)template_file;
	return name ? open_file(name, access, disposition) : INVALID_HANDLE;
}

enum { FILE_TYPE_UNKNOWN, FILE_TYPE_DISK, FILE_TYPE_CHAR, FILE_TYPE_PIPE };

static STDCALL uint32_t s_GetFileType(void *h)
{
	int fd = win_handle_fd(h);
	struct stat st;

	if (fd < 0 || fstat(fd, &st)) {
		g_last_error = ERROR_INVALID_HANDLE;
		return FILE_TYPE_UNKNOWN;
	}
	g_last_error = 0;
	return S_ISCHR(st.st_mode) ? FILE_TYPE_CHAR : S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ? FILE_TYPE_PIPE :
	       FILE_TYPE_DISK;
}

static STDCALL int s_GetFileSizeEx(void *h, int64_t *size)
{
	struct stat st;
	int fd = win_handle_fd(h);

	if (fd < 0 || fstat(fd, &st))
		return fail_with_errno();
	*size = st.st_size;
	return 1;
}

static STDCALL int s_SetFilePointerEx(void *h, int64_t distance, int64_t *now, uint32_t method)
{
	int fd = win_handle_fd(h);
	off_t r;

	if (method > 2) {	/* FILE_BEGIN, FILE_CURRENT, FILE_END = SEEK_SET, SEEK_CUR, SEEK_END */
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	if (fd < 0 || (r = lseek(fd, distance, (int)method)) < 0)
		return fail_with_errno();
	if (now)
		*now = r;
	return 1;
}

static STDCALL int s_SetEndOfFile(void *h)
{
	int fd = win_handle_fd(h);
	off_t at;

	if (fd < 0 || (at = lseek(fd, 0, SEEK_CUR)) < 0 || ftruncate(fd, at))
		return fail_with_errno();
	return 1;
}

static STDCALL int s_FlushFileBuffers(void *h)
{
	int fd = win_handle_fd(h);

	if (fd < 0 || (fsync(fd) && errno != EINVAL && errno != EROFS))
		return fail_with_errno();
	return 1;
}

/* ---- the file system ---- */

typedef int (*path_op)(const char *);

static int on_path(const char *name, path_op op)
{
	char buf[PATH_MAX];
	const char *path = file_name(name, buf);

	if (!path || op(path))
		return path ? fail_with_errno() : 0;
	return 1;
}

static int on_wide_path(const uint16_t *wname, path_op op)
{
	char buf[PATH_MAX];
	const char *name = narrow_name(wname, buf);

	return name && on_path(name, op);
}

static int make_dir(const char *p) { return mkdir(p, 0777); }

static STDCALL int s_DeleteFileA(const char *name) { return on_path(name, unlink); }
static STDCALL int s_DeleteFileW(const uint16_t *name) { return on_wide_path(name, unlink); }
static STDCALL int s_RemoveDirectoryA(const char *name) { return on_path(name, rmdir); }
static STDCALL int s_CreateDirectoryW(const uint16_t *name, void *security) { (void)security; return on_wide_path(name, make_dir); }
static STDCALL int s_SetCurrentDirectoryW(const uint16_t *name) { return on_wide_path(name, chdir); }

#define MOVEFILE_REPLACE_EXISTING 0x1

static STDCALL int s_MoveFileExW(const uint16_t *wfrom, const uint16_t *wto, uint32_t flags)
{
	char b1[PATH_MAX], b2[PATH_MAX], b3[PATH_MAX], b4[PATH_MAX];
	const char *from = narrow_name(wfrom, b1), *to = wto ? narrow_name(wto, b2) : NULL;

	if (!from || !to || !(from = file_name(from, b3)) || !(to = file_name(to, b4)))
		return 0;
	if (!(flags & MOVEFILE_REPLACE_EXISTING) && !access(to, F_OK)) {
		g_last_error = ERROR_ALREADY_EXISTS;
		return 0;
	}
	return rename(from, to) ? fail_with_errno() : 1;
}

enum { ATTR_READONLY = 0x1, ATTR_DIRECTORY = 0x10, ATTR_NORMAL = 0x80 };

static uint32_t attributes(const struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		return ATTR_DIRECTORY;
	return st->st_mode & 0222 ? ATTR_NORMAL : ATTR_READONLY;
}

static void put_filetime(uint8_t *at, const struct timespec *t)
{
	uint64_t ft = ((uint64_t)t->tv_sec + 11644473600ull) * 10000000ull + (uint64_t)t->tv_nsec / 100;

	memcpy(at, &ft, 8);	/* FILETIME: low then high 32 bits */
}

/* WIN32_FILE_ATTRIBUTE_DATA's layout, also the start of WIN32_FIND_DATA (36 bytes). */
static void put_file_data(uint8_t *d, const struct stat *st)
{
	uint32_t attr = attributes(st), high = (uint32_t)((uint64_t)st->st_size >> 32), low = (uint32_t)st->st_size;

	memcpy(d, &attr, 4);
	put_filetime(d + 4, &st->st_ctim);
	put_filetime(d + 12, &st->st_atim);
	put_filetime(d + 20, &st->st_mtim);
	memcpy(d + 28, &high, 4);
	memcpy(d + 32, &low, 4);
}

static STDCALL uint32_t s_GetFileAttributesA(const char *name)
{
	char buf[PATH_MAX];
	const char *path = file_name(name, buf);
	struct stat st;

	if (!path || stat(path, &st))
		return path ? (fail_with_errno(), 0xffffffffu) : 0xffffffffu;	/* INVALID_FILE_ATTRIBUTES */
	return attributes(&st);
}

static STDCALL int s_GetFileAttributesExA(const char *name, uint32_t level, uint8_t *data)
{
	char buf[PATH_MAX];
	const char *path = file_name(name, buf);
	struct stat st;

	if (level != 0) {	/* GetFileExInfoStandard */
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	if (!path || stat(path, &st))
		return path ? fail_with_errno() : 0;
	put_file_data(data, &st);
	return 1;
}

/* READONLY clears the write permissions, anything else restores the owner's. */
static STDCALL int s_SetFileAttributesA(const char *name, uint32_t attr)
{
	char buf[PATH_MAX];
	const char *path = file_name(name, buf);
	struct stat st;

	if (!path || stat(path, &st))
		return path ? fail_with_errno() : 0;
	mode_t mode = attr & ATTR_READONLY ? st.st_mode & ~0222u : st.st_mode | 0200;
	return chmod(path, mode & 07777) ? fail_with_errno() : 1;
}

/* ---- directory listings: "DIR\\*" (only a trailing "*" pattern) ---- */

#define FIND_NAME_OFFSET 44	/* cFileName in WIN32_FIND_DATA{A,W} */
#define FIND_SIZE_A 320
#define FIND_SIZE_W 592

/* The next entry into data (ANSI or wide), 0 with ERROR_NO_MORE_FILES at the end. */
static int next_entry(struct win_object *o, uint8_t *data, int wide)
{
	struct dirent *e;
	struct stat st;
	size_t len;

	errno = 0;
	while ((e = readdir(o->dir))) {
		len = strlen(e->d_name);
		if (len < 260 && !fstatat(dirfd(o->dir), e->d_name, &st, 0))
			break;	/* an entry that vanished or that a MAX_PATH name cannot hold is skipped */
	}
	if (!e) {
		g_last_error = errno ? ERROR_INVALID_HANDLE : ERROR_NO_MORE_FILES;
		return 0;
	}
	memset(data, 0, wide ? FIND_SIZE_W : FIND_SIZE_A);
	put_file_data(data, &st);
	for (size_t i = 0; i <= len; i++) {
		if (wide) {
			uint16_t c = (uint8_t)e->d_name[i];

			memcpy(data + FIND_NAME_OFFSET + 2 * i, &c, 2);
		} else {
			data[FIND_NAME_OFFSET + i] = (uint8_t)e->d_name[i];
		}
	}
	return 1;
}

static void *find_first(const char *pattern, uint8_t *data, int wide)
{
	char buf[PATH_MAX], dir[PATH_MAX];
	const char *path = file_name(pattern, buf);
	size_t len;
	DIR *d;
	void *h;

	if (!path)
		return INVALID_HANDLE;
	len = strlen(path);
	if (len < 1 || path[len - 1] != '*' || (len > 1 && path[len - 2] != '/'))
		die(126, "KERNEL32!FindFirstFileEx: only \"DIR\\*\" patterns are implemented, not \"%.200s\"", pattern);
	memcpy(dir, path, len - 1);
	dir[len - 1] = 0;
	if (!(d = opendir(len > 1 ? dir : "."))) {
		fail_with_errno();
		if (g_last_error == ERROR_FILE_NOT_FOUND)
			g_last_error = ERROR_PATH_NOT_FOUND;
		return INVALID_HANDLE;
	}
	if (!(h = handle_new((struct win_object){ .kind = OBJ_FIND, .fd = -1, .dir = d }))) {
		closedir(d);
		return INVALID_HANDLE;
	}
	if (!next_entry(handle_object(h, OBJ_FIND), data, wide)) {
		uint32_t e = g_last_error == ERROR_NO_MORE_FILES ? ERROR_FILE_NOT_FOUND : g_last_error;

		win_handle_close(h);
		g_last_error = e;
		return INVALID_HANDLE;
	}
	return h;
}

static STDCALL void *s_FindFirstFileExA(const char *pattern, uint32_t level, uint8_t *data, uint32_t search,
					void *filter, uint32_t flags)
{
	(void)level; (void)filter; (void)flags;
	if (search != 0)	/* FindExSearchNameMatch */
		die(126, "KERNEL32!FindFirstFileExA: only FindExSearchNameMatch is implemented");
	return find_first(pattern, data, 0);
}

static STDCALL void *s_FindFirstFileExW(const uint16_t *wpattern, uint32_t level, uint8_t *data, uint32_t search,
					void *filter, uint32_t flags)
{
	char buf[PATH_MAX];
	const char *pattern = narrow_name(wpattern, buf);

	(void)level; (void)filter; (void)flags;
	if (search != 0)
		die(126, "KERNEL32!FindFirstFileExW: only FindExSearchNameMatch is implemented");
	return pattern ? find_first(pattern, data, 1) : INVALID_HANDLE;
}

static STDCALL int s_FindNextFileA(void *h, uint8_t *data)
{
	struct win_object *o = handle_object(h, OBJ_FIND);

	return o && next_entry(o, data, 0);
}

static STDCALL int s_FindNextFileW(void *h, uint8_t *data)
{
	struct win_object *o = handle_object(h, OBJ_FIND);

	return o && next_entry(o, data, 1);
}

static STDCALL int s_FindClose(void *h) { return handle_object(h, OBJ_FIND) && win_handle_close(h); }

/* ---- names of places ---- */

/* The absolute Windows form of name ('\\' separated), as GetFullPathNameA; its length. */
static uint32_t full_path(const char *name, char *out, uint32_t size)
{
	char cwd[PATH_MAX], joined[2 * PATH_MAX + 2];
	size_t len, n;

	if (name[0] == '/' || name[0] == '\\') {
		len = strlen(name);
		if (len >= sizeof(joined)) {
			g_last_error = ERROR_FILENAME_EXCED_RANGE;
			return 0;
		}
		memcpy(joined, name, len + 1);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return (uint32_t)fail_with_errno();
		n = strlen(cwd);
		len = strlen(name);
		if (n + 1 + len >= sizeof(joined)) {
			g_last_error = ERROR_FILENAME_EXCED_RANGE;
			return 0;
		}
		memcpy(joined, cwd, n);
		joined[n] = '/';
		memcpy(joined + n + 1, name, len + 1);
		len += n + 1;
	}
	if (len + 1 > size)
		return (uint32_t)len + 1;	/* the size needed */
	for (size_t i = 0; i <= len; i++)
		out[i] = joined[i] == '/' ? '\\' : joined[i];
	return (uint32_t)len;
}

static STDCALL uint32_t s_GetFullPathNameA(const char *name, uint32_t size, char *out, char **file_part)
{
	uint32_t len = full_path(name, out, size);

	if (file_part && len && len < size) {
		char *slash = strrchr(out, '\\');

		*file_part = slash && slash[1] ? slash + 1 : NULL;
	}
	return len;
}

static STDCALL uint32_t s_GetFullPathNameW(const uint16_t *wname, uint32_t size, uint16_t *out, uint16_t **file_part)
{
	char buf[PATH_MAX], full[2 * PATH_MAX + 2];
	const char *name = narrow_name(wname, buf);
	uint32_t len = name ? full_path(name, full, sizeof(full)) : 0;

	if (!len || len + 1 > size)
		return len ? len + 1 : 0;
	for (uint32_t i = 0; i <= len; i++)
		out[i] = (uint8_t)full[i];
	if (file_part) {
		*file_part = NULL;
		for (uint32_t i = 0; i < len; i++)
			if (out[i] == '\\' && i + 1 < len)
				*file_part = out + i + 1;
	}
	return len;
}

static STDCALL uint32_t s_GetCurrentDirectoryW(uint32_t size, uint16_t *out)
{
	char cwd[PATH_MAX];
	size_t len;

	if (!getcwd(cwd, sizeof(cwd)))
		return (uint32_t)fail_with_errno();
	len = strlen(cwd);
	if (len + 1 > size)
		return (uint32_t)len + 1;
	for (size_t i = 0; i <= len; i++)
		out[i] = cwd[i] == '/' ? '\\' : (uint8_t)cwd[i];
	return (uint32_t)len;
}

/* $TMPDIR or /tmp, with the trailing '\\' GetTempPathA gives. */
static STDCALL uint32_t s_GetTempPathA(uint32_t size, char *out)
{
	const char *tmp = getenv("TMPDIR");
	size_t len;

	if (!tmp || tmp[0] != '/' || strlen(tmp) >= PATH_MAX)
		tmp = "/tmp";
	len = strlen(tmp) + (tmp[strlen(tmp) - 1] != '/');
	if (len + 1 > size)
		return (uint32_t)len + 1;
	for (size_t i = 0; tmp[i]; i++)
		out[i] = tmp[i] == '/' ? '\\' : tmp[i];
	out[len - 1] = '\\';
	out[len] = 0;
	return (uint32_t)len;
}

/*
 * GetFinalPathNameByHandleA: the file's path with links resolved, in the form GetFullPathNameA gives
 * (no \\?\ prefix: there are no drive letters here). VOLUME_NAME_DOS (0) only.
 */
static STDCALL uint32_t s_GetFinalPathNameByHandleA(void *h, char *out, uint32_t size, uint32_t flags)
{
	char link[64], target[PATH_MAX], full[PATH_MAX];
	int fd = win_handle_fd(h);
	ssize_t n;
	size_t len;

	if (fd < 0) {
		g_last_error = ERROR_INVALID_HANDLE;
		return 0;
	}
	if (flags) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, target, sizeof(target) - 1)) < 0)
		return (uint32_t)fail_with_errno();
	target[n] = 0;
	len = windows_path(target, full, sizeof(full));
	if (len >= sizeof(full)) {
		g_last_error = ERROR_FILENAME_EXCED_RANGE;
		return 0;
	}
	if (len >= size)
		return (uint32_t)len + 1;	/* the size needed, the NUL included; out is left alone */
	memcpy(out, full, len + 1);
	return (uint32_t)len;
}

static STDCALL uint32_t s_GetDriveTypeW(const uint16_t *root) { (void)root; return 3; }	/* DRIVE_FIXED */

static STDCALL int s_SetEnvironmentVariableW(const uint16_t *wname, const uint16_t *wvalue)
{
	char nbuf[PATH_MAX], vbuf[PATH_MAX];
	const char *name = narrow_name(wname, nbuf), *value = wvalue ? narrow_name(wvalue, vbuf) : NULL;

	if (!name || (wvalue && !value))
		return 0;
	if (!name[0] || strchr(name, '=')) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	return (value ? setenv(name, value, 1) : unsetenv(name)) ? fail_with_errno() : 1;
}

const struct shim winfile_shims[] = {
	K("CreateFileA", s_CreateFileA), K("CreateFileW", s_CreateFileW), K("GetFileType", s_GetFileType),
	K("GetFileSizeEx", s_GetFileSizeEx), K("SetFilePointerEx", s_SetFilePointerEx),
	K("SetEndOfFile", s_SetEndOfFile), K("FlushFileBuffers", s_FlushFileBuffers),
	K("DeleteFileA", s_DeleteFileA), K("DeleteFileW", s_DeleteFileW), K("RemoveDirectoryA", s_RemoveDirectoryA),
	K("CreateDirectoryW", s_CreateDirectoryW), K("SetCurrentDirectoryW", s_SetCurrentDirectoryW),
	K("MoveFileExW", s_MoveFileExW), K("GetFileAttributesA", s_GetFileAttributesA),
	K("GetFileAttributesExA", s_GetFileAttributesExA), K("SetFileAttributesA", s_SetFileAttributesA),
	K("FindFirstFileExA", s_FindFirstFileExA), K("FindFirstFileExW", s_FindFirstFileExW),
	K("FindNextFileA", s_FindNextFileA), K("FindNextFileW", s_FindNextFileW), K("FindClose", s_FindClose),
	K("GetFinalPathNameByHandleA", s_GetFinalPathNameByHandleA), K("GetFullPathNameA", s_GetFullPathNameA), K("GetFullPathNameW", s_GetFullPathNameW),
	K("GetCurrentDirectoryW", s_GetCurrentDirectoryW), K("GetTempPathA", s_GetTempPathA),
	K("GetDriveTypeW", s_GetDriveTypeW), K("SetEnvironmentVariableW", s_SetEnvironmentVariableW),
};

SHIM_TABLE_SIZE(winfile);
