/* SPDX-License-Identifier: MIT */
/*
 * The ELF32 records of i386 objects, read and widened into the ELF64
 * structs (elf64.h) the rest of the loader works on, so one parser handles
 * both classes. i386 objects carry SHT_REL: addends sit in the patched field.
 */
#ifndef CBX_ELF32_H
#define CBX_ELF32_H

#include "elf64.h"

#define CBX_EM_386 3
#define CBX_ELFCLASS32 1

struct cbx_ehdr32 {
	uint8_t ident[16];
	uint16_t type;
	uint16_t machine;
	uint32_t version;
	uint32_t entry;
	uint32_t phoff;
	uint32_t shoff;
	uint32_t flags;
	uint16_t ehsize;
	uint16_t phentsize;
	uint16_t phnum;
	uint16_t shentsize;
	uint16_t shnum;
	uint16_t shstrndx;
};

struct cbx_shdr32 {
	uint32_t name;
	uint32_t type;
	uint32_t flags;
	uint32_t addr;
	uint32_t offset;
	uint32_t size;
	uint32_t link;
	uint32_t info;
	uint32_t addralign;
	uint32_t entsize;
};

struct cbx_sym32 {
	uint32_t name;
	uint32_t value;
	uint32_t size;
	uint8_t info;
	uint8_t other;
	uint16_t shndx;
};

struct cbx_rel32 {
	uint32_t offset;
	uint32_t info;	/* symbol << 8 | type */
};

CBX_STATIC_ASSERT(sizeof(struct cbx_ehdr32) == 52, "ELF32 header is 52 bytes");
CBX_STATIC_ASSERT(sizeof(struct cbx_shdr32) == 40, "ELF32 section header is 40 bytes");
CBX_STATIC_ASSERT(sizeof(struct cbx_sym32) == 16, "ELF32 symbol is 16 bytes");
CBX_STATIC_ASSERT(sizeof(struct cbx_rel32) == 8, "ELF32 rel is 8 bytes");

static inline void cbx_widen_ehdr(const uint8_t *p, struct cbx_ehdr *out)
{
	struct cbx_ehdr32 h;

	cbx_memcpy(&h, p, sizeof(h));
	cbx_memcpy(out->ident, h.ident, sizeof(h.ident));
	out->type = h.type;
	out->machine = h.machine;
	out->version = h.version;
	out->entry = h.entry;
	out->phoff = h.phoff;
	out->shoff = h.shoff;
	out->flags = h.flags;
	out->ehsize = h.ehsize;
	out->phentsize = h.phentsize;
	out->phnum = h.phnum;
	out->shentsize = h.shentsize;
	out->shnum = h.shnum;
	out->shstrndx = h.shstrndx;
}

static inline void cbx_widen_shdr(const uint8_t *p, struct cbx_shdr *out)
{
	struct cbx_shdr32 s;

	cbx_memcpy(&s, p, sizeof(s));
	out->name = s.name;
	out->type = s.type;
	out->flags = s.flags;
	out->addr = s.addr;
	out->offset = s.offset;
	out->size = s.size;
	out->link = s.link;
	out->info = s.info;
	out->addralign = s.addralign;
	out->entsize = s.entsize;
}

static inline void cbx_widen_sym(const uint8_t *p, struct cbx_sym *out)
{
	struct cbx_sym32 s;

	cbx_memcpy(&s, p, sizeof(s));
	out->name = s.name;
	out->info = s.info;
	out->other = s.other;
	out->shndx = s.shndx;
	out->value = s.value;
	out->size = s.size;
}

/* A REL entry as a RELA one (info: symbol << 32 | type); the addend is read later, in place. */
static inline void cbx_widen_rel(const uint8_t *p, struct cbx_rela *out)
{
	struct cbx_rel32 r;

	cbx_memcpy(&r, p, sizeof(r));
	out->offset = r.offset;
	out->info = (uint64_t)(r.info >> 8) << 32 | (r.info & 0xff);
	out->addend = 0;
}

#endif /* CBX_ELF32_H */
