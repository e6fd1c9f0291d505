// SPDX-License-Identifier: MIT
/*
 * x86-64 relocations: what LLVM emits for small-code-model PIC objects with
 * hidden symbols (no GOT, no PLT), plus the absolute forms for robustness.
 */
#include "arch.h"

#define R_X86_64_64 1
#define R_X86_64_PC32 2
#define R_X86_64_PLT32 4
#define R_X86_64_32S 11
#define R_X86_64_PC64 24

static const char *x86_64_reloc_name(uint32_t type)
{
	switch (type) {
	case R_X86_64_64:
		return "R_X86_64_64";
	case R_X86_64_PC32:
		return "R_X86_64_PC32";
	case R_X86_64_PLT32:
		return "R_X86_64_PLT32";
	case R_X86_64_32S:
		return "R_X86_64_32S";
	case R_X86_64_PC64:
		return "R_X86_64_PC64";
	default:
		return NULL;
	}
}

static int x86_64_apply(uint32_t type, uint8_t *where, uint64_t avail,
			uint64_t place, uint64_t sym, int64_t addend)
{
	uint64_t value = sym + (uint64_t)addend;
	int64_t relative = (int64_t)(value - place);

	switch (type) {
	case R_X86_64_64:
		if (avail < 8)
			return CBX_RELOC_BOUNDS;
		cbx_write64(where, value);
		return CBX_RELOC_OK;
	case R_X86_64_PC64:
		if (avail < 8)
			return CBX_RELOC_BOUNDS;
		cbx_write64(where, (uint64_t)relative);
		return CBX_RELOC_OK;
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
		/* PLT32 resolves directly: imports already go through stubs. */
		if (avail < 4)
			return CBX_RELOC_BOUNDS;
		if (!cbx_fits_signed(relative, 32))
			return CBX_RELOC_OVERFLOW;
		cbx_write32(where, (uint32_t)relative);
		return CBX_RELOC_OK;
	case R_X86_64_32S:
		if (avail < 4)
			return CBX_RELOC_BOUNDS;
		if (!cbx_fits_signed((int64_t)value, 32))
			return CBX_RELOC_OVERFLOW;
		cbx_write32(where, (uint32_t)value);
		return CBX_RELOC_OK;
	default:
		return CBX_RELOC_UNKNOWN;
	}
}

/* jmp *0(%rip); .quad target */
static void x86_64_write_stub(uint8_t *where, uint64_t target)
{
	static const uint8_t jmp_indirect[6] = { 0xff, 0x25, 0, 0, 0, 0 };
	int i;

	cbx_memcpy(where, jmp_indirect, sizeof(jmp_indirect));
	cbx_write64(where + 6, target);
	for (i = 14; i < 16; i++)
		where[i] = 0xcc;	/* int3 padding */
}

const struct cbx_arch cbx_arch_x86_64 = {
	.machine = 62,
	.stub_size = 16,
	.write_stub = x86_64_write_stub,
	.apply = x86_64_apply,
	.reloc_name = x86_64_reloc_name,
};
