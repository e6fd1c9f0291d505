/* SPDX-License-Identifier: MIT */
/*
 * A .cbx image: a bounds-checked view of an ELF relocatable object (ELF64;
 * ELF32 for i386, widened to the ELF64 structs as it is read), its
 * load layout and the relocation pass. Hosts supply memory and imports.
 *
 * Use: cbx_image_parse(), cbx_image_layout(), then the host allocates
 * load_size zeroed bytes at a page-aligned base, calls cbx_image_load()
 * and protects [0, exec_end) R+X, [exec_end, ro_end) R, the rest R+W.
 */
#ifndef CBX_IMAGE_H
#define CBX_IMAGE_H

#include <cerebro/cbx.h>

#include "arch.h"
#include "elf32.h"
#include "error.h"

#define CBX_MAX_SECTIONS 256
#define CBX_NOT_LOADED UINT64_MAX
#define CBX_MAX_LOAD_SIZE (1ull << 36)	/* 64 GiB: refuse anything bigger */
#define CBX_MAX_NAME_LEN 1024		/* longest section or symbol name, NUL excluded */

/* A function the host provides to model code, by name. */
struct cbx_import {
	const char *name;
	uint64_t address;
};

struct cbx_image {
	const uint8_t *data;
	uint64_t size;
	const struct cbx_arch *arch;
	struct cbx_ehdr ehdr;		/* widened from ELF32 when elf32 */
	bool elf32;			/* i386: ELF32 records, SHT_REL relocations */
	uint32_t symtab;		/* section index of .symtab */
	uint32_t strtab;		/* its string table */
	uint64_t num_symbols;
	uint32_t meta_section;
	uint32_t weights_section;	/* 0 when absent */
	uint32_t ir_section;		/* 0 when absent */
	uint32_t entry_section;
	uint64_t entry_value;
	struct cbx_meta meta;		/* checked copy of the header */
	const uint8_t *meta_data;	/* the section in the file */
	/* Filled by cbx_image_layout(). */
	uint64_t load_offset[CBX_MAX_SECTIONS];
	uint64_t stubs_offset;
	uint32_t num_stubs;
	uint64_t exec_end;
	uint64_t ro_end;
	uint64_t load_size;
	uint64_t entry_offset;
	/*
	 * Set by the host between parse and layout (parse clears it): a section
	 * the host puts at base + load_offset itself, by moving the pages of
	 * its private copy of the file rather than copying them. Layout gives
	 * it a load offset congruent to its file offset modulo the page size
	 * (or clears it when its file offset is not aligned as it must be);
	 * cbx_image_load() then leaves its bytes alone. 0: none.
	 */
	uint32_t in_place;
};

/*
 * Checks the ELF structure, the meta section and the content hash of
 * @data (@size bytes, which must outlive @img). @host_machine is the
 * e_machine the caller can run, or 0 to accept any supported one.
 * Linear in @size; long loops call cbx_port_yield() and stop with
 * CBX_EINTR when it says so.
 */
int cbx_image_parse(struct cbx_image *img, const void *data, uint64_t size,
		    uint32_t host_machine, struct cbx_error *err);

/*
 * Places every SHF_ALLOC section (code, then read-only, then writable
 * data, each group page-aligned) plus @num_imports jump stubs.
 */
int cbx_image_layout(struct cbx_image *img, uint64_t page_size,
		     uint32_t num_imports, struct cbx_error *err);

/*
 * Copies sections to @base (load_size zeroed bytes, page aligned; the
 * in_place section, if any, already there), writes
 * the import stubs and applies every relocation. Every undefined symbol
 * must be one of @imports.
 */
int cbx_image_load(const struct cbx_image *img, uint8_t *base,
		   const struct cbx_import *imports, uint32_t num_imports,
		   struct cbx_error *err);

/* Section header @index (< e_shnum, checked by parse). */
void cbx_image_section(const struct cbx_image *img, uint32_t index, struct cbx_shdr *out);

/* The NUL-terminated name of section @index ("?" if it has none). */
const char *cbx_image_section_name(const struct cbx_image *img, uint32_t index);

#endif /* CBX_IMAGE_H */
