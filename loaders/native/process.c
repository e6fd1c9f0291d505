// SPDX-License-Identifier: MIT
/*
 * Child processes, pipes and I/O completion ports for MSVC-built programs (ninja runs its build
 * commands so). CreateProcessA hands the command line, unparsed, to `/bin/sh -c` through
 * posix_spawn (what ninja on Linux does), unless its program is a '\' path of an existing file
 * (launcher.c then runs it as CreateProcessW does), with the STARTUPINFO standard handles as the
 * child's descriptors 0-2; nothing else is inherited (every descriptor here is close-on-exec). A named
 * pipe (PIPE_ACCESS_INBOUND) is a Linux pipe: the server handle reads, the one CreateFile of its
 * name gets the write end. Overlapped reads of a pipe bound to a completion port are performed
 * by GetQueuedCompletionStatus, which polls the pending reads and a wake-up pipe that
 * PostQueuedCompletionStatus writes. Ctrl-C reaches the SetConsoleCtrlHandler handlers on a
 * thread of its own; GenerateConsoleCtrlEvent sends SIGINT to a child's process group. The
 * structured exception functions are not implemented: calling one ends the program (exit 126).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shims.h"

extern char **environ;

#define CURRENT_PROCESS ((void *)(intptr_t)-1)
#define INVALID_HANDLE ((void *)(intptr_t)-1)
#define MAX_COMMAND_LINE 32767		/* CreateProcess's limit, in characters */
#define MAX_PIPE_NAME 256		/* the Windows limit on a pipe name */
#define MAX_PENDING 256			/* overlapped reads one port follows */
#define MAX_QUEUED 1024			/* completion packets waiting on one port */
#define STILL_ACTIVE 259
#define CONTROL_C_EXIT 0xC000013Au
#define STATUS_PENDING 0x103u
#define STATUS_PIPE_BROKEN 0xC000014Bu

enum { ERROR_FILE_NOT_FOUND = 2, ERROR_INVALID_HANDLE = 6, ERROR_NOT_ENOUGH_MEMORY = 8,
       ERROR_INVALID_PARAMETER = 87, ERROR_BROKEN_PIPE = 109, ERROR_FILENAME_EXCED_RANGE = 206,
       WAIT_TIMEOUT = 258, ERROR_PIPE_CONNECTED = 535, ERROR_IO_INCOMPLETE = 996, ERROR_IO_PENDING = 997 };

__attribute__((noreturn)) static void not_implemented(const char *what)
{
	die(126, "KERNEL32!%s was called: it is not implemented", what);
}

struct overlapped {	/* OVERLAPPED: the status and byte count of a finished operation */
	uintptr_t status, bytes;
	uint32_t offset, offset_high;
	void *event;
};

struct packet {
	uintptr_t key;
	struct overlapped *ov;
	uint32_t bytes, error;	/* error: 0, or the GetLastError() of a failed read */
};

struct pending_read {
	void *pipe;
	uint8_t *buf;
	uint32_t size;
	uintptr_t key;
	struct overlapped *ov;
};

struct port {
	pthread_mutex_t lock;
	int wake[2];		/* PostQueuedCompletionStatus writes a byte to wake[1] */
	struct packet queue[MAX_QUEUED];
	size_t head, count;
	struct pending_read pending[MAX_PENDING];
	size_t npending;
};

struct named_pipe {
	char name[MAX_PIPE_NAME];
	int client_fd;		/* the write end until a CreateFile of the name takes it */
	void *port;		/* its completion port and key */
	uintptr_t key;
	struct overlapped *connect;	/* a ConnectNamedPipe waiting for the client */
};

struct process {
	pid_t pid;
	int done, is_thread;
	uint32_t exit_code;
};

/* ---- completion ports ---- */

static int post(struct port *p, struct packet pk)
{
	pthread_mutex_lock(&p->lock);
	if (p->count == MAX_QUEUED) {
		pthread_mutex_unlock(&p->lock);
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return 0;
	}
	p->queue[(p->head + p->count++) % MAX_QUEUED] = pk;
	pthread_mutex_unlock(&p->lock);
	if (write(p->wake[1], "", 1) < 0 && errno != EAGAIN)
		return fail_with_errno();
	return 1;
}

static struct port *port_of(void *h)
{
	struct win_object *o = handle_object(h, OBJ_PORT);

	return o ? o->data : NULL;
}

static STDCALL void *s_CreateIoCompletionPort(void *file, void *existing, uintptr_t key, uint32_t threads)
{
	struct win_object *o;
	struct port *p;
	void *h;

	(void)threads;
	if (file == INVALID_HANDLE && !existing) {
		if (!(p = calloc(1, sizeof(*p))))
			return g_last_error = ERROR_NOT_ENOUGH_MEMORY, NULL;
		if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK)) {
			free(p);
			return fail_with_errno(), NULL;
		}
		pthread_mutex_init(&p->lock, NULL);
		if (!(h = handle_new((struct win_object){ .kind = OBJ_PORT, .fd = p->wake[0], .data = p }))) {
			close(p->wake[0]);
			close(p->wake[1]);
			free(p);
		}
		return h;
	}
	if (!(o = handle_object(file, OBJ_PIPE)))
		not_implemented("CreateIoCompletionPort (for anything but a named pipe)");
	if (!port_of(existing))
		return NULL;
	((struct named_pipe *)o->data)->port = existing;
	((struct named_pipe *)o->data)->key = key;
	return existing;
}

static STDCALL int s_PostQueuedCompletionStatus(void *h, uint32_t bytes, uintptr_t key, struct overlapped *ov)
{
	struct port *p = port_of(h);

	return p && post(p, (struct packet){ .key = key, .ov = ov, .bytes = bytes });
}

/* Performs the pending read whose pipe is ready into a packet, drops it from the list. */
static struct packet finish_read(struct port *p, size_t i, int fd)
{
	struct pending_read r = p->pending[i];
	struct packet pk = { .key = r.key, .ov = r.ov };
	ssize_t n;

	p->pending[i] = p->pending[--p->npending];
	do
		n = read(fd, r.buf, r.size);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		r.ov->status = 0;
		r.ov->bytes = pk.bytes = (uint32_t)n;
	} else {
		r.ov->status = STATUS_PIPE_BROKEN;	/* end of file: every writer closed it */
		r.ov->bytes = 0;
		pk.error = ERROR_BROKEN_PIPE;
	}
	return pk;
}

static STDCALL int s_GetQueuedCompletionStatus(void *h, uint32_t *bytes, uintptr_t *key, struct overlapped **ov,
					       uint32_t ms)
{
	struct port *p = port_of(h);
	struct pollfd fds[MAX_PENDING + 1];
	struct packet pk;
	char drain[64];
	int n;

	if (!p)
		return 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (p->count) {
			pk = p->queue[p->head];
			p->head = (p->head + 1) % MAX_QUEUED;
			p->count--;
			pthread_mutex_unlock(&p->lock);
			break;
		}
		fds[0] = (struct pollfd){ .fd = p->wake[0], .events = POLLIN };
		for (size_t i = 0; i < p->npending; i++)
			fds[i + 1] = (struct pollfd){ .fd = win_handle_fd(p->pending[i].pipe), .events = POLLIN };
		nfds_t nfds = p->npending + 1;
		pthread_mutex_unlock(&p->lock);
		n = poll(fds, nfds, ms > INT_MAX ? -1 : (int)ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*ov = NULL;
			g_last_error = n ? ERROR_INVALID_HANDLE : WAIT_TIMEOUT;
			return 0;
		}
		while (read(p->wake[0], drain, sizeof(drain)) > 0)
			;
		pthread_mutex_lock(&p->lock);
		for (nfds_t i = 1; i < nfds; i++)
			if (fds[i].revents) {
				pk = finish_read(p, i - 1, fds[i].fd);
				pthread_mutex_unlock(&p->lock);
				goto done;
			}
		pthread_mutex_unlock(&p->lock);
	}
done:
	*bytes = pk.bytes;
	*key = pk.key;
	*ov = pk.ov;
	if (pk.error) {
		g_last_error = pk.error;
		return 0;
	}
	return 1;
}

/* ReadFile with an OVERLAPPED: only on a named pipe bound to a completion port; always pending. */
int read_overlapped(void *h, void *buf, uint32_t size, uint32_t *got, void *overlapped)
{
	struct win_object *o = handle_object(h, OBJ_PIPE);
	struct named_pipe *np = o ? o->data : NULL;
	struct overlapped *ov = overlapped;
	struct port *p = np && np->port ? port_of(np->port) : NULL;

	if (!p)
		not_implemented("ReadFile (overlapped, on anything but a named pipe bound to a completion port)");
	pthread_mutex_lock(&p->lock);
	if (p->npending == MAX_PENDING) {
		pthread_mutex_unlock(&p->lock);
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return 0;
	}
	ov->status = STATUS_PENDING;
	ov->bytes = 0;
	p->pending[p->npending++] = (struct pending_read){ h, buf, size, np->key, ov };
	pthread_mutex_unlock(&p->lock);
	if (write(p->wake[1], "", 1) < 0 && errno != EAGAIN)	/* a waiting GetQueuedCompletionStatus polls it too */
		return fail_with_errno();
	if (got)
		*got = 0;
	g_last_error = ERROR_IO_PENDING;
	return 0;
}

static STDCALL int s_GetOverlappedResult(void *h, struct overlapped *ov, uint32_t *bytes, int wait)
{
	(void)h;
	if (ov->status == STATUS_PENDING) {
		if (wait)
			not_implemented("GetOverlappedResult (waiting: completions come from GetQueuedCompletionStatus)");
		g_last_error = ERROR_IO_INCOMPLETE;
		return 0;
	}
	*bytes = (uint32_t)ov->bytes;
	if (ov->status == STATUS_PIPE_BROKEN) {
		g_last_error = ERROR_BROKEN_PIPE;
		return 0;
	}
	return 1;
}

/* ---- named pipes ---- */

#define PIPE_ACCESS_INBOUND 0x1
#define PIPE_ACCESS_MASK 0x3

static STDCALL void *s_CreateNamedPipeA(const char *name, uint32_t open_mode, uint32_t pipe_mode, uint32_t instances,
					uint32_t out_size, uint32_t in_size, uint32_t timeout, void *security)
{
	static const char prefix[] = "\\\\.\\pipe\\";
	size_t len = strnlen(name, MAX_PIPE_NAME + sizeof(prefix));
	struct named_pipe *np;
	int fds[2];
	void *h;

	(void)pipe_mode; (void)instances; (void)out_size; (void)in_size; (void)timeout; (void)security;
	if (strncasecmp(name, prefix, sizeof(prefix) - 1) || len - (sizeof(prefix) - 1) >= MAX_PIPE_NAME ||
	    len == sizeof(prefix) - 1) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return INVALID_HANDLE;
	}
	if ((open_mode & PIPE_ACCESS_MASK) != PIPE_ACCESS_INBOUND)
		not_implemented("CreateNamedPipeA (other than PIPE_ACCESS_INBOUND)");
	if (!(np = calloc(1, sizeof(*np)))) {
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return INVALID_HANDLE;
	}
	if (pipe2(fds, O_CLOEXEC)) {
		free(np);
		fail_with_errno();
		return INVALID_HANDLE;
	}
	for (size_t i = sizeof(prefix) - 1; i <= len; i++)	/* the name as CreateFile's paths.c form has it */
		np->name[i - (sizeof(prefix) - 1)] = name[i] == '\\' ? '/' : name[i];
	np->client_fd = fds[1];
	if (!(h = handle_new((struct win_object){ .kind = OBJ_PIPE, .fd = fds[0], .data = np }))) {
		close(fds[0]);
		close(fds[1]);
		free(np);
		return INVALID_HANDLE;
	}
	return h;
}

static int same_name(const struct win_object *o, const void *name)
{
	const struct named_pipe *np = o->data;

	return np->client_fd >= 0 && !strcmp(np->name, name);
}

void *pipe_client(const char *name, uint32_t access)
{
	void *server = handle_find(OBJ_PIPE, same_name, name);
	struct named_pipe *np;
	void *h;

	(void)access;
	if (!server) {
		g_last_error = ERROR_FILE_NOT_FOUND;
		return INVALID_HANDLE;
	}
	np = handle_object(server, OBJ_PIPE)->data;
	if (!(h = handle_new((struct win_object){ .kind = OBJ_FILE, .fd = np->client_fd })))
		return INVALID_HANDLE;
	np->client_fd = -1;
	if (np->connect) {
		np->connect->status = 0;
		np->connect->bytes = 0;
		post(port_of(np->port), (struct packet){ .key = np->key, .ov = np->connect });
		np->connect = NULL;
	}
	return h;
}

static STDCALL int s_ConnectNamedPipe(void *h, struct overlapped *ov)
{
	struct win_object *o = handle_object(h, OBJ_PIPE);
	struct named_pipe *np = o ? o->data : NULL;

	if (!np)
		return 0;
	if (np->client_fd < 0) {
		g_last_error = ERROR_PIPE_CONNECTED;
		return 0;
	}
	if (!ov || !np->port)
		not_implemented("ConnectNamedPipe (waiting, or without a completion port)");
	ov->status = STATUS_PENDING;
	np->connect = ov;
	g_last_error = ERROR_IO_PENDING;
	return 0;
}

/* An anonymous pipe: a read and a write handle. */
static STDCALL int s_CreatePipe(void **read_end, void **write_end, void *security, uint32_t size)
{
	int fds[2];

	(void)security; (void)size;
	if (pipe2(fds, O_CLOEXEC))
		return fail_with_errno();
	*read_end = handle_new((struct win_object){ .kind = OBJ_FILE, .fd = fds[0] });
	*write_end = *read_end ? handle_new((struct win_object){ .kind = OBJ_FILE, .fd = fds[1] }) : NULL;
	if (!*write_end) {
		if (*read_end)
			win_handle_close(*read_end);
		else
			close(fds[0]);
		close(fds[1]);
		return 0;
	}
	return 1;
}

/* ---- handles ---- */

#define DUPLICATE_CLOSE_SOURCE 0x1

static STDCALL int s_DuplicateHandle(void *src_process, void *src, void *dst_process, void **dst, uint32_t access,
				     int inherit, uint32_t options)
{
	int fd = win_handle_fd(src), copy;

	(void)access; (void)inherit;
	if (src_process != CURRENT_PROCESS || dst_process != CURRENT_PROCESS)
		not_implemented("DuplicateHandle (into or from another process)");
	if (fd < 0) {
		g_last_error = ERROR_INVALID_HANDLE;
		return 0;
	}
	if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return fail_with_errno();
	if (!(*dst = handle_new((struct win_object){ .kind = OBJ_FILE, .fd = copy }))) {
		close(copy);
		return 0;
	}
	if (options & DUPLICATE_CLOSE_SOURCE)
		win_handle_close(src);
	return 1;
}

/* Inheritance is not kept per handle: a child gets exactly its STARTUPINFO handles (and 0-2). */
static STDCALL int s_SetHandleInformation(void *h, uint32_t mask, uint32_t flags)
{
	(void)mask; (void)flags;
	if (win_handle_fd(h) < 0) {
		g_last_error = ERROR_INVALID_HANDLE;
		return 0;
	}
	return 1;
}

static STDCALL void *s_GetCurrentProcess(void) { return CURRENT_PROCESS; }

/* ---- processes ---- */

struct startup_info {	/* STARTUPINFOA: 104 bytes on x64, 68 on i386 */
	uint32_t cb;
	char *reserved, *desktop, *title;
	uint32_t x, y, x_size, y_size, x_chars, y_chars, fill, flags;
	uint16_t show_window, reserved2_size;
	uint8_t *reserved2;
	void *std_input, *std_output, *std_error;
};

struct process_information {
	void *process, *thread;
	uint32_t process_id, thread_id;
};

#define STARTF_USESTDHANDLES 0x100
#define CREATE_NEW_PROCESS_GROUP 0x200

static struct process *process_of(void *h)
{
	struct win_object *o = handle_object(h, OBJ_PROCESS);

	return o ? o->data : NULL;
}

static void *new_process_handle(pid_t pid, int is_thread)
{
	struct process *p = calloc(1, sizeof(*p));
	void *h;

	if (!p)
		return g_last_error = ERROR_NOT_ENOUGH_MEMORY, NULL;
	*p = (struct process){ .pid = pid, .is_thread = is_thread };
	if (!(h = handle_new((struct win_object){ .kind = OBJ_PROCESS, .fd = -1, .data = p })))
		free(p);
	return h;
}

int spawn_child(const char *program, char *const argv[], uint32_t flags, void *startup, void *information)
{
	static const int std_fds[3] = { 0, 1, 2 };
	struct startup_info *si = startup;
	struct process_information *pi = information;
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int err;

	posix_spawn_file_actions_init(&actions);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);	/* the Ctrl-C thread's blocked SIGINT is not the child's */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
				 (flags & CREATE_NEW_PROCESS_GROUP ? POSIX_SPAWN_SETPGROUP : 0));
	if (si->flags & STARTF_USESTDHANDLES) {
		void *handles[3] = { si->std_input, si->std_output, si->std_error };

		for (int i = 0; i < 3; i++) {
			int fd = win_handle_fd(handles[i]);

			if (fd < 0) {
				posix_spawn_file_actions_destroy(&actions);
				posix_spawnattr_destroy(&attr);
				g_last_error = ERROR_INVALID_HANDLE;
				return 0;
			}
			posix_spawn_file_actions_adddup2(&actions, fd, std_fds[i]);
		}
	}
	fflush(NULL);
	err = (strchr(program, '/') ? posix_spawn : posix_spawnp)(&pid, program, &actions, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	if (err) {
		errno = err;
		return fail_with_errno();
	}
	pi->process = new_process_handle(pid, 0);
	pi->thread = new_process_handle(pid, 1);
	if (!pi->process || !pi->thread)
		die(126, "out of handles for a started process (pid %d)", (int)pid);
	pi->process_id = pi->thread_id = (uint32_t)pid;
	return 1;
}

static STDCALL int s_CreateProcessA(const char *app, char *command_line, void *process_security,
				    void *thread_security, int inherit, uint32_t flags, void *environment,
				    const char *directory, struct startup_info *si, struct process_information *pi)
{
	(void)process_security; (void)thread_security; (void)inherit;
	if (app || environment || directory || (flags & ~(uint32_t)CREATE_NEW_PROCESS_GROUP))
		not_implemented("CreateProcessA (other than a command line, with this environment and "
				"directory, and CREATE_NEW_PROCESS_GROUP)");
	if (!command_line || strnlen(command_line, MAX_COMMAND_LINE + 1) > MAX_COMMAND_LINE) {
		g_last_error = command_line ? ERROR_FILENAME_EXCED_RANGE : ERROR_INVALID_PARAMETER;
		return 0;
	}
	if (names_windows_program(command_line)) {	/* a Windows program's own command line */
		char line[MAX_COMMAND_LINE + 1];

		return spawn_command_line(strcpy(line, command_line), flags, si, pi);
	}
	char *argv[] = { "sh", "-c", command_line, NULL };
	return spawn_child("/bin/sh", argv, flags, si, pi);
}

/* The exit code Windows would give: the status, or CONTROL_C_EXIT for SIGINT, 128 + other signals. */
static void reap(struct process *p, int status)
{
	p->done = 1;
	if (WIFEXITED(status))
		p->exit_code = (uint32_t)WEXITSTATUS(status);
	else
		p->exit_code = WTERMSIG(status) == SIGINT ? CONTROL_C_EXIT : 128u + (uint32_t)WTERMSIG(status);
}

static int poll_process(struct process *p, int block)
{
	int status;
	pid_t r;

	if (p->is_thread)
		not_implemented("waiting on a process's main thread");
	while (!p->done) {
		r = waitpid(p->pid, &status, block ? 0 : WNOHANG);
		if (r == p->pid)
			reap(p, status);
		else if (r == 0 || errno != EINTR)
			break;
	}
	return p->done;
}

uint32_t process_wait(void *h, uint32_t ms)
{
	struct process *p = process_of(h);
	struct timespec tick = { 0, 1000000 };

	if (!p)
		return 0xffffffffu;	/* WAIT_FAILED */
	if (ms == 0xffffffffu)
		return poll_process(p, 1) ? 0 : 0xffffffffu;
	for (uint32_t waited = 0;; waited++) {
		if (poll_process(p, 0))
			return 0;	/* WAIT_OBJECT_0 */
		if (waited >= ms)
			return WAIT_TIMEOUT;
		nanosleep(&tick, NULL);
	}
}

static STDCALL int s_GetExitCodeProcess(void *h, uint32_t *code)
{
	struct process *p = process_of(h);

	if (!p)
		return 0;
	*code = poll_process(p, 0) ? p->exit_code : STILL_ACTIVE;
	return 1;
}

static STDCALL uint32_t s_GetProcessId(void *h)
{
	struct process *p = h == CURRENT_PROCESS ? NULL : process_of(h);

	return h == CURRENT_PROCESS ? (uint32_t)getpid() : p ? (uint32_t)p->pid : 0;
}

static STDCALL int s_TerminateProcess(void *h, uint32_t code)
{
	struct process *p;

	if (h == CURRENT_PROCESS) {
		fflush(NULL);
		_exit((int)code);
	}
	if (!(p = process_of(h)) || p->is_thread)
		return p ? (g_last_error = ERROR_INVALID_HANDLE, 0) : 0;
	if (!p->done && kill(p->pid, SIGKILL))
		return fail_with_errno();
	poll_process(p, 1);
	p->exit_code = code;
	return 1;
}

/* ---- Ctrl-C: a thread that waits for SIGINT and calls the handlers, newest first ---- */

typedef STDCALL int (*ctrl_handler_fn)(uint32_t);
#define MAX_CTRL_HANDLERS 16
static ctrl_handler_fn ctrl_handlers[MAX_CTRL_HANDLERS];
static int ctrl_count;
static pthread_mutex_t ctrl_lock = PTHREAD_MUTEX_INITIALIZER;

static void *ctrl_thread(void *arg)
{
	sigset_t set;
	int sig, handled;

	(void)arg;
	thread_attach(1u << 20);	/* a TEB: the handlers are the program's code */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		handled = 0;
		pthread_mutex_lock(&ctrl_lock);
		for (int i = ctrl_count; i-- > 0 && !handled;)
			handled = ctrl_handlers[i](0);	/* CTRL_C_EVENT */
		pthread_mutex_unlock(&ctrl_lock);
		if (!handled) {	/* as with no handler: the process ends */
			fflush(NULL);
			_exit((int)CONTROL_C_EXIT);
		}
	}
	return NULL;
}

static STDCALL int s_SetConsoleCtrlHandler(ctrl_handler_fn handler, int add)
{
	static int started;
	pthread_t t;
	sigset_t set;

	if (!handler)
		not_implemented("SetConsoleCtrlHandler (ignoring Ctrl-C)");
	pthread_mutex_lock(&ctrl_lock);
	if (!add) {
		for (int i = ctrl_count; i-- > 0;)
			if (ctrl_handlers[i] == handler) {
				memmove(ctrl_handlers + i, ctrl_handlers + i + 1, (size_t)(--ctrl_count - i) * sizeof(*ctrl_handlers));
				pthread_mutex_unlock(&ctrl_lock);
				return 1;
			}
		pthread_mutex_unlock(&ctrl_lock);
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	if (ctrl_count == MAX_CTRL_HANDLERS) {
		pthread_mutex_unlock(&ctrl_lock);
		g_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return 0;
	}
	ctrl_handlers[ctrl_count++] = handler;
	pthread_mutex_unlock(&ctrl_lock);
	if (!started) {
		started = 1;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		pthread_sigmask(SIG_BLOCK, &set, NULL);	/* threads the program starts later inherit it */
		if (pthread_create(&t, NULL, ctrl_thread, NULL))
			die(126, "cannot start the Ctrl-C thread");
		pthread_detach(t);
	}
	return 1;
}

/* CTRL_C_EVENT or CTRL_BREAK_EVENT to a process group started with CREATE_NEW_PROCESS_GROUP: SIGINT. */
static STDCALL int s_GenerateConsoleCtrlEvent(uint32_t event, uint32_t group)
{
	if (event > 1 || !group)
		not_implemented("GenerateConsoleCtrlEvent (to the whole console)");
	return kill(-(pid_t)group, SIGINT) ? fail_with_errno() : 1;
}

/* ---- processor counts and times, jobs, named semaphores ---- */

static STDCALL uint32_t s_GetActiveProcessorCount(uint16_t group)
{
	cpu_set_t set;

	(void)group;
	if (sched_getaffinity(0, sizeof(set), &set))
		return (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	return (uint32_t)CPU_COUNT(&set);
}

/* Idle, kernel (idle included, as Windows counts) and user time of all CPUs from /proc/stat. */
static STDCALL int s_GetSystemTimes(uint64_t *idle, uint64_t *kernel, uint64_t *user)
{
	unsigned long long u, nice, sys, idl, iowait, irq, softirq;
	char line[256] = "";
	FILE *f = fopen("/proc/stat", "re");
	uint64_t tick = 10000000ull / (uint64_t)sysconf(_SC_CLK_TCK);	/* FILETIME units per clock tick */

	if (!f)
		return fail_with_errno();
	if (!fgets(line, sizeof(line), f) || sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu", &u, &nice, &sys,
						    &idl, &iowait, &irq, &softirq) != 7) {
		fclose(f);
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	fclose(f);
	if (idle)
		*idle = (idl + iowait) * tick;
	if (kernel)
		*kernel = (sys + irq + softirq + idl + iowait) * tick;
	if (user)
		*user = (u + nice) * tick;
	return 1;
}

/* This process is in no job object; a job a launcher made answers in launcher.c. */
static STDCALL int s_QueryInformationJobObject(void *job, uint32_t cls, void *info, uint32_t size, uint32_t *ret)
{
	if (job)
		return job_query(job, cls, info, size, ret);	/* launcher.c */
	g_last_error = ERROR_INVALID_HANDLE;
	return 0;
}

/* No named semaphores exist here (only unnamed ones, threads.c). */
static STDCALL void *s_OpenSemaphoreA(uint32_t access, int inherit, const char *name)
{
	(void)access; (void)inherit; (void)name;
	g_last_error = ERROR_FILE_NOT_FOUND;
	return NULL;
}

/* ---- structured exceptions and unwinding: not implemented ---- */

static STDCALL void s_RaiseException(uint32_t code, uint32_t flags, uint32_t nargs, const uintptr_t *args)
{
	(void)flags; (void)nargs; (void)args;
	die(126, "the program raised Windows exception 0x%08x (RaiseException): SEH and C++ exceptions are not "
	    "supported", code);
}

static STDCALL int s_RtlCaptureContext(void) { not_implemented("RtlCaptureContext (SEH)"); }
static STDCALL int s_RtlLookupFunctionEntry(void) { not_implemented("RtlLookupFunctionEntry (SEH)"); }
static STDCALL int s_RtlVirtualUnwind(void) { not_implemented("RtlVirtualUnwind (SEH)"); }
static STDCALL int s_RtlUnwind(void) { not_implemented("RtlUnwind (SEH)"); }
static STDCALL int s_RtlUnwindEx(void) { not_implemented("RtlUnwindEx (SEH)"); }
static STDCALL int s_RtlPcToFileHeader(void) { not_implemented("RtlPcToFileHeader (SEH)"); }
static STDCALL int s_UnhandledExceptionFilter(void) { not_implemented("UnhandledExceptionFilter (SEH)"); }

const struct shim process_shims[] = {
	K("CreateIoCompletionPort", s_CreateIoCompletionPort), K("PostQueuedCompletionStatus", s_PostQueuedCompletionStatus),
	K("GetQueuedCompletionStatus", s_GetQueuedCompletionStatus), K("GetOverlappedResult", s_GetOverlappedResult),
	K("CreateNamedPipeA", s_CreateNamedPipeA), K("ConnectNamedPipe", s_ConnectNamedPipe),
	K("DuplicateHandle", s_DuplicateHandle), K("SetHandleInformation", s_SetHandleInformation),
	K("GetCurrentProcess", s_GetCurrentProcess),
	K("CreateProcessA", s_CreateProcessA), K("GetExitCodeProcess", s_GetExitCodeProcess),
	K("GetProcessId", s_GetProcessId), K("TerminateProcess", s_TerminateProcess),
	K("SetConsoleCtrlHandler", s_SetConsoleCtrlHandler), K("GenerateConsoleCtrlEvent", s_GenerateConsoleCtrlEvent),
	K("GetActiveProcessorCount", s_GetActiveProcessorCount), K("GetSystemTimes", s_GetSystemTimes),
	K("QueryInformationJobObject", s_QueryInformationJobObject), K("OpenSemaphoreA", s_OpenSemaphoreA),
	K("RaiseException", s_RaiseException), K("RtlCaptureContext", s_RtlCaptureContext),
	K("RtlLookupFunctionEntry", s_RtlLookupFunctionEntry), K("RtlVirtualUnwind", s_RtlVirtualUnwind),
	K("RtlUnwind", s_RtlUnwind), K("RtlUnwindEx", s_RtlUnwindEx), K("CreatePipe", s_CreatePipe), K("RtlPcToFileHeader", s_RtlPcToFileHeader),
	K("UnhandledExceptionFilter", s_UnhandledExceptionFilter),
};

SHIM_TABLE_SIZE(process);
