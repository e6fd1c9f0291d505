// SPDX-License-Identifier: MIT
/*
 * What a script launcher calls (distlib's t64.exe, the one pip puts in front of every console
 * script): CreateProcessW of a program and its arguments, the job object it runs the child in,
 * SHLWAPI's path functions, and the rest of its old static C runtime's KERNEL32 imports.
 *
 * CreateProcessW splits the command line by the Microsoft C runtime's rules and runs the first word
 * as a program, with no shell: an argument that starts with '\' (not "\\") and names an existing
 * file once its '\' are '/' is passed in that Linux form (the launcher's Python path and its own
 * path); other arguments go as they are. A program without '/' is searched in PATH. CreateProcessA
 * (process.c) does the same when the program is such a '\' path (setuptools' cli.exe starts python
 * so), and otherwise gives the line to `/bin/sh -c` (ninja's commands are shell commands).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shims.h"

#define MAX_COMMAND_LINE 32767	/* CreateProcess's limit, in characters */
#define MAX_ARGS 2048		/* words of one command line */
#define WIN_MAX_PATH 260	/* the buffer SHLWAPI's path functions write */
#define JOB_LIMIT_FLAGS_AT 16	/* JOBOBJECT_BASIC_LIMIT_INFORMATION.LimitFlags */
#define JOB_EXTENDED_LIMIT_INFORMATION 9
#define JOB_EXTENDED_LIMIT_SIZE (sizeof(void *) == 8 ? 144u : 112u)
#define JOB_KNOWN_LIMITS (0x800u | 0x1000u | 0x2000u)	/* BREAKAWAY_OK, SILENT_BREAKAWAY_OK, KILL_ON_JOB_CLOSE */

enum { ERROR_INVALID_HANDLE = 6, ERROR_NOT_ENOUGH_MEMORY = 8, ERROR_INVALID_PARAMETER = 87,
       ERROR_FILENAME_EXCED_RANGE = 206 };

__attribute__((noreturn)) static void not_implemented(const char *what)
{
	die(126, "KERNEL32!%s was called: it is not implemented", what);
}

/* ---- CreateProcessW ---- */

/* The program name at the start of line: its first character and its length. */
static const char *program_word(const char *line, size_t *len)
{
	const char *start = line + (*line == '"'), *end = start;

	while (*end && (*line == '"' ? *end != '"' : *end != ' ' && *end != '\t'))
		end++;
	*len = (size_t)(end - start);
	return start;
}

/*
 * Splits line (in place: a word is never longer than its source) into at most MAX_ARGS words by
 * the C runtime's rules: the program name ends at the next '"' if it starts with one, else at a
 * blank; in the others 2n backslashes before '"' are n and the '"' toggles quoting, 2n+1 are n
 * and a literal '"', other backslashes are literal, and "" inside quotes is a literal '"'.
 * Returns the word count, or -1 past MAX_ARGS.
 */
static int split_command_line(char *line, char *argv[MAX_ARGS + 1])
{
	char *in = line, *out;
	int argc = 0;
	size_t len;

	argv[argc++] = in = (char *)program_word(line, &len);
	in += len;
	out = in;
	if (*in)
		in++;
	*out++ = 0;
	for (;;) {
		int quoted = 0;

		while (*in == ' ' || *in == '\t')
			in++;
		if (!*in)
			break;
		if (argc == MAX_ARGS)
			return -1;
		argv[argc++] = out;
		while (*in && (quoted || (*in != ' ' && *in != '\t'))) {
			size_t slashes = 0;

			while (*in == '\\')
				slashes++, in++;
			if (*in != '"') {
				while (slashes--)
					*out++ = '\\';
				if (*in)
					*out++ = *in++;
				continue;
			}
			for (size_t i = 0; i < slashes / 2; i++)
				*out++ = '\\';
			if (slashes % 2)
				*out++ = *in++;
			else if (quoted && in[1] == '"')
				*out++ = '"', in += 2;
			else
				quoted = !quoted, in++;
		}
		if (*in)
			in++;	/* the blank after the word: the NUL may take its place */
		*out++ = 0;
	}
	argv[argc] = NULL;
	return argc;
}

/* A copy of arg in Linux form when it is a '\'-rooted path of an existing file, else NULL. */
static char *linux_path(const char *arg)
{
	char buf[PATH_MAX];
	const char *mapped;

	if (arg[0] != '\\' || arg[1] == '\\' || !(mapped = host_path(arg, buf)) || access(mapped, F_OK))
		return NULL;
	return strdup(mapped);
}

/* Each argument that linux_path maps is replaced by its mapping, kept in mapped[] to be freed. */
static void map_linux_paths(int argc, char *argv[], char *mapped[])
{
	for (int i = 0; i < argc; i++)
		if ((mapped[i] = linux_path(argv[i])))
			argv[i] = mapped[i];
}

int names_windows_program(const char *line)
{
	char program[PATH_MAX], *mapped;
	size_t len;
	const char *start = program_word(line, &len);

	if (len >= sizeof(program))
		return 0;
	memcpy(program, start, len);
	program[len] = 0;
	mapped = linux_path(program);
	free(mapped);
	return mapped != NULL;
}

int spawn_command_line(char *line, uint32_t flags, void *startup, void *information)
{
	char *argv[MAX_ARGS + 1], *mapped[MAX_ARGS] = { NULL };
	int argc, ok;

	if ((argc = split_command_line(line, argv)) < 0) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	map_linux_paths(argc, argv, mapped);
	ok = spawn_child(argv[0], argv, flags, startup, information);
	for (int i = 0; i < argc; i++)
		free(mapped[i]);
	return ok;
}

static STDCALL int s_CreateProcessW(const uint16_t *app, const uint16_t *wline, void *process_security,
				    void *thread_security, int inherit, uint32_t flags, void *environment,
				    const uint16_t *directory, void *si, void *pi)
{
	char line[MAX_COMMAND_LINE + 1];
	size_t len;

	(void)process_security; (void)thread_security; (void)inherit;
	if (app || environment || directory || (flags & ~0x200u))
		not_implemented("CreateProcessW (other than a command line naming the program, with this "
				"environment and directory, and CREATE_NEW_PROCESS_GROUP)");
	if (!wline) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	for (len = 0; wline[len]; len++) {
		if (len == MAX_COMMAND_LINE) {
			g_last_error = ERROR_FILENAME_EXCED_RANGE;
			return 0;
		}
		if (wline[len] > 255)
			not_implemented("CreateProcessW (of a command line with characters past U+00FF)");
		line[len] = (char)wline[len];
	}
	line[len] = 0;
	return spawn_command_line(line, flags, si, pi);
}

/*
 * msvcrt's _execv (setuptools' gui.exe): Windows joins argv with blanks (the caller quotes) into the
 * command line of program; here that line is split as CreateProcessW splits it and program replaces
 * this process (its exit status is then this process's, where Windows would start it beside).
 */
static WINAPI int s__execv(const char *program, char *const *args)
{
	char line[MAX_COMMAND_LINE + 1], *argv[MAX_ARGS + 1], *mapped[MAX_ARGS] = { NULL }, buf[PATH_MAX];
	size_t len = 0;
	int argc;

	if (!program || !args || !args[0])
		return errno = EINVAL, -1;
	if (!(program = host_path(program, buf)))
		return -1;	/* ENAMETOOLONG */
	for (size_t i = 0; args[i]; i++) {
		size_t n = strlen(args[i]);

		if (len + n + 1 > MAX_COMMAND_LINE)
			return errno = E2BIG, -1;
		memcpy(line + len, args[i], n);
		len += n;
		line[len++] = args[i + 1] ? ' ' : 0;
	}
	if ((argc = split_command_line(line, argv)) < 0)
		return errno = E2BIG, -1;
	map_linux_paths(argc, argv, mapped);
	fflush(NULL);
	execv(program, argv);
	for (int i = 0; i < argc; i++)
		free(mapped[i]);
	return -1;
}

/* Error paths of a launcher only (it finds its program by the path its script names). */
static STDCALL int s_SearchPathW(void) { not_implemented("SearchPathW"); }
static STDCALL int s_FormatMessageW(void) { not_implemented("FormatMessageW"); }

/* GetTempPathA's folder (winfile.c), widened. */
static STDCALL uint32_t s_GetTempPathW(uint32_t size, uint16_t *buf)
{
	typedef STDCALL uint32_t (*temp_fn)(uint32_t, char *);
	char path[PATH_MAX + 2];
	uint32_t len = ((temp_fn)find_shim("kernel32.dll", "GetTempPathA"))(sizeof(path), path);

	if (len + 1 > size)
		return len + 1;
	for (uint32_t i = 0; i <= len; i++)
		buf[i] = (uint8_t)path[i];
	return len;
}

static STDCALL uint32_t s_WaitForSingleObjectEx(void *h, uint32_t ms, int alertable)
{
	typedef STDCALL uint32_t (*wait_fn)(void *, uint32_t);

	(void)alertable;	/* nothing queues APCs here */
	return ((wait_fn)find_shim("kernel32.dll", "WaitForSingleObject"))(h, ms);
}

/*
 * The standard handles stay descriptors 0-2 (GetStdHandle, peload.c): a handle set in their place
 * is duplicated onto the descriptor; NULL (the C runtime's _close of 0-2) closes it.
 */
static STDCALL int s_SetStdHandle(uint32_t which, void *h)
{
	int32_t w = (int32_t)which, std_fd = -10 - w, fd;

	if (w < -12 || w > -10)
		return g_last_error = ERROR_INVALID_HANDLE, 0;
	if (!h)
		return close(std_fd), 1;
	if ((fd = win_handle_fd(h)) < 0)
		return g_last_error = ERROR_INVALID_HANDLE, 0;
	return fd == std_fd || dup2(fd, std_fd) >= 0 ? 1 : fail_with_errno();
}

/* ---- job objects: the limit flags a launcher sets; its child is not killed when the job closes ---- */

struct job {
	uint32_t limit_flags;
};

static STDCALL void *s_CreateJobObjectA(void *security, const char *name)
{
	struct job *j;
	void *h;

	(void)security;
	if (name)
		not_implemented("CreateJobObjectA (of a named job)");
	if (!(j = calloc(1, sizeof(*j))))
		return g_last_error = ERROR_NOT_ENOUGH_MEMORY, NULL;
	if (!(h = handle_new((struct win_object){ .kind = OBJ_JOB, .fd = -1, .data = j })))
		free(j);
	return h;
}

static struct job *job_of(void *h, uint32_t cls, uint32_t size)
{
	struct win_object *o = handle_object(h, OBJ_JOB);

	if (o && cls != JOB_EXTENDED_LIMIT_INFORMATION)
		not_implemented("QueryInformationJobObject/SetInformationJobObject (of a class other than "
				"JobObjectExtendedLimitInformation)");
	if (o && size != JOB_EXTENDED_LIMIT_SIZE) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return NULL;
	}
	return o ? o->data : NULL;
}

int job_query(void *h, uint32_t cls, void *info, uint32_t size, uint32_t *ret)
{
	struct job *j = job_of(h, cls, size);

	if (!j)
		return 0;
	memset(info, 0, size);
	memcpy((char *)info + JOB_LIMIT_FLAGS_AT, &j->limit_flags, sizeof(j->limit_flags));
	if (ret)
		*ret = size;
	return 1;
}

static STDCALL int s_SetInformationJobObject(void *h, uint32_t cls, const void *info, uint32_t size)
{
	struct job *j = job_of(h, cls, size);
	uint32_t flags;

	if (!j)
		return 0;
	memcpy(&flags, (const char *)info + JOB_LIMIT_FLAGS_AT, sizeof(flags));
	if (flags & ~JOB_KNOWN_LIMITS)
		not_implemented("SetInformationJobObject (limits other than breakaway and kill-on-close)");
	j->limit_flags = flags;
	return 1;
}

static STDCALL int s_AssignProcessToJobObject(void *job, void *process)
{
	if (!handle_object(job, OBJ_JOB) || !handle_object(process, OBJ_PROCESS))
		return 0;
	return 1;
}

/* ---- the static C runtime's KERNEL32 ---- */

/* One heap: HeapCreate gives the process heap (winrt.c, malloc) the CRT then allocates from. */
static STDCALL void *s_HeapCreate(uint32_t options, size_t initial, size_t maximum)
{
	typedef STDCALL void *(*heap_fn)(void);

	(void)options; (void)initial;
	if (maximum)
		not_implemented("HeapCreate (of a heap with a maximum size)");
	return ((heap_fn)find_shim("kernel32.dll", "GetProcessHeap"))();
}

static STDCALL int s_HeapSetInformation(void *heap, int cls, void *info, size_t size)
{
	(void)heap; (void)cls; (void)info; (void)size;
	return 1;	/* heap options (termination on corruption, low fragmentation) are hints */
}

static STDCALL uint32_t s_GetVersion(void) { return 19045u << 16 | 10; }	/* 10.0, as VerifyVersionInfoA */
static STDCALL uint32_t s_SetHandleCount(uint32_t n) { return n; }	/* a no-op since Windows 95 */

static STDCALL uint32_t s_GetConsoleCP(void)
{
	typedef STDCALL uint32_t (*cp_fn)(void);

	return ((cp_fn)find_shim("kernel32.dll", "GetConsoleOutputCP"))();
}

static STDCALL uint32_t s_SetFilePointer(void *h, int32_t low, int32_t *high, uint32_t method)
{
	typedef STDCALL int (*seek_fn)(void *, int64_t, int64_t *, uint32_t);
	int64_t distance = high ? (int64_t)((uint64_t)(uint32_t)*high << 32 | (uint32_t)low) : low, now;

	if (!((seek_fn)find_shim("kernel32.dll", "SetFilePointerEx"))(h, distance, &now, method))
		return 0xFFFFFFFFu;	/* INVALID_SET_FILE_POINTER, GetLastError set */
	if (high)
		*high = (int32_t)(now >> 32);
	g_last_error = 0;
	return (uint32_t)now;
}

/* The i386 C runtime's (x64 programs inline them). */
static STDCALL int32_t s_InterlockedIncrement(volatile int32_t *p) { return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST); }
static STDCALL int32_t s_InterlockedDecrement(volatile int32_t *p) { return __atomic_sub_fetch(p, 1, __ATOMIC_SEQ_CST); }

/* ---- SHLWAPI ---- */

static size_t wlen(const uint16_t *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static int is_root(const uint16_t *s, size_t at)	/* s[at] is the '\' of "\" or "X:\" */
{
	return at == 0 || (at == 2 && s[1] == ':');
}

/* Drops the last part of path (and its '\', unless it is the root's); TRUE if it dropped something. */
static STDCALL int s_PathRemoveFileSpecW(uint16_t *path)
{
	size_t n, cut;

	if (!path || !*path)
		return 0;
	n = wlen(path);
	for (cut = n; cut > 0 && path[cut - 1] != '\\'; cut--)
		;
	if (cut == 0) {
		path[0] = 0;
		return 1;
	}
	cut--;
	if (is_root(path, cut))
		cut++;
	if (cut == n)
		return 0;
	path[cut] = 0;
	return 1;
}

/* dir '\' file (file alone when it is absolute) into dest (MAX_PATH), "." and ".." parts removed. */
static STDCALL uint16_t *s_PathCombineW(uint16_t *dest, const uint16_t *dir, const uint16_t *file)
{
	uint16_t joined[2 * WIN_MAX_PATH + 2];
	size_t n = 0, out = 0, start;
	const uint16_t *parts[2] = { dir, file };

	if (!dest || (!dir && !file))
		return g_last_error = ERROR_INVALID_PARAMETER, NULL;
	if (file && (file[0] == '\\' || (file[0] && file[1] == ':')))
		parts[0] = NULL;
	for (int p = 0; p < 2; p++) {
		if (!parts[p])
			continue;
		if (n && joined[n - 1] != '\\' && parts[p][0])
			joined[n++] = '\\';
		for (const uint16_t *c = parts[p]; *c; c++) {
			if (n == 2 * WIN_MAX_PATH)
				goto too_long;
			joined[n++] = *c;
		}
	}
	joined[n] = 0;
	/* canonicalize: copy part by part, "." dropped, ".." removes the part before it */
	for (size_t i = 0; i <= n; i = start + 1) {
		size_t len;

		for (start = i; start < n && joined[start] != '\\'; start++)
			;
		len = start - i;
		if (len == 1 && joined[i] == '.')
			continue;
		if (len == 2 && joined[i] == '.' && joined[i + 1] == '.') {
			while (out > 0 && joined[out - 1] == '\\' && !is_root(joined, out - 1))
				out--;
			while (out > 0 && joined[out - 1] != '\\')
				out--;
			continue;
		}
		memmove(joined + out, joined + i, len * sizeof(*joined));
		out += len;
		if (start < n)
			joined[out++] = '\\';
	}
	joined[out] = 0;
	if (out >= WIN_MAX_PATH)
		goto too_long;
	memcpy(dest, joined, (out + 1) * sizeof(*joined));
	return dest;
too_long:
	dest[0] = 0;
	g_last_error = ERROR_FILENAME_EXCED_RANGE;
	return NULL;
}

static uint16_t fold(uint16_t c)	/* lower case over U+0000-U+00FF, as winrt.c's LCMapString */
{
	return (c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7) ? c + 32 : c;
}

static STDCALL const uint16_t *s_StrStrIW(const uint16_t *haystack, const uint16_t *needle)
{
	if (!haystack || !needle)
		return NULL;
	for (; *haystack; haystack++) {
		size_t i = 0;

		while (needle[i] && fold(haystack[i]) == fold(needle[i]))
			i++;
		if (!needle[i])
			return haystack;
	}
	return *needle ? NULL : haystack;
}

#define S(name, fn) { "shlwapi.dll", name, (void *)(fn) }
const struct shim launcher_shims[] = {
	M("_execv", s__execv),
	K("CreateProcessW", s_CreateProcessW), K("SearchPathW", s_SearchPathW), K("FormatMessageW", s_FormatMessageW),
	K("GetTempPathW", s_GetTempPathW), K("SetStdHandle", s_SetStdHandle), K("WaitForSingleObjectEx", s_WaitForSingleObjectEx),
	K("CreateJobObjectA", s_CreateJobObjectA), K("SetInformationJobObject", s_SetInformationJobObject),
	K("AssignProcessToJobObject", s_AssignProcessToJobObject), K("HeapCreate", s_HeapCreate),
	K("HeapSetInformation", s_HeapSetInformation), K("GetVersion", s_GetVersion),
	K("InterlockedIncrement", s_InterlockedIncrement), K("InterlockedDecrement", s_InterlockedDecrement),
	K("SetHandleCount", s_SetHandleCount), K("GetConsoleCP", s_GetConsoleCP), K("SetFilePointer", s_SetFilePointer),
	S("PathRemoveFileSpecW", s_PathRemoveFileSpecW), S("PathCombineW", s_PathCombineW), S("StrStrIW", s_StrStrIW),
};

SHIM_TABLE_SIZE(launcher);
