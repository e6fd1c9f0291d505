// SPDX-License-Identifier: MIT
/*
 * AArch64 relocations for small-code-model objects: ADRP/ADD/LDR pairs,
 * branches and data words. Every field is range- and alignment-checked.
 */
#include "arch.h"

#define R_AARCH64_ABS64 257
#define R_AARCH64_ABS32 258
#define R_AARCH64_PREL64 260
#define R_AARCH64_PREL32 261
#define R_AARCH64_LD_PREL_LO19 273
#define R_AARCH64_ADR_PREL_LO21 274
#define R_AARCH64_ADR_PREL_PG_HI21 275
#define R_AARCH64_ADD_ABS_LO12_NC 277
#define R_AARCH64_LDST8_ABS_LO12_NC 278
#define R_AARCH64_TSTBR14 279
#define R_AARCH64_CONDBR19 280
#define R_AARCH64_JUMP26 282
#define R_AARCH64_CALL26 283
#define R_AARCH64_LDST16_ABS_LO12_NC 284
#define R_AARCH64_LDST32_ABS_LO12_NC 285
#define R_AARCH64_LDST64_ABS_LO12_NC 286
#define R_AARCH64_LDST128_ABS_LO12_NC 299

static const char *aarch64_reloc_name(uint32_t type)
{
	switch (type) {
	case R_AARCH64_ABS64:
		return "R_AARCH64_ABS64";
	case R_AARCH64_ABS32:
		return "R_AARCH64_ABS32";
	case R_AARCH64_PREL64:
		return "R_AARCH64_PREL64";
	case R_AARCH64_PREL32:
		return "R_AARCH64_PREL32";
	case R_AARCH64_LD_PREL_LO19:
		return "R_AARCH64_LD_PREL_LO19";
	case R_AARCH64_ADR_PREL_LO21:
		return "R_AARCH64_ADR_PREL_LO21";
	case R_AARCH64_ADR_PREL_PG_HI21:
		return "R_AARCH64_ADR_PREL_PG_HI21";
	case R_AARCH64_ADD_ABS_LO12_NC:
		return "R_AARCH64_ADD_ABS_LO12_NC";
	case R_AARCH64_LDST8_ABS_LO12_NC:
		return "R_AARCH64_LDST8_ABS_LO12_NC";
	case R_AARCH64_TSTBR14:
		return "R_AARCH64_TSTBR14";
	case R_AARCH64_CONDBR19:
		return "R_AARCH64_CONDBR19";
	case R_AARCH64_JUMP26:
		return "R_AARCH64_JUMP26";
	case R_AARCH64_CALL26:
		return "R_AARCH64_CALL26";
	case R_AARCH64_LDST16_ABS_LO12_NC:
		return "R_AARCH64_LDST16_ABS_LO12_NC";
	case R_AARCH64_LDST32_ABS_LO12_NC:
		return "R_AARCH64_LDST32_ABS_LO12_NC";
	case R_AARCH64_LDST64_ABS_LO12_NC:
		return "R_AARCH64_LDST64_ABS_LO12_NC";
	case R_AARCH64_LDST128_ABS_LO12_NC:
		return "R_AARCH64_LDST128_ABS_LO12_NC";
	default:
		return NULL;
	}
}

/* Replaces instruction bits [shift, shift + width) with @field. */
static void patch(uint8_t *where, uint64_t field, unsigned int shift, unsigned int width)
{
	uint32_t mask = (uint32_t)(((1ull << width) - 1) << shift);
	uint32_t insn = cbx_read32(where);

	insn = (insn & ~mask) | ((uint32_t)(field << shift) & mask);
	cbx_write32(where, insn);
}

/* A PC-relative word offset of @bits signed bits (after >> 2). */
static int branch(uint8_t *where, int64_t relative, unsigned int bits, unsigned int shift)
{
	if (relative & 3)
		return CBX_RELOC_MISALIGNED;
	if (!cbx_fits_signed(relative, bits + 2))
		return CBX_RELOC_OVERFLOW;
	patch(where, (uint64_t)(relative >> 2), shift, bits);
	return CBX_RELOC_OK;
}

/* The low 12 bits of an address, scaled by the access size (1 << @scale). */
static int low12(uint8_t *where, uint64_t value, unsigned int scale)
{
	uint64_t lo = value & 0xfff;

	if (lo & ((1u << scale) - 1))
		return CBX_RELOC_MISALIGNED;
	patch(where, lo >> scale, 10, 12 - scale);
	return CBX_RELOC_OK;
}

static int aarch64_apply(uint32_t type, uint8_t *where, uint64_t avail,
			 uint64_t place, uint64_t sym, int64_t addend)
{
	uint64_t value = sym + (uint64_t)addend;
	int64_t relative = (int64_t)(value - place);
	int64_t pages;

	if (type == R_AARCH64_ABS64 || type == R_AARCH64_PREL64) {
		if (avail < 8)
			return CBX_RELOC_BOUNDS;
	} else if (avail < 4) {
		return aarch64_reloc_name(type) ? CBX_RELOC_BOUNDS : CBX_RELOC_UNKNOWN;
	}

	switch (type) {
	case R_AARCH64_ABS64:
		cbx_write64(where, value);
		return CBX_RELOC_OK;
	case R_AARCH64_PREL64:
		cbx_write64(where, (uint64_t)relative);
		return CBX_RELOC_OK;
	case R_AARCH64_ABS32:
		if (value > UINT32_MAX)
			return CBX_RELOC_OVERFLOW;
		cbx_write32(where, (uint32_t)value);
		return CBX_RELOC_OK;
	case R_AARCH64_PREL32:
		if (!cbx_fits_signed(relative, 32))
			return CBX_RELOC_OVERFLOW;
		cbx_write32(where, (uint32_t)relative);
		return CBX_RELOC_OK;
	case R_AARCH64_ADR_PREL_PG_HI21:
		pages = (int64_t)((value & ~0xfffull) - (place & ~0xfffull)) >> 12;
		if (!cbx_fits_signed(pages, 21))
			return CBX_RELOC_OVERFLOW;
		patch(where, (uint64_t)pages & 3, 29, 2);
		patch(where, ((uint64_t)pages >> 2) & 0x7ffff, 5, 19);
		return CBX_RELOC_OK;
	case R_AARCH64_ADR_PREL_LO21:
		if (!cbx_fits_signed(relative, 21))
			return CBX_RELOC_OVERFLOW;
		patch(where, (uint64_t)relative & 3, 29, 2);
		patch(where, ((uint64_t)relative >> 2) & 0x7ffff, 5, 19);
		return CBX_RELOC_OK;
	case R_AARCH64_ADD_ABS_LO12_NC:
	case R_AARCH64_LDST8_ABS_LO12_NC:
		return low12(where, value, 0);
	case R_AARCH64_LDST16_ABS_LO12_NC:
		return low12(where, value, 1);
	case R_AARCH64_LDST32_ABS_LO12_NC:
		return low12(where, value, 2);
	case R_AARCH64_LDST64_ABS_LO12_NC:
		return low12(where, value, 3);
	case R_AARCH64_LDST128_ABS_LO12_NC:
		return low12(where, value, 4);
	case R_AARCH64_CALL26:
	case R_AARCH64_JUMP26:
		return branch(where, relative, 26, 0);
	case R_AARCH64_CONDBR19:
	case R_AARCH64_LD_PREL_LO19:
		return branch(where, relative, 19, 5);
	case R_AARCH64_TSTBR14:
		return branch(where, relative, 14, 5);
	default:
		return CBX_RELOC_UNKNOWN;
	}
}

/* ldr x16, 8; br x16; .quad target */
static void aarch64_write_stub(uint8_t *where, uint64_t target)
{
	cbx_write32(where, 0x58000050);		/* ldr x16, #8 */
	cbx_write32(where + 4, 0xd61f0200);	/* br x16 */
	cbx_write64(where + 8, target);
}

const struct cbx_arch cbx_arch_aarch64 = {
	.machine = 183,
	.stub_size = 16,
	.write_stub = aarch64_write_stub,
	.apply = aarch64_apply,
	.reloc_name = aarch64_reloc_name,
};
