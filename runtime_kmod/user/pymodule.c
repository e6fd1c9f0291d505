// SPDX-License-Identifier: MIT
/*
 * cerebro._runtime: the CPython binding of the user-space host. Buffers
 * come through the buffer protocol (no numpy C API); the GIL is released
 * while model code runs, and each call takes its own arena from a
 * mutex-protected free list, so one Model serves many threads. A Model made
 * with threads=N > 1 owns a pool of N - 1 workers that split each call with
 * the calling thread; a call that finds the pool busy runs serially.
 *
 * Calling a Model (cerebro.runtime.LoadedModel subclasses it) takes a fast
 * path when every input is already a C-contiguous buffer of the right format
 * and shape (a misaligned one is copied in C) and any out= buffers are too,
 * aligned: no Python frame, outputs made in one aligned block each (or none
 * with out=). Anything else goes to the
 * subclass's _call_slow, which copies what it may and names what is wrong.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "host.h"
#include "sha256.h"

struct arena {
	struct arena *next;
	void *memory;
};

typedef struct {
	PyObject_HEAD
	struct cbx_model *model;
	struct arena *_Atomic spare;	/* one arena taken and given back without the lock */
	pthread_mutex_t lock;		/* guards free_arenas */
	struct arena *free_arenas;
	size_t arena_bytes;
	struct cbx_pool *pool;		/* NULL for threads=1 */
	unsigned int threads;
	/* set by bind(): what the fast call path checks and makes */
	PyObject *ndarray;		/* the array type outputs are made as */
	PyObject *formats;		/* tuple: bytes, each tensor's buffer format */
	PyObject *output_specs;		/* tuple: (shape tuple, dtype) per output */
} ModelObject;

/* The memory of one fresh output: CEREBRO_BUFFER_ALIGN-aligned, inline in the object. */
typedef struct {
	PyObject_VAR_HEAD
	Py_ssize_t nbytes;
	char bytes[];
} BlockObject;

static PyTypeObject BlockType;

static void *block_data(BlockObject *block)
{
	uintptr_t at = (uintptr_t)block->bytes;

	return (void *)((at + CEREBRO_BUFFER_ALIGN - 1) & ~(uintptr_t)(CEREBRO_BUFFER_ALIGN - 1));
}

static int Block_getbuffer(BlockObject *self, Py_buffer *view, int flags)
{
	return PyBuffer_FillInfo(view, (PyObject *)self, block_data(self), self->nbytes, 0, flags);
}

static PyBufferProcs Block_as_buffer = {
	.bf_getbuffer = (getbufferproc)Block_getbuffer,
};

static PyTypeObject BlockType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cerebro._runtime.Block",
	.tp_doc = "the aligned memory behind one output array",
	.tp_basicsize = sizeof(BlockObject),
	.tp_itemsize = 1,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_as_buffer = &Block_as_buffer,
};

/* A private copy of a .cbx file (read_file); loading it into a Model moves its weights' pages out. */
typedef struct {
	PyObject_HEAD
	struct cbx_file file;
} FileObject;

static int File_getbuffer(FileObject *self, Py_buffer *view, int flags)
{
	return PyBuffer_FillInfo(view, (PyObject *)self, self->file.data, (Py_ssize_t)self->file.size, 1, flags);
}

static void File_dealloc(FileObject *self)
{
	cbx_file_free(&self->file);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyBufferProcs File_as_buffer = {
	.bf_getbuffer = (getbufferproc)File_getbuffer,
};

static PyTypeObject FileType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cerebro._runtime.File",
	.tp_doc = "a private read-only copy of a .cbx file (read_file); Model(file) takes its weights' pages, "
		  "which then read as zeros",
	.tp_basicsize = sizeof(FileObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_dealloc = (destructor)File_dealloc,
	.tp_as_buffer = &File_as_buffer,
};

/* read_file(fd) -> File: the open file read into private memory (no mapping of the file itself). */
static PyObject *read_file(PyObject *module, PyObject *arg)
{
	struct cbx_error err = { 0 };
	FileObject *self;
	int fd, ret;

	(void)module;
	fd = PyObject_AsFileDescriptor(arg);
	if (fd < 0)
		return NULL;
	self = PyObject_New(FileObject, &FileType);
	if (!self)
		return NULL;
	memset(&self->file, 0, sizeof(self->file));
	Py_BEGIN_ALLOW_THREADS
	ret = cbx_file_read(fd, "the .cbx file", &self->file, &err);
	Py_END_ALLOW_THREADS
	if (ret) {
		Py_DECREF(self);
		PyErr_SetString(ret == CBX_ENOMEM ? PyExc_MemoryError : PyExc_OSError, err.msg);
		return NULL;
	}
	return (PyObject *)self;
}

/*
 * join_file(pieces) -> File: a sequence of buffers joined once into private memory, as read_file reads a
 * file: the compiler's .cbx pieces loaded without a joined bytes first (Model(file) then moves the weights'
 * pages instead of copying them again).
 */
static PyObject *join_file(PyObject *module, PyObject *arg)
{
	struct cbx_error err = { 0 };
	FileObject *self = NULL;
	Py_buffer *views;
	Py_ssize_t count, i, held = 0;
	size_t total = 0, done = 0;
	PyObject *pieces;
	int ret = 0;

	(void)module;
	pieces = PySequence_Fast(arg, "join_file takes a sequence of buffers");
	if (!pieces)
		return NULL;
	count = PySequence_Fast_GET_SIZE(pieces);
	views = PyMem_Calloc((size_t)(count ? count : 1), sizeof(*views));
	if (!views) {
		Py_DECREF(pieces);
		return PyErr_NoMemory();
	}
	for (; held < count; held++) {
		if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(pieces, held), &views[held], PyBUF_C_CONTIGUOUS) < 0)
			goto out;
		total += (size_t)views[held].len;
	}
	self = PyObject_New(FileObject, &FileType);
	if (!self)
		goto out;
	Py_BEGIN_ALLOW_THREADS
	ret = cbx_file_alloc(&self->file, total, &err);
	for (i = 0; !ret && i < count; i++) {
		memcpy(self->file.data + done, views[i].buf, (size_t)views[i].len);
		done += (size_t)views[i].len;
	}
	Py_END_ALLOW_THREADS
	if (ret) {
		Py_CLEAR(self);
		PyErr_SetString(PyExc_MemoryError, err.msg);
	}
out:
	while (held > 0)
		PyBuffer_Release(&views[--held]);
	PyMem_Free(views);
	Py_DECREF(pieces);
	return (PyObject *)self;
}

static struct arena *arena_take(ModelObject *self)
{
	struct arena *a = atomic_exchange_explicit(&self->spare, NULL, memory_order_acquire);

	if (a)
		return a;
	pthread_mutex_lock(&self->lock);
	a = self->free_arenas;
	if (a)
		self->free_arenas = a->next;
	pthread_mutex_unlock(&self->lock);
	if (a)
		return a;
	a = malloc(sizeof(*a));
	if (!a)
		return NULL;
	if (posix_memalign(&a->memory, CEREBRO_BUFFER_ALIGN, self->arena_bytes) != 0) {
		free(a);
		return NULL;
	}
	return a;
}

static void arena_give(ModelObject *self, struct arena *a)
{
	struct arena *none = NULL;

	if (atomic_compare_exchange_strong_explicit(&self->spare, &none, a, memory_order_release,
						    memory_order_relaxed))
		return;
	pthread_mutex_lock(&self->lock);
	a->next = self->free_arenas;
	self->free_arenas = a;
	pthread_mutex_unlock(&self->lock);
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kwargs)
{
	static char *keywords[] = { "data", "threads", NULL };
	struct cbx_error err = { 0 };
	struct cbx_model *model;
	struct cbx_pool *pool = NULL;
	long threads = 1;
	PyObject *source;
	Py_buffer data;
	int ret;

	if (self->model) {
		PyErr_SetString(PyExc_RuntimeError, "Model is already initialised");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|l:Model", keywords, &source, &threads))
		return -1;
	if (threads < 1 || threads > CEREBRO_MAX_PARTS) {
		PyErr_Format(PyExc_ValueError, "Model: threads must be 1..%d, got %ld", CEREBRO_MAX_PARTS, threads);
		return -1;
	}
	if (Py_IS_TYPE(source, &FileType)) {	/* checked as bytes are; its weights' pages move into the model */
		Py_BEGIN_ALLOW_THREADS
		ret = cbx_model_load_file(&model, &((FileObject *)source)->file, &err);
		Py_END_ALLOW_THREADS
	} else {
		if (PyObject_GetBuffer(source, &data, PyBUF_SIMPLE) != 0)
			return -1;
		Py_BEGIN_ALLOW_THREADS
		ret = cbx_model_load(&model, data.buf, (size_t)data.len, &err);
		Py_END_ALLOW_THREADS
		PyBuffer_Release(&data);
	}
	if (ret) {
		PyErr_SetString(ret == CBX_ENOMEM ? PyExc_MemoryError : PyExc_ValueError, err.msg);
		return -1;
	}
	ret = cbx_model_pool_create(&pool, model, (unsigned int)threads, &err);
	if (ret) {
		PyErr_SetString(ret == CBX_ENOMEM ? PyExc_MemoryError : PyExc_ValueError, err.msg);
		cbx_model_free(model);
		return -1;
	}
	self->model = model;
	self->pool = pool;
	self->threads = (unsigned int)threads;
	self->arena_bytes = cbx_model_arena_bytes(model, pool);
	return 0;
}

static PyObject *Model_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
	ModelObject *self = (ModelObject *)type->tp_alloc(type, 0);

	(void)args;
	(void)kwargs;
	if (!self)
		return NULL;
	pthread_mutex_init(&self->lock, NULL);
	return (PyObject *)self;
}

static void Model_dealloc(ModelObject *self)
{
	struct arena *a = self->free_arenas;

	if (self->spare) {
		self->spare->next = a;
		a = self->spare;
	}
	while (a) {
		struct arena *next = a->next;

		free(a->memory);
		free(a);
		a = next;
	}
	Py_XDECREF(self->ndarray);
	Py_XDECREF(self->formats);
	Py_XDECREF(self->output_specs);
	cbx_pool_destroy(self->pool);
	cbx_model_free(self->model);
	pthread_mutex_destroy(&self->lock);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Gets buffer @index of @seq, checked against tensor record @t. */
static int get_tensor_buffer(PyObject *seq, Py_ssize_t index, const struct cbx_tensor *t,
			     int writable, Py_buffer *view)
{
	PyObject *item = PySequence_Fast_GET_ITEM(seq, index);
	const char *role = writable ? "output" : "input";
	int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);

	if (PyObject_GetBuffer(item, view, flags) != 0) {
		PyErr_Format(PyExc_ValueError, "%s '%s' (#%zd): need a C-contiguous%s buffer",
			     role, t->name, index, writable ? " writable" : "");
		return -1;
	}
	if ((uint64_t)view->len != t->nbytes) {
		PyErr_Format(PyExc_ValueError, "%s '%s' (#%zd): expected %llu bytes, got %zd",
			     role, t->name, index, (unsigned long long)t->nbytes, view->len);
		PyBuffer_Release(view);
		return -1;
	}
	if ((uintptr_t)view->buf % CEREBRO_BUFFER_ALIGN != 0) {
		PyErr_Format(PyExc_ValueError, "%s '%s' (#%zd): buffer is not %d-byte aligned",
			     role, t->name, index, CEREBRO_BUFFER_ALIGN);
		PyBuffer_Release(view);
		return -1;
	}
	return 0;
}

/* Runs one call on @pointers (inputs, then outputs) with the GIL released; -1 with an exception set. */
static int run_pointers(ModelObject *self, void **pointers)
{
	struct cbx_error err = { 0 };
	struct arena *arena = arena_take(self);
	int ret;

	if (!arena) {
		PyErr_NoMemory();
		return -1;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = cbx_model_run_pool(self->model, self->pool, (const void *const *)pointers,
				 (void *const *)(pointers + self->model->meta.num_inputs), arena->memory, &err);
	Py_END_ALLOW_THREADS
	arena_give(self, arena);
	if (ret) {
		PyErr_SetString(PyExc_RuntimeError, err.msg);
		return -1;
	}
	return 0;
}

/*
 * Runs the model on the buffers in @in_arg and @out_arg: once when @repeats
 * is 0 (returns None), else @repeats times with every stage timed (returns
 * bytes: native uint64 nanoseconds, repeats x num_stages) or, @per_step,
 * split across the pool with every step timed (repeats x the call's steps).
 */
static PyObject *run_model(ModelObject *self, PyObject *in_arg, PyObject *out_arg, unsigned int repeats,
			   bool per_step)
{
	const struct cbx_meta *meta;
	PyObject *ins = NULL, *outs = NULL, *result = NULL;
	Py_buffer *views = NULL;
	void **pointers = NULL;
	uint64_t *stage_ns = NULL;
	uint32_t columns, steps = 0;
	Py_ssize_t count, taken = 0, i;
	struct cbx_error err = { 0 };
	struct arena *arena;
	int ret;

	if (!self->model) {
		PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");
		return NULL;
	}
	meta = &self->model->meta;
	ins = PySequence_Fast(in_arg, "run: inputs must be a tuple of buffers");
	outs = ins ? PySequence_Fast(out_arg, "run: outputs must be a tuple of buffers") : NULL;
	if (!outs)
		goto done;
	if (PySequence_Fast_GET_SIZE(ins) != meta->num_inputs ||
	    PySequence_Fast_GET_SIZE(outs) != meta->num_outputs) {
		PyErr_Format(PyExc_ValueError, "run: expected %u inputs and %u outputs, got %zd and %zd",
			     meta->num_inputs, meta->num_outputs, PySequence_Fast_GET_SIZE(ins),
			     PySequence_Fast_GET_SIZE(outs));
		goto done;
	}
	count = (Py_ssize_t)meta->num_inputs + meta->num_outputs;
	views = PyMem_Malloc(sizeof(*views) * count);
	pointers = PyMem_Malloc(sizeof(*pointers) * count);
	if (!views || !pointers) {
		PyErr_NoMemory();
		goto done;
	}
	for (i = 0; i < count; i++) {
		int is_output = i >= (Py_ssize_t)meta->num_inputs;
		PyObject *seq = is_output ? outs : ins;
		Py_ssize_t index = is_output ? i - meta->num_inputs : i;

		if (get_tensor_buffer(seq, index, &self->model->tensors[i], is_output, &views[i]) != 0)
			goto done;
		pointers[i] = views[i].buf;
		taken++;
	}
	if (!repeats) {
		if (run_pointers(self, pointers) == 0)
			result = Py_NewRef(Py_None);
		goto done;
	}
	arena = arena_take(self);
	columns = meta->num_stages ? meta->num_stages : 1;
	if (per_step && arena) {	/* one call first, to count its steps (the meta does not say) */
		stage_ns = PyMem_Malloc(sizeof(*stage_ns) * CBX_MAX_STAGES);
		if (!stage_ns) {
			arena_give(self, arena);
			PyErr_NoMemory();
			goto done;
		}
		Py_BEGIN_ALLOW_THREADS
		ret = cbx_model_profile_pool(self->model, self->pool, (const void *const *)pointers,
					     (void *const *)(pointers + meta->num_inputs), arena->memory,
					     1, stage_ns, CBX_MAX_STAGES, &columns, &err);
		Py_END_ALLOW_THREADS
		PyMem_Free(stage_ns);
		stage_ns = NULL;
		if (ret) {
			arena_give(self, arena);
			PyErr_SetString(PyExc_RuntimeError, err.msg);
			goto done;
		}
	}
	stage_ns = PyMem_Malloc(sizeof(*stage_ns) * repeats * columns);
	if (!arena || !stage_ns) {
		if (arena)
			arena_give(self, arena);
		PyErr_NoMemory();
		goto done;
	}
	Py_BEGIN_ALLOW_THREADS
	if (per_step)
		ret = cbx_model_profile_pool(self->model, self->pool, (const void *const *)pointers,
					     (void *const *)(pointers + meta->num_inputs), arena->memory,
					     repeats, stage_ns, columns, &steps, &err);
	else
		ret = cbx_model_profile(self->model, (const void *const *)pointers,
					(void *const *)(pointers + meta->num_inputs), arena->memory,
					repeats, stage_ns, &err);
	Py_END_ALLOW_THREADS
	arena_give(self, arena);
	if (!per_step)
		steps = meta->num_stages;
	if (ret)
		PyErr_SetString(PyExc_RuntimeError, err.msg);
	else
		result = PyBytes_FromStringAndSize((const char *)stage_ns,
						   (Py_ssize_t)(sizeof(*stage_ns) * repeats * steps));
done:
	for (i = 0; i < taken; i++)
		PyBuffer_Release(&views[i]);
	PyMem_Free(stage_ns);
	PyMem_Free(views);
	PyMem_Free(pointers);
	Py_XDECREF(ins);
	Py_XDECREF(outs);
	return result;
}

static PyObject *Model_run(ModelObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs != 2) {
		PyErr_Format(PyExc_TypeError, "run() takes 2 arguments (inputs, outputs), got %zd", nargs);
		return NULL;
	}
	return run_model(self, args[0], args[1], 0, false);
}

static int misaligned(const void *p)
{
	return (uintptr_t)p % CEREBRO_BUFFER_ALIGN != 0;
}

/*
 * The fast path's test of one buffer: @t's size, shape and @format; an
 * output must also be aligned (an input that is not gets an aligned copy).
 */
static int buffer_fits(const Py_buffer *view, const struct cbx_tensor *t, PyObject *format, int is_output)
{
	int d;

	if ((uint64_t)view->len != t->nbytes || (is_output && misaligned(view->buf)) ||
	    view->ndim != (int)t->rank || !view->format || strcmp(view->format, PyBytes_AS_STRING(format)) != 0)
		return 0;
	for (d = 0; d < view->ndim; d++) {
		if ((uint64_t)view->shape[d] != t->dims[d])
			return 0;
	}
	return 1;
}

/* @obj's buffer if it fits @t as it is (1), else 0 with nothing held and no exception. */
static int fast_buffer(PyObject *obj, const struct cbx_tensor *t, PyObject *format, int writable,
		       Py_buffer *view)
{
	if (PyObject_GetBuffer(obj, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0))) {
		PyErr_Clear();
		return 0;
	}
	if (buffer_fits(view, t, format, writable))
		return 1;
	PyBuffer_Release(view);
	return 0;
}

static int overlap(const Py_buffer *a, const Py_buffer *b)
{
	const char *a0 = a->buf, *b0 = b->buf;

	return a->len && b->len && a0 < b0 + b->len && b0 < a0 + a->len;
}

/* Fresh output arrays (a list), each on its own aligned block; their data pointers go to @pointers. */
static PyObject *make_outputs(ModelObject *self, void **pointers)
{
	const struct cbx_meta *meta = &self->model->meta;
	PyObject *list = PyList_New(meta->num_outputs);
	uint32_t i;

	for (i = 0; list && i < meta->num_outputs; i++) {
		Py_ssize_t nbytes = (Py_ssize_t)self->model->tensors[meta->num_inputs + i].nbytes;
		PyObject *spec = PyTuple_GET_ITEM(self->output_specs, i);
		PyObject *args[3];
		BlockObject *block;
		PyObject *array;

		block = PyObject_NewVar(BlockObject, &BlockType, nbytes + CEREBRO_BUFFER_ALIGN - 1);
		if (!block) {
			Py_CLEAR(list);
			break;
		}
		block->nbytes = nbytes;
		pointers[i] = block_data(block);
		args[0] = PyTuple_GET_ITEM(spec, 0);
		args[1] = PyTuple_GET_ITEM(spec, 1);
		args[2] = (PyObject *)block;
		array = PyObject_Vectorcall(self->ndarray, args, 3, NULL);
		Py_DECREF(block);
		if (!array)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, i, array);
	}
	return list;
}

static PyObject *str_out, *str_call_slow;

#define FAST_TENSORS 16		/* the fast path keeps this many buffers on the stack */

/* Room for @len bytes up to the next aligned address (an empty buffer still gets an address of its own). */
static size_t aligned_size(Py_ssize_t len)
{
	return ((size_t)len + CEREBRO_BUFFER_ALIGN) & ~(size_t)(CEREBRO_BUFFER_ALIGN - 1);
}

/*
 * Gives each misaligned input of @views an aligned copy in one block
 * (*@staging, freed by the caller) and points @pointers at it: numpy's
 * arrays are only 16-byte aligned, and the Python copy costs ~10 us a call.
 * -1 with MemoryError set if the block cannot be had.
 */
static int stage_inputs(const Py_buffer *views, void **pointers, Py_ssize_t inputs, void **staging)
{
	size_t total = 0;
	char *at;
	Py_ssize_t i;

	for (i = 0; i < inputs; i++)
		total += misaligned(pointers[i]) ? aligned_size(views[i].len) : 0;
	if (!total)
		return 0;
	if (posix_memalign(staging, CEREBRO_BUFFER_ALIGN, total) != 0) {
		*staging = NULL;
		PyErr_NoMemory();
		return -1;
	}
	at = *staging;
	for (i = 0; i < inputs; i++) {
		if (!misaligned(pointers[i]))
			continue;
		memcpy(at, views[i].buf, (size_t)views[i].len);
		pointers[i] = at;
		at += aligned_size(views[i].len);
	}
	return 0;
}

/*
 * Runs on @args (and @out, a tuple or list of output buffers, or NULL for
 * fresh arrays) if every buffer fits as it is; returns the outputs as a list.
 * NULL with no exception set: something did not fit (nothing ran).
 */
static PyObject *call_fast(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *out)
{
	const struct cbx_meta *meta = &self->model->meta;
	Py_ssize_t inputs = meta->num_inputs, count = inputs + meta->num_outputs;
	Py_buffer views[FAST_TENSORS];
	void *pointers[FAST_TENSORS];
	PyObject *result = NULL;
	void *staging = NULL;
	Py_ssize_t taken = 0, i, j;

	if (count > FAST_TENSORS || nargs != inputs)
		return NULL;
	if (out && (!(PyTuple_CheckExact(out) || PyList_CheckExact(out)) ||
		    PySequence_Fast_GET_SIZE(out) != meta->num_outputs))
		return NULL;
	for (i = 0; i < (out ? count : inputs); i++) {
		int is_output = i >= inputs;
		PyObject *obj = is_output ? PySequence_Fast_GET_ITEM(out, i - inputs) : args[i];

		if (!fast_buffer(obj, &self->model->tensors[i], PyTuple_GET_ITEM(self->formats, i), is_output,
				 &views[i]))
			goto release;
		taken++;
		for (j = 0; is_output && j < i; j++) {
			if (overlap(&views[i], &views[j]))
				goto release;
		}
		pointers[i] = views[i].buf;
	}
	if (stage_inputs(views, pointers, inputs, &staging))
		goto release;
	result = out ? PySequence_List(out) : make_outputs(self, pointers + inputs);
	if (result && run_pointers(self, pointers) != 0)
		Py_CLEAR(result);
release:
	free(staging);
	for (i = 0; i < taken; i++)
		PyBuffer_Release(&views[i]);
	return result;
}

static int check_bound(ModelObject *self)
{
	if (self->model && self->output_specs)
		return 0;
	PyErr_SetString(PyExc_TypeError, "call a cerebro.runtime.LoadedModel, not a bare _runtime.Model");
	return -1;
}

/*
 * Model(*inputs, out=None) -> list of outputs: the fast path, else
 * self._call_slow(*inputs, out=...), which copies what it may and names
 * what is wrong.
 */
static PyObject *Model_call(ModelObject *self, PyObject *args, PyObject *kwargs)
{
	PyObject *out = NULL, *result, *slow;

	if (check_bound(self))
		return NULL;
	if (kwargs && PyDict_GET_SIZE(kwargs) == 1)
		out = PyDict_GetItemWithError(kwargs, str_out);
	if (!kwargs || !PyDict_GET_SIZE(kwargs) || out) {
		result = call_fast(self, PySequence_Fast_ITEMS(args), PyTuple_GET_SIZE(args), out);
		if (result || PyErr_Occurred())
			return result;
	}
	slow = PyObject_GetAttr((PyObject *)self, str_call_slow);
	if (!slow)
		return NULL;
	result = PyObject_Call(slow, args, kwargs);
	Py_DECREF(slow);
	return result;
}

/* fast(*inputs) -> list of outputs, or None (nothing run) unless every input fits as it is. */
static PyObject *Model_fast(ModelObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	PyObject *result;

	if (check_bound(self))
		return NULL;
	result = call_fast(self, args, nargs, NULL);
	if (result || PyErr_Occurred())
		return result;
	Py_RETURN_NONE;
}

/*
 * bind(ndarray, formats, output_specs): what calls check and make. formats:
 * each tensor's (inputs, then outputs) buffer format as bytes (b"" if it has
 * none: such a tensor always takes the slow path); output_specs: a (shape,
 * dtype) pair per output, passed to ndarray(shape, dtype, buffer).
 */
static PyObject *Model_bind(ModelObject *self, PyObject *args)
{
	PyObject *ndarray, *formats, *specs;
	Py_ssize_t i;

	if (!PyArg_ParseTuple(args, "OO!O!:bind", &ndarray, &PyTuple_Type, &formats, &PyTuple_Type, &specs))
		return NULL;
	if (!self->model) {
		PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");
		return NULL;
	}
	if (PyTuple_GET_SIZE(formats) != (Py_ssize_t)self->model->meta.num_inputs + self->model->meta.num_outputs ||
	    PyTuple_GET_SIZE(specs) != (Py_ssize_t)self->model->meta.num_outputs) {
		PyErr_SetString(PyExc_ValueError, "bind: one format per tensor and one spec per output");
		return NULL;
	}
	for (i = 0; i < PyTuple_GET_SIZE(formats); i++) {
		if (!PyBytes_Check(PyTuple_GET_ITEM(formats, i))) {
			PyErr_SetString(PyExc_TypeError, "bind: formats must be bytes");
			return NULL;
		}
	}
	for (i = 0; i < PyTuple_GET_SIZE(specs); i++) {
		PyObject *spec = PyTuple_GET_ITEM(specs, i);

		if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2) {
			PyErr_SetString(PyExc_TypeError, "bind: output specs must be (shape, dtype) pairs");
			return NULL;
		}
	}
	Py_XSETREF(self->ndarray, Py_NewRef(ndarray));
	Py_XSETREF(self->formats, Py_NewRef(formats));
	Py_XSETREF(self->output_specs, Py_NewRef(specs));
	Py_RETURN_NONE;
}

static PyObject *Model_profile(ModelObject *self, PyObject *args)
{
	PyObject *in_arg, *out_arg;
	unsigned int repeats;
	int per_step = 0;

	if (!PyArg_ParseTuple(args, "OOI|p:profile", &in_arg, &out_arg, &repeats, &per_step))
		return NULL;
	if (repeats == 0 || repeats > 1000000) {
		PyErr_Format(PyExc_ValueError, "profile: repeats must be 1..1000000, got %u", repeats);
		return NULL;
	}
	if (per_step && !self->pool) {
		PyErr_SetString(PyExc_ValueError, "profile: per_step needs a Model made with threads >= 2");
		return NULL;
	}
	return run_model(self, in_arg, out_arg, repeats, per_step);
}

/* How the pool's calls ran (pool.h enum cbx_pool_count), or None without a pool. */
static PyObject *Model_pool_stats(ModelObject *self, PyObject *unused)
{
	uint64_t counts[CBX_POOL_COUNTS];
	PyObject *tuple;
	unsigned int i;

	(void)unused;
	if (!self->pool)
		Py_RETURN_NONE;
	cbx_pool_stats(self->pool, counts);
	tuple = PyTuple_New(CBX_POOL_COUNTS);
	for (i = 0; tuple && i < CBX_POOL_COUNTS; i++) {
		PyObject *value = PyLong_FromUnsignedLongLong(counts[i]);

		if (!value) {
			Py_CLEAR(tuple);
			break;
		}
		PyTuple_SET_ITEM(tuple, i, value);
	}
	return tuple;
}

static PyObject *Model_get_meta(ModelObject *self, void *closure)
{
	(void)closure;
	if (!self->model) {
		PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");
		return NULL;
	}
	return PyBytes_FromStringAndSize(self->model->meta_bytes, (Py_ssize_t)self->model->meta_len);
}

static PyObject *Model_get_threads(ModelObject *self, void *closure)
{
	(void)closure;
	if (!self->model) {
		PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");
		return NULL;
	}
	return PyLong_FromUnsignedLong(self->threads);
}

static PyObject *Model_get_arena_bytes(ModelObject *self, void *closure)
{
	(void)closure;
	if (!self->model) {
		PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");
		return NULL;
	}
	return PyLong_FromSize_t(self->arena_bytes);
}

static PyMethodDef Model_methods[] = {
	{ "run", (PyCFunction)(void (*)(void))Model_run, METH_FASTCALL,
	  "run(inputs, outputs): run every stage; buffers are checked against the meta." },
	{ "profile", (PyCFunction)Model_profile, METH_VARARGS,
	  "profile(inputs, outputs, repeats, per_step=False) -> bytes: run repeats times, each stage timed (uint64 ns); "
	  "per_step: split across the threads, each step timed." },
	{ "fast", (PyCFunction)(void (*)(void))Model_fast, METH_FASTCALL,
	  "fast(*inputs) -> list | None: a call if every input fits (dtype, shape, C order; misaligned ones are copied), else None." },
	{ "pool_stats", (PyCFunction)Model_pool_stats, METH_NOARGS,
	  "pool_stats() -> tuple | None: calls run shared, alone, tries of the other way, switches to alone, "
	  "to shared (None: threads=1)." },
	{ "bind", (PyCFunction)Model_bind, METH_VARARGS,
	  "bind(ndarray, formats, output_specs): what a call checks its buffers against and makes outputs as." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef Model_getset[] = {
	{ "raw_meta", (getter)Model_get_meta, NULL, "the raw .cerebro.meta section (bytes)", NULL },
	{ "threads", (getter)Model_get_threads, NULL, "threads one call is split across (int)", NULL },
	{ "arena_bytes", (getter)Model_get_arena_bytes, NULL,
	  "bytes of each call's arena: the regions this Model's threads use (int)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

/* Bytes from the start of @obj's buffer to the next aligned address. */
static PyObject *align_skip(PyObject *module, PyObject *obj)
{
	Py_buffer view;
	uintptr_t address;

	(void)module;
	if (PyObject_GetBuffer(obj, &view, PyBUF_RECORDS_RO) != 0)
		return NULL;
	address = (uintptr_t)view.buf;
	PyBuffer_Release(&view);
	return PyLong_FromSize_t((CEREBRO_BUFFER_ALIGN - address % CEREBRO_BUFFER_ALIGN) % CEREBRO_BUFFER_ALIGN);
}

static PyObject *cpu_features(PyObject *module, PyObject *unused)
{
	char text[512];

	(void)module;
	(void)unused;
	cbx_cpu_describe(text, sizeof(text));
	return PyUnicode_FromString(text);
}

/* The runtime's own SHA-256 (the one that checks a .cbx at load), so tests can hold it to hashlib. */
static PyObject *sha256(PyObject *module, PyObject *obj)
{
	struct cbx_sha256 ctx;
	uint8_t digest[CBX_SHA256_LEN];
	Py_buffer view;

	(void)module;
	if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) != 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	cbx_sha256_init(&ctx);
	cbx_sha256_update(&ctx, view.buf, (uint64_t)view.len);
	cbx_sha256_final(&ctx, digest);
	Py_END_ALLOW_THREADS
	PyBuffer_Release(&view);
	return PyBytes_FromStringAndSize((const char *)digest, CBX_SHA256_LEN);
}

/* SHA256_HARDWARE: the instructions that sha256() and loading use ("x86 SHA-NI"), or None. */
static int add_sha256_hardware(PyObject *module)
{
	const char *name = cbx_port_sha256_hardware();
	PyObject *value = name ? PyUnicode_FromString(name) : Py_NewRef(Py_None);
	int ret;

	if (!value)
		return -1;
	ret = PyModule_AddObjectRef(module, "SHA256_HARDWARE", value);
	Py_DECREF(value);
	return ret;
}

static PyMethodDef module_methods[] = {
	{ "sha256", sha256, METH_O,
	  "sha256(buffer) -> bytes: the digest as the runtime computes it when it checks a .cbx." },
	{ "join_file", join_file, METH_O,
	  "join_file(pieces) -> File: buffers joined into a private copy for Model, as read_file reads a file." },
	{ "read_file", read_file, METH_O,
	  "read_file(fd) -> File: a private copy of the open .cbx file for Model (OSError if it cannot be read)." },
	{ "cpu_features", cpu_features, METH_NOARGS,
	  "cpu_features() -> str: the checkable CPU features of this host, as \"+avx2,+fma\"." },
	{ "align_skip", align_skip, METH_O,
	  "align_skip(buffer) -> int: bytes to skip from the buffer's start to a BUFFER_ALIGN boundary." },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject ModelType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cerebro._runtime.Model",
	.tp_doc = "Model(data: bytes or File, threads: int = 1): a .cbx image loaded into this process; "
		  "threads > 1 splits each call across a pool (needs meta.parts >= threads).",
	.tp_basicsize = sizeof(ModelObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_call = (ternaryfunc)Model_call,
	.tp_new = Model_new,
	.tp_init = (initproc)Model_init,
	.tp_dealloc = (destructor)Model_dealloc,
	.tp_methods = Model_methods,
	.tp_getset = Model_getset,
};

static struct PyModuleDef runtime_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "cerebro._runtime",
	.m_doc = "The Cerebro user-space runtime: load .cbx images and run them.",
	.m_size = -1,
	.m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__runtime(void)
{
	PyObject *module;

	if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&BlockType) < 0 || PyType_Ready(&FileType) < 0)
		return NULL;
	str_out = PyUnicode_InternFromString("out");
	str_call_slow = PyUnicode_InternFromString("_call_slow");
	if (!str_out || !str_call_slow)
		return NULL;
	module = PyModule_Create(&runtime_module);
	if (!module)
		return NULL;
	if (PyModule_AddObjectRef(module, "Model", (PyObject *)&ModelType) < 0 ||
	    PyModule_AddObjectRef(module, "File", (PyObject *)&FileType) < 0 ||
	    PyModule_AddIntConstant(module, "HOST_MACHINE", (long)cbx_host_machine()) < 0 ||
	    PyModule_AddIntConstant(module, "BUFFER_ALIGN", CEREBRO_BUFFER_ALIGN) < 0 ||
	    PyModule_AddIntConstant(module, "MAX_PARTS", CEREBRO_MAX_PARTS) < 0 ||
	    add_sha256_hardware(module) < 0) {
		Py_DECREF(module);
		return NULL;
	}
	return module;
}
