// SPDX-License-Identifier: MIT
/*
 * cerebro._runtime: the CPython binding of the user-space host. Buffers
 * come through the buffer protocol (no numpy C API); the GIL is released
 * while model code runs, and each call takes its own arena from a
 * mutex-protected free list, so one Model serves many threads. A Model made
 * with threads=N > 1 owns a pool of N - 1 workers that split each call with
 * the calling thread; a call that finds the pool busy runs serially.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

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
	pthread_mutex_t lock;		/* guards free_arenas */
	struct arena *free_arenas;
	size_t arena_bytes;
	struct cbx_pool *pool;		/* NULL for threads=1 */
	unsigned int threads;
} ModelObject;

static struct arena *arena_take(ModelObject *self)
{
	struct arena *a;

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
	Py_buffer data;
	int ret;

	if (self->model) {
		PyErr_SetString(PyExc_RuntimeError, "Model is already initialised");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|l:Model", keywords, &data, &threads))
		return -1;
	if (threads < 1 || threads > CEREBRO_MAX_PARTS) {
		PyBuffer_Release(&data);
		PyErr_Format(PyExc_ValueError, "Model: threads must be 1..%d, got %ld", CEREBRO_MAX_PARTS, threads);
		return -1;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = cbx_model_load(&model, data.buf, (size_t)data.len, &err);
	Py_END_ALLOW_THREADS
	PyBuffer_Release(&data);
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
	self->arena_bytes = cbx_model_arena_bytes(model);
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

	while (a) {
		struct arena *next = a->next;

		free(a->memory);
		free(a);
		a = next;
	}
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

/*
 * Runs the model on the buffers in @in_arg and @out_arg: once when @repeats
 * is 0 (returns None), else @repeats times with every stage timed (returns
 * bytes: native uint64 nanoseconds, repeats x num_stages).
 */
static PyObject *run_model(ModelObject *self, PyObject *in_arg, PyObject *out_arg, unsigned int repeats)
{
	const struct cbx_meta *meta;
	PyObject *ins = NULL, *outs = NULL, *result = NULL;
	Py_buffer *views = NULL;
	void **pointers = NULL;
	uint64_t *stage_ns = NULL;
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
	arena = arena_take(self);
	if (!arena) {
		PyErr_NoMemory();
		goto done;
	}
	if (repeats) {
		stage_ns = PyMem_Malloc(sizeof(*stage_ns) * repeats * (meta->num_stages ? meta->num_stages : 1));
		if (!stage_ns) {
			arena_give(self, arena);
			PyErr_NoMemory();
			goto done;
		}
	}
	Py_BEGIN_ALLOW_THREADS
	if (repeats)
		ret = cbx_model_profile(self->model, (const void *const *)pointers,
					(void *const *)(pointers + meta->num_inputs), arena->memory,
					repeats, stage_ns, &err);
	else
		ret = cbx_model_run_pool(self->model, self->pool, (const void *const *)pointers,
					 (void *const *)(pointers + meta->num_inputs), arena->memory, &err);
	Py_END_ALLOW_THREADS
	arena_give(self, arena);
	if (ret) {
		PyErr_SetString(PyExc_RuntimeError, err.msg);
		goto done;
	}
	if (repeats)
		result = PyBytes_FromStringAndSize((const char *)stage_ns,
						   (Py_ssize_t)(sizeof(*stage_ns) * repeats * meta->num_stages));
	else
		result = Py_NewRef(Py_None);
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

static PyObject *Model_run(ModelObject *self, PyObject *args)
{
	PyObject *in_arg, *out_arg;

	if (!PyArg_ParseTuple(args, "OO:run", &in_arg, &out_arg))
		return NULL;
	return run_model(self, in_arg, out_arg, 0);
}

static PyObject *Model_profile(ModelObject *self, PyObject *args)
{
	PyObject *in_arg, *out_arg;
	unsigned int repeats;

	if (!PyArg_ParseTuple(args, "OOI:profile", &in_arg, &out_arg, &repeats))
		return NULL;
	if (repeats == 0 || repeats > 1000000) {
		PyErr_Format(PyExc_ValueError, "profile: repeats must be 1..1000000, got %u", repeats);
		return NULL;
	}
	return run_model(self, in_arg, out_arg, repeats);
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

static PyMethodDef Model_methods[] = {
	{ "run", (PyCFunction)Model_run, METH_VARARGS,
	  "run(inputs, outputs): run every stage; buffers are checked against the meta." },
	{ "profile", (PyCFunction)Model_profile, METH_VARARGS,
	  "profile(inputs, outputs, repeats) -> bytes: run repeats times, each stage timed (uint64 ns)." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef Model_getset[] = {
	{ "meta", (getter)Model_get_meta, NULL, "the raw .cerebro.meta section (bytes)", NULL },
	{ "threads", (getter)Model_get_threads, NULL, "threads one call is split across (int)", NULL },
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
	{ "cpu_features", cpu_features, METH_NOARGS,
	  "cpu_features() -> str: the checkable CPU features of this host, as \"+avx2,+fma\"." },
	{ "align_skip", align_skip, METH_O,
	  "align_skip(buffer) -> int: bytes to skip from the buffer's start to a BUFFER_ALIGN boundary." },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject ModelType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cerebro._runtime.Model",
	.tp_doc = "Model(data: bytes, threads: int = 1): a .cbx image loaded into this process; "
		  "threads > 1 splits each call across a pool (needs meta.parts >= threads).",
	.tp_basicsize = sizeof(ModelObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
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

	if (PyType_Ready(&ModelType) < 0)
		return NULL;
	module = PyModule_Create(&runtime_module);
	if (!module)
		return NULL;
	if (PyModule_AddObjectRef(module, "Model", (PyObject *)&ModelType) < 0 ||
	    PyModule_AddIntConstant(module, "HOST_MACHINE", (long)cbx_host_machine()) < 0 ||
	    PyModule_AddIntConstant(module, "BUFFER_ALIGN", CEREBRO_BUFFER_ALIGN) < 0 ||
	    PyModule_AddIntConstant(module, "MAX_PARTS", CEREBRO_MAX_PARTS) < 0 ||
	    add_sha256_hardware(module) < 0) {
		Py_DECREF(module);
		return NULL;
	}
	return module;
}
