/* SPDX-License-Identifier: MIT */
/*
 * The user-space interface of /dev/cerebro: ioctl numbers and the structs
 * they carry. Every struct starts with its own size and the interface
 * version, so the kernel can refuse a caller built against another layout
 * instead of misreading it. Pointers travel as __u64, never as C pointers,
 * so 32- and 64-bit callers agree on the layout.
 *
 * Handles are per open file: a handle from one open() means nothing in
 * another. Errors (errno) are listed in docs/kernel.md.
 */
#ifndef CEREBRO_UAPI_H
#define CEREBRO_UAPI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/ioctl.h>
#else
#include <linux/types.h>
#include <sys/ioctl.h>
#endif

#define CEREBRO_UAPI_VERSION 1
#define CEREBRO_DEVICE_PATH "/dev/cerebro"
#define CEREBRO_SYSFS_DIR "/sys/kernel/cerebro"

#define CEREBRO_MAX_HANDLES 16		/* per open file */
#define CEREBRO_MAX_BUFFERS 256		/* = CBX_MAX_TENSORS */
#define CEREBRO_MAX_FILE_SIZE (512ULL << 20)	/* LOAD_MODEL reads at most this */
#define CEREBRO_ERROR_LEN 160		/* one reason line, with its NUL */

/* LOAD_MODEL: read and validate @path, bind it to its model module. */
struct cerebro_load {
	__u32 size;		/* sizeof(struct cerebro_load) */
	__u32 version;		/* CEREBRO_UAPI_VERSION */
	__u64 path;		/* user pointer to a NUL-terminated path; 0 = default model */
	__u32 handle;		/* out: > 0 */
	__u32 reserved;		/* 0 */
};

/* One tensor in user memory: raw little-endian bytes in signature order. */
struct cerebro_buffer {
	__u64 data;		/* user pointer */
	__u64 nbytes;		/* must equal the signature's size */
};

/* EXECUTE_MODEL (inputs) and GET_RESULTS (outputs). */
struct cerebro_io {
	__u32 size;		/* sizeof(struct cerebro_io) */
	__u32 version;
	__u32 handle;
	__u32 num_buffers;	/* must equal the number of inputs / outputs */
	__u64 buffers;		/* user pointer to num_buffers struct cerebro_buffer */
};

/* The signature record, laid out exactly like struct cbx_tensor. */
struct cerebro_tensor_info {
	char name[64];
	__u32 dtype;		/* enum cbx_dtype */
	__u32 rank;
	__u64 dims[8];
	__u64 nbytes;
};

/*
 * MODEL_INFO: the signature seen through this handle (outputs as changed by
 * the model's post-processing option). Fills min(max_tensors, inputs +
 * outputs) records at @tensors, inputs first.
 */
struct cerebro_info {
	__u32 size;
	__u32 version;
	__u32 handle;
	__u32 max_tensors;	/* in: room at @tensors */
	__u64 tensors;		/* user pointer to struct cerebro_tensor_info[] */
	__u32 num_inputs;	/* out */
	__u32 num_outputs;	/* out */
	__u32 num_stages;	/* out */
	__u32 reserved;
	__u8 hash[32];		/* out: the .cbx content hash */
	char model_name[64];	/* out */
	char module_name[64];	/* out: the kernel module holding the code */
};

/* UNLOAD_MODEL: release a handle (closing the file releases all). */
struct cerebro_handle_arg {
	__u32 size;
	__u32 version;
	__u32 handle;
	__u32 reserved;
};

/*
 * LAST_ERROR: why the last refused call on this open file was refused.
 * Each open file keeps its own: another file's refusals never show here.
 * A refused LAST_ERROR (wrong size or version, bad pointer) is itself the
 * last refusal then, like any other call.
 */
struct cerebro_last_error {
	__u32 size;
	__u32 version;
	__s32 error;		/* out: its errno (positive); 0 if no call was refused yet */
	__u32 reserved;		/* 0 */
	char message[CEREBRO_ERROR_LEN];	/* out: one line, NUL-terminated; "" if none */
};

#define CEREBRO_IOC_MAGIC 0xCB
#define CEREBRO_IOC_LOAD_MODEL _IOWR(CEREBRO_IOC_MAGIC, 1, struct cerebro_load)
#define CEREBRO_IOC_EXECUTE_MODEL _IOW(CEREBRO_IOC_MAGIC, 2, struct cerebro_io)
#define CEREBRO_IOC_GET_RESULTS _IOW(CEREBRO_IOC_MAGIC, 3, struct cerebro_io)
#define CEREBRO_IOC_MODEL_INFO _IOWR(CEREBRO_IOC_MAGIC, 4, struct cerebro_info)
#define CEREBRO_IOC_UNLOAD_MODEL _IOW(CEREBRO_IOC_MAGIC, 5, struct cerebro_handle_arg)
#define CEREBRO_IOC_LAST_ERROR _IOWR(CEREBRO_IOC_MAGIC, 6, struct cerebro_last_error)

/* Layouts are ABI: a change needs a new CEREBRO_UAPI_VERSION. */
_Static_assert(sizeof(struct cerebro_load) == 24, "struct cerebro_load layout");
_Static_assert(sizeof(struct cerebro_buffer) == 16, "struct cerebro_buffer layout");
_Static_assert(sizeof(struct cerebro_io) == 24, "struct cerebro_io layout");
_Static_assert(sizeof(struct cerebro_tensor_info) == 144, "struct cerebro_tensor_info layout");
_Static_assert(sizeof(struct cerebro_info) == 200, "struct cerebro_info layout");
_Static_assert(sizeof(struct cerebro_handle_arg) == 16, "struct cerebro_handle_arg layout");
_Static_assert(sizeof(struct cerebro_last_error) == 176, "struct cerebro_last_error layout");

/* Post-processing applied to output 0 in the kernel (sysfs "postprocess"). */
enum cerebro_post {
	CEREBRO_POST_NONE = 0,
	CEREBRO_POST_SOFTMAX = 1,	/* f32, over the last axis, same shape */
	CEREBRO_POST_ARGMAX = 2,	/* i32 index per row: shape dims[:-1] */
	CEREBRO_POST_TOPK = 3,		/* i32 indices of the k largest per row, descending */
};

#endif /* CEREBRO_UAPI_H */
