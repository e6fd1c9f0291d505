/* SPDX-License-Identifier: MIT */
/*
 * Shared state of cerebro.ko: registered models, per-file handles, the
 * in-kernel pre/post-processing and the FPU-only helpers.
 */
#ifndef CEREBRO_INTERNAL_H
#define CEREBRO_INTERNAL_H

#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/stdarg.h>
#include <linux/types.h>
#include <cerebro/cbx.h>
#include <cerebro/uapi.h>

#include "cerebro_model.h"
#include "elf64.h"

/* ELF e_machine of the models we run: this kernel's own */
#ifdef CONFIG_ARM64
#define CEREBRO_MACHINE_SELF CBX_EM_AARCH64
#else
#define CEREBRO_MACHINE_SELF CBX_EM_X86_64
#endif

#define CEREBRO_MSG_LEN CEREBRO_ERROR_LEN
#define CEREBRO_NUM_LEN 32

/*
 * Where refusals leave their one-line reason (cerebro_report.c): each open
 * file of /dev/cerebro has one (its ioctls), each model directory in sysfs
 * has one (writes to that model's files) and /sys/kernel/cerebro has one
 * (writes to model_path and unload).
 */
struct cerebro_error {
	spinlock_t lock;
	u32 reports;		/* lines recorded so far */
	int errno_value;	/* positive errno of the last refusal (files only) */
	char msg[CEREBRO_MSG_LEN];
};

/* Options set through sysfs, applied in the kernel on every call. */
struct cerebro_options {
	u32 scale_bits;		/* f32 bits: input = input * scale + offset */
	u32 offset_bits;
	char scale_text[CEREBRO_NUM_LEN];
	char offset_text[CEREBRO_NUM_LEN];
	u32 post;		/* enum cerebro_post */
	u32 topk;		/* k for CEREBRO_POST_TOPK */
};

/* One registered model module. Lives until its module unregisters. */
struct cerebro_model {
	struct list_head node;
	struct kobject kobj;			/* /sys/kernel/cerebro/models/<module> */
	const struct cerebro_model_desc *desc;	/* valid while registered */
	struct cbx_meta meta;			/* header copy */
	struct cbx_tensor *tensors;		/* inputs, then outputs */
	char module_name[MODULE_NAME_LEN];
	int users;				/* handles + default pin; under cerebro_lock */

	struct cerebro_error error;		/* refused writes to its sysfs files */
	spinlock_t lock;			/* options and stats below */
	struct cerebro_options opts;
	u64 calls;
	u64 total_ns;
	u64 max_fpu_ns;
};

/* A model opened through one file; owns its buffers. */
struct cerebro_handle {
	struct cerebro_model *model;
	void *block;		/* arena, inputs, outputs, post buffer */
	void *arena;
	void **inputs;
	void **outputs;
	void *post;		/* output 0 after post-processing */
	bool has_results;
	struct cerebro_tensor_info result0;	/* output 0 as last computed */
	u32 result_post;			/* the post-processing it got */
};

struct cerebro_cmd;

struct cerebro_file {
	struct mutex lock;
	struct cerebro_handle *handles[CEREBRO_MAX_HANDLES];
	struct cerebro_cmd *cmd;	/* read()/write() channel; at first use, under lock */
	struct cerebro_error error;	/* LAST_ERROR; has its own lock */
};

extern struct mutex cerebro_lock;

/* cerebro_report.c: escapes the line, keeps it in @error, logs it rate-limited. */
void cerebro_error_init(struct cerebro_error *error);
void cerebro_report(struct cerebro_error *error, const char *who, const char *fmt, ...)
	__printf(3, 4);
void cerebro_vreport(struct cerebro_error *error, const char *who, const char *fmt,
		     va_list args);
/* A call that failed with @err (< 0); says so if the call recorded no line since @reports. */
void cerebro_error_failed(struct cerebro_error *error, u32 reports, const char *op, int err);
u32 cerebro_error_reports(struct cerebro_error *error);
int cerebro_error_read(struct cerebro_error *error, char *msg, size_t len);

/* cerebro_registry.c */
struct cerebro_model *cerebro_model_get_by_hash(const u8 *hash);
void cerebro_model_put(struct cerebro_model *model);
int cerebro_registry_init(struct kobject *parent);
void cerebro_registry_exit(void);
void cerebro_model_account(struct cerebro_model *model, u64 ns, u64 max_fpu_ns);
/* Caller holds cerebro_lock and uses the result only until it drops it. */
struct cerebro_model *cerebro_model_find_by_name(const char *name);
/* One "ROLE NAME DTYPE[dims] BYTES\n" line (sysfs signature, the channel's INFO). */
int cerebro_format_tensor(char *line, size_t size, const char *role, const struct cbx_tensor *t);
#define CEREBRO_TENSOR_LINE (CBX_NAME_LEN + CBX_MAX_RANK * 21 + 48)

/*
 * cerebro_load.c: read, validate, bind; returns a model with a user ref.
 * A refusal is recorded in @error: the caller's (an open file's, or sysfs's).
 */
struct cerebro_model *cerebro_load_path(const char *path, struct cerebro_error *error);

/*
 * cerebro_main.c: what the ioctls and the command channel share. Refusals
 * go to @cf's error; the run and output helpers need @cf->lock held.
 */
int cerebro_file_lock(struct cerebro_file *cf, const char *op);
/* @path NULL: the default model. */
struct cerebro_handle *cerebro_handle_open(struct cerebro_file *cf, const char *path);
void cerebro_handle_destroy(struct cerebro_handle *h);
/* Pre-processing, every stage, post-processing on the inputs already in @h. */
int cerebro_handle_run(struct cerebro_file *cf, struct cerebro_handle *h, u64 start_ns);
/* Output @i of the last successful run and its size. */
const void *cerebro_handle_output(const struct cerebro_handle *h, u32 i, u64 *nbytes);
/* Tensor @i of the signature as a handle sees it (output 0 after post-processing). */
void cerebro_tensor_record(const struct cerebro_model *model, const struct cerebro_options *opts,
			   u32 i, struct cerebro_tensor_info *rec);

/* cerebro_cmd.c: the text command channel (read/write on /dev/cerebro). */
struct file;
ssize_t cerebro_cmd_write(struct file *file, const char __user *buf, size_t count,
			  loff_t *ppos);
ssize_t cerebro_cmd_read(struct file *file, char __user *buf, size_t count, loff_t *ppos);
void cerebro_cmd_release(struct cerebro_file *cf);

/* cerebro_sysfs.c */
int cerebro_sysfs_init(void);
void cerebro_sysfs_exit(void);
struct cerebro_model *cerebro_default_get(void);

/* cerebro_cpu.c: 0 if this CPU has every "+feature" in @features. */
int cerebro_cpu_check(const char *features, char *why, size_t why_len);

/* cerebro_post.c: output 0 after post-processing @opts. */
int cerebro_post_signature(const struct cbx_tensor *out0,
			   const struct cerebro_options *opts,
			   struct cerebro_tensor_info *info, char *why,
			   size_t why_len);
/* Both return their longest FPU section in ns (each is bounded, see there). */
u64 cerebro_preprocess(struct cerebro_handle *h, const struct cerebro_options *opts);
u64 cerebro_postprocess(struct cerebro_handle *h, const struct cerebro_options *opts);

/* cerebro_fp.c: float code; call only between kernel_fpu_begin/end. */
u32 cerebro_fp_decimal(s64 mantissa, int exp10);
void cerebro_fp_affine(float *x, u64 n, u32 scale_bits, u32 offset_bits);
u64 cerebro_fp_exp_sum(float *v, u64 n, u32 max_bits, u64 sum_bits);
void cerebro_fp_divide(float *v, u64 n, u64 divisor_bits);

#define CEREBRO_F32_ONE 0x3f800000u

#endif /* CEREBRO_INTERNAL_H */
