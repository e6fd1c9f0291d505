// SPDX-License-Identifier: MIT
/*
 * i386 relocations: what LLVM emits for static (non-PIC) i686 objects with
 * hidden symbols: absolute and PC-relative words, no GOT. The objects are
 * SHT_REL, so each addend is read from the field it patches.
 */
#include "arch.h"

#define R_386_32 1
#define R_386_PC32 2
#define R_386_PLT32 4

static const char *i686_reloc_name(uint32_t type)
{
	switch (type) {
	case R_386_32:
		return "R_386_32";
	case R_386_PC32:
		return "R_386_PC32";
	case R_386_PLT32:
		return "R_386_PLT32";
	default:
		return NULL;
	}
}

/* Every supported field is a 32-bit word holding its own addend. */
static int i686_read_addend(uint32_t type, const uint8_t *where, uint64_t avail, int64_t *addend)
{
	if (!i686_reloc_name(type))
		return CBX_RELOC_UNKNOWN;
	if (avail < 4)
		return CBX_RELOC_BOUNDS;
	*addend = (int32_t)cbx_read32(where);
	return CBX_RELOC_OK;
}

static int i686_apply(uint32_t type, uint8_t *where, uint64_t avail,
		      uint64_t place, uint64_t sym, int64_t addend)
{
	uint64_t value = sym + (uint64_t)addend;

	if (avail < 4)
		return CBX_RELOC_BOUNDS;
	/* A 32-bit process: every address, and so every field, is one 32-bit word. */
	if (place > 0xffffffffull || sym > 0xffffffffull)
		return CBX_RELOC_OVERFLOW;
	switch (type) {
	case R_386_32:
		cbx_write32(where, (uint32_t)value);
		return CBX_RELOC_OK;
	case R_386_PC32:
	case R_386_PLT32:
		/* PLT32 resolves directly: imports already go through stubs. */
		cbx_write32(where, (uint32_t)(value - place));
		return CBX_RELOC_OK;
	default:
		return CBX_RELOC_UNKNOWN;
	}
}

/* jmp rel32: the whole 32-bit address space is in reach (the offset wraps). */
static void i686_write_stub(uint8_t *where, uint64_t target)
{
	int i;

	where[0] = 0xe9;
	cbx_write32(where + 1, (uint32_t)(target - ((uint64_t)(uintptr_t)where + 5)));
	for (i = 5; i < 16; i++)
		where[i] = 0xcc;	/* int3 padding */
}

const struct cbx_arch cbx_arch_i686 = {
	.machine = 3,
	.stub_size = 16,
	.write_stub = i686_write_stub,
	.apply = i686_apply,
	.reloc_name = i686_reloc_name,
	.read_addend = i686_read_addend,
};
