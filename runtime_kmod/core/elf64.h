/* SPDX-License-Identifier: MIT */
/*
 * The few ELF64 records the loader reads. Own names (CBX_*) so the same
 * code builds against kernel and libc headers without clashes; files are
 * read field by field with memcpy, so no alignment is assumed.
 */
#ifndef CBX_ELF64_H
#define CBX_ELF64_H

#include "port.h"

#define CBX_EM_X86_64 62
#define CBX_EM_AARCH64 183

#define CBX_ET_REL 1
#define CBX_ELFCLASS64 2
#define CBX_ELFDATA2LSB 1

#define CBX_SHT_NULL 0
#define CBX_SHT_PROGBITS 1
#define CBX_SHT_SYMTAB 2
#define CBX_SHT_STRTAB 3
#define CBX_SHT_RELA 4
#define CBX_SHT_NOBITS 8
#define CBX_SHT_REL 9
#define CBX_SHT_INIT_ARRAY 14
#define CBX_SHT_FINI_ARRAY 15
#define CBX_SHT_PREINIT_ARRAY 16

#define CBX_SHF_WRITE 0x1
#define CBX_SHF_ALLOC 0x2
#define CBX_SHF_EXECINSTR 0x4
#define CBX_SHF_TLS 0x400

#define CBX_SHN_UNDEF 0
#define CBX_SHN_LORESERVE 0xff00
#define CBX_SHN_ABS 0xfff1
#define CBX_SHN_COMMON 0xfff2

#define CBX_STB_LOCAL 0
#define CBX_STB_GLOBAL 1
#define CBX_STB_WEAK 2
#define CBX_STT_FUNC 2
#define CBX_STT_SECTION 3
#define CBX_STT_FILE 4

struct cbx_ehdr {
	uint8_t ident[16];
	uint16_t type;
	uint16_t machine;
	uint32_t version;
	uint64_t entry;
	uint64_t phoff;
	uint64_t shoff;
	uint32_t flags;
	uint16_t ehsize;
	uint16_t phentsize;
	uint16_t phnum;
	uint16_t shentsize;
	uint16_t shnum;
	uint16_t shstrndx;
};

struct cbx_shdr {
	uint32_t name;
	uint32_t type;
	uint64_t flags;
	uint64_t addr;
	uint64_t offset;
	uint64_t size;
	uint32_t link;
	uint32_t info;
	uint64_t addralign;
	uint64_t entsize;
};

struct cbx_sym {
	uint32_t name;
	uint8_t info;
	uint8_t other;
	uint16_t shndx;
	uint64_t value;
	uint64_t size;
};

struct cbx_rela {
	uint64_t offset;
	uint64_t info;
	int64_t addend;
};

CBX_STATIC_ASSERT(sizeof(struct cbx_ehdr) == 64, "ELF64 header is 64 bytes");
CBX_STATIC_ASSERT(sizeof(struct cbx_shdr) == 64, "ELF64 section header is 64 bytes");
CBX_STATIC_ASSERT(sizeof(struct cbx_sym) == 24, "ELF64 symbol is 24 bytes");
CBX_STATIC_ASSERT(sizeof(struct cbx_rela) == 24, "ELF64 rela is 24 bytes");

#endif /* CBX_ELF64_H */
