/* SPDX-License-Identifier: MIT */
/*
 * What the core needs from an architecture: how to patch one relocation
 * and how to write a jump stub to an imported function.
 */
#ifndef CBX_ARCH_H
#define CBX_ARCH_H

#include "port.h"

enum cbx_reloc_status {
	CBX_RELOC_OK = 0,
	CBX_RELOC_UNKNOWN,	/* type not supported */
	CBX_RELOC_OVERFLOW,	/* value does not fit its field: refused, never wrapped */
	CBX_RELOC_MISALIGNED,	/* value not aligned as the field requires */
	CBX_RELOC_BOUNDS,	/* field runs past the end of its section */
};

struct cbx_arch {
	uint32_t machine;	/* ELF e_machine */
	uint32_t stub_size;	/* bytes per import stub, a multiple of 16 */
	/* Writes at @where a position-independent jump to address @target. */
	void (*write_stub)(uint8_t *where, uint64_t target);
	/*
	 * Patches relocation @type at @where (run-time address @place, @avail
	 * bytes left in its section) with symbol value @sym and @addend.
	 */
	int (*apply)(uint32_t type, uint8_t *where, uint64_t avail,
		     uint64_t place, uint64_t sym, int64_t addend);
	/* The relocation's ELF name, or NULL when unknown. */
	const char *(*reloc_name)(uint32_t type);
	/*
	 * For SHT_REL objects (i386, ELF32), reads the addend that relocation
	 * @type keeps in its field at @where; NULL where objects are ELF64 RELA.
	 */
	int (*read_addend)(uint32_t type, const uint8_t *where, uint64_t avail, int64_t *addend);
};

extern const struct cbx_arch cbx_arch_x86_64;
extern const struct cbx_arch cbx_arch_aarch64;
extern const struct cbx_arch cbx_arch_i686;

/* The arch for ELF e_machine @machine, or NULL. */
const struct cbx_arch *cbx_arch_for(uint32_t machine);

/* Little-endian field access used by both arch files. */
static inline uint32_t cbx_read32(const uint8_t *p)
{
	uint32_t v;

	cbx_memcpy(&v, p, sizeof(v));
	return v;
}

static inline void cbx_write32(uint8_t *p, uint32_t v)
{
	cbx_memcpy(p, &v, sizeof(v));
}

static inline void cbx_write64(uint8_t *p, uint64_t v)
{
	cbx_memcpy(p, &v, sizeof(v));
}

static inline bool cbx_fits_signed(int64_t v, unsigned int bits)
{
	int64_t limit = (int64_t)1 << (bits - 1);

	return v >= -limit && v < limit;
}

#endif /* CBX_ARCH_H */
