// SPDX-License-Identifier: MIT
/*
 * The .cbx format logic: parse and check an ELF ET_REL object, lay out
 * its allocated sections, and relocate it through the arch callbacks.
 * Nothing here trusts the file: every offset, size, index and string is
 * checked against the buffer before use.
 *
 * Hostile files must not cost more than one pass: each string table is
 * checked once (NUL-terminated, no name over CBX_MAX_NAME_LEN) so a name
 * lookup is O(1), sections may not claim more bytes than the file has, and
 * long loops ask the host (cbx_port_yield) whether to go on.
 */
#include "image.h"

#include <cerebro/abi.h>

#include "meta.h"
#include "sha256.h"

static const uint8_t elf_magic[4] = { 0x7f, 'E', 'L', 'F' };

/* How often long loops call cbx_port_yield(). */
#define YIELD_STEPS (1u << 16)	/* symbols or relocations */
#define YIELD_BYTES (1u << 20)	/* bytes scanned or hashed */

/* Whether the host wants to stop, asked every @period steps. */
static bool should_stop(uint64_t step, uint64_t period)
{
	return step % period == 0 && cbx_port_yield();
}

static int interrupted(struct cbx_error *err)
{
	return cbx_fail(err, CBX_EINTR, "interrupted: the caller is being killed");
}

const struct cbx_arch *cbx_arch_for(uint32_t machine)
{
	if (machine == cbx_arch_x86_64.machine)
		return &cbx_arch_x86_64;
	if (machine == cbx_arch_aarch64.machine)
		return &cbx_arch_aarch64;
	if (machine == cbx_arch_i686.machine)
		return &cbx_arch_i686;
	return NULL;
}

/* Sizes of the file's records: ELF32 for i386, ELF64 otherwise. */
static uint64_t shdr_size(const struct cbx_image *img)
{
	return img->elf32 ? sizeof(struct cbx_shdr32) : sizeof(struct cbx_shdr);
}

static uint64_t sym_size(const struct cbx_image *img)
{
	return img->elf32 ? sizeof(struct cbx_sym32) : sizeof(struct cbx_sym);
}

static uint64_t reloc_size(const struct cbx_image *img)
{
	return img->elf32 ? sizeof(struct cbx_rel32) : sizeof(struct cbx_rela);
}

void cbx_image_section(const struct cbx_image *img, uint32_t index, struct cbx_shdr *out)
{
	const uint8_t *at = img->data + img->ehdr.shoff + (uint64_t)index * shdr_size(img);

	if (img->elf32)
		cbx_widen_shdr(at, out);
	else
		cbx_memcpy(out, at, sizeof(*out));
}

static void read_symbol(const struct cbx_image *img, uint64_t index, struct cbx_sym *out)
{
	struct cbx_shdr symtab;
	const uint8_t *at;

	cbx_image_section(img, img->symtab, &symtab);
	at = img->data + symtab.offset + index * sym_size(img);
	if (img->elf32)
		cbx_widen_sym(at, out);
	else
		cbx_memcpy(out, at, sizeof(*out));
}

static void read_reloc(const struct cbx_image *img, const uint8_t *at, struct cbx_rela *out)
{
	if (img->elf32)
		cbx_widen_rel(at, out);
	else
		cbx_memcpy(out, at, sizeof(*out));
}

/*
 * One pass over string table @sec, so that any offset inside it starts a
 * NUL-terminated name of at most CBX_MAX_NAME_LEN bytes.
 */
static int check_string_table(const struct cbx_image *img, uint32_t sec, struct cbx_error *err)
{
	struct cbx_shdr sh;
	const uint8_t *table;
	uint64_t i, run = 0;

	cbx_image_section(img, sec, &sh);
	table = img->data + sh.offset;
	if (sh.size && table[sh.size - 1] != '\0')
		return cbx_fail(err, CBX_EFORMAT, "string table (section %u) does not end with a NUL", sec);
	for (i = 0; i < sh.size; i++) {
		if (should_stop(i, YIELD_BYTES))
			return interrupted(err);
		run = table[i] ? run + 1 : 0;
		if (run > CBX_MAX_NAME_LEN)
			return cbx_fail(err, CBX_EFORMAT,
					"string table (section %u) has a name over %d bytes at offset %llu",
					sec, CBX_MAX_NAME_LEN, (unsigned long long)(i + 1 - run));
	}
	return CBX_OK;
}

/* The name at @offset in string table @sec (checked), or NULL if outside it. */
static const char *string_at(const struct cbx_image *img, uint32_t sec, uint64_t offset)
{
	struct cbx_shdr sh;

	cbx_image_section(img, sec, &sh);
	return offset < sh.size ? (const char *)img->data + sh.offset + offset : NULL;
}

const char *cbx_image_section_name(const struct cbx_image *img, uint32_t index)
{
	struct cbx_shdr sh;
	const char *name;

	cbx_image_section(img, index, &sh);
	name = string_at(img, img->ehdr.shstrndx, sh.name);
	return name ? name : "?";
}

/* A symbol's name for messages: its own, or its section's for STT_SECTION. */
static const char *symbol_name(const struct cbx_image *img, const struct cbx_sym *sym)
{
	const char *name = string_at(img, img->strtab, sym->name);

	if ((sym->info & 0xf) == CBX_STT_SECTION && sym->shndx < img->ehdr.shnum)
		return cbx_image_section_name(img, sym->shndx);
	return name ? name : "?";
}

static bool in_file(const struct cbx_image *img, uint64_t offset, uint64_t len)
{
	return offset <= img->size && len <= img->size - offset;
}

static int parse_header(struct cbx_image *img, uint32_t host_machine, struct cbx_error *err)
{
	struct cbx_ehdr *eh = &img->ehdr;
	uint16_t machine = 0;
	size_t header_size;

	/* e_machine sits at the same offset in both classes; it decides which one the file must be. */
	if (img->size >= offsetof(struct cbx_ehdr, machine) + sizeof(machine))
		cbx_memcpy(&machine, img->data + offsetof(struct cbx_ehdr, machine), sizeof(machine));
	img->elf32 = machine == CBX_EM_386;
	header_size = img->elf32 ? sizeof(struct cbx_ehdr32) : sizeof(*eh);
	if (img->size < header_size)
		return cbx_fail(err, CBX_ETRUNC, "truncated file: %llu bytes, an ELF header needs %zu",
				(unsigned long long)img->size, header_size);
	if (img->elf32)
		cbx_widen_ehdr(img->data, eh);
	else
		cbx_memcpy(eh, img->data, sizeof(*eh));
	if (cbx_memcmp(eh->ident, elf_magic, sizeof(elf_magic)) != 0)
		return cbx_fail(err, CBX_EMAGIC, "bad magic: not a .cbx file (no ELF header)");
	if (eh->ident[4] != (img->elf32 ? CBX_ELFCLASS32 : CBX_ELFCLASS64) ||
	    eh->ident[5] != CBX_ELFDATA2LSB || eh->ident[6] != 1)
		return cbx_fail(err, CBX_EMAGIC, "bad magic: not a %d-bit little-endian ELF file",
				img->elf32 ? 32 : 64);
	if (eh->type != CBX_ET_REL)
		return cbx_fail(err, CBX_EFORMAT, "not a relocatable object (ELF type %u, expected ET_REL)", eh->type);
	img->arch = cbx_arch_for(eh->machine);
	if (!img->arch)
		return cbx_fail(err, CBX_EMACHINE, "unsupported machine: ELF e_machine %u", eh->machine);
	if (host_machine && eh->machine != host_machine)
		return cbx_fail(err, CBX_EMACHINE, "wrong machine: file is %s, host is %s",
				cbx_machine_name(eh->machine), cbx_machine_name(host_machine));
	if (eh->shentsize != shdr_size(img))
		return cbx_fail(err, CBX_EFORMAT, "bad section header size %u", eh->shentsize);
	if (eh->shnum == 0 || eh->shnum > CBX_MAX_SECTIONS)
		return cbx_fail(err, CBX_EFORMAT, "%u sections (supported: 1 to %d)", eh->shnum, CBX_MAX_SECTIONS);
	if (!in_file(img, eh->shoff, (uint64_t)eh->shnum * shdr_size(img)))
		return cbx_fail(err, CBX_ETRUNC, "truncated file: section headers run past the end");
	if (eh->shstrndx == 0 || eh->shstrndx >= eh->shnum)
		return cbx_fail(err, CBX_EFORMAT, "bad section name table index %u", eh->shstrndx);
	return CBX_OK;
}

static int parse_sections(struct cbx_image *img, struct cbx_error *err)
{
	struct cbx_shdr sh;
	uint64_t claimed = 0;
	const char *name;
	uint32_t i;
	int ret;

	cbx_image_section(img, img->ehdr.shstrndx, &sh);
	if (sh.type != CBX_SHT_STRTAB)
		return cbx_fail(err, CBX_EFORMAT, "section name table is not SHT_STRTAB");
	if (!in_file(img, sh.offset, sh.size))
		return cbx_fail(err, CBX_ETRUNC, "truncated file: section name table runs past the end");
	ret = check_string_table(img, img->ehdr.shstrndx, err);
	if (ret)
		return ret;
	for (i = 1; i < img->ehdr.shnum; i++) {
		cbx_image_section(img, i, &sh);
		name = string_at(img, img->ehdr.shstrndx, sh.name);
		if (!name)
			return cbx_fail(err, CBX_EFORMAT, "section %u has a name outside the name table", i);
		if (sh.type != CBX_SHT_NOBITS && !in_file(img, sh.offset, sh.size))
			return cbx_fail(err, CBX_ETRUNC, "truncated file: section %s runs past the end", name);
		/* Overlapping sections would let one file be relocated or copied 255 times over. */
		claimed += sh.type != CBX_SHT_NOBITS ? sh.size : 0;
		if (claimed > img->size)
			return cbx_fail(err, CBX_EFORMAT, "section %s overlaps others: sections claim more bytes than the file has",
					name);
		if (sh.type == (img->elf32 ? CBX_SHT_RELA : CBX_SHT_REL))
			return cbx_fail(err, CBX_ERELOC, "unsupported %s section %s (only %s is used)",
					img->elf32 ? "SHT_RELA" : "SHT_REL", name, img->elf32 ? "REL" : "RELA");
		if (sh.type == CBX_SHT_INIT_ARRAY || sh.type == CBX_SHT_FINI_ARRAY ||
		    sh.type == CBX_SHT_PREINIT_ARRAY || cbx_strcmp(name, ".ctors") == 0 ||
		    cbx_strcmp(name, ".dtors") == 0)
			return cbx_fail(err, CBX_EFORMAT, "constructor/destructor section %s is not supported", name);
		if ((sh.flags & CBX_SHF_ALLOC) && (sh.flags & CBX_SHF_TLS))
			return cbx_fail(err, CBX_EFORMAT, "thread-local section %s is not supported", name);
		if ((sh.flags & CBX_SHF_ALLOC) && (sh.flags & CBX_SHF_WRITE) && (sh.flags & CBX_SHF_EXECINSTR))
			return cbx_fail(err, CBX_EFORMAT, "section %s is both writable and executable", name);
		if (sh.size > CBX_MAX_LOAD_SIZE)
			return cbx_fail(err, CBX_EFORMAT, "section %s is too large", name);
		if (sh.type == CBX_SHT_SYMTAB) {
			if (img->symtab)
				return cbx_fail(err, CBX_EFORMAT, "more than one symbol table");
			img->symtab = i;
		}
		if (cbx_strcmp(name, CBX_META_SECTION) == 0)
			img->meta_section = i;
		else if (cbx_strcmp(name, CBX_WEIGHTS_SECTION) == 0)
			img->weights_section = i;
		else if (cbx_strcmp(name, CBX_IR_SECTION) == 0)
			img->ir_section = i;
	}
	return CBX_OK;
}

static int parse_symbols(struct cbx_image *img, struct cbx_error *err)
{
	struct cbx_shdr sh, link;
	struct cbx_sym sym;
	const char *name;
	uint64_t i;
	int ret;

	if (!img->symtab)
		return cbx_fail(err, CBX_EFORMAT, "no symbol table");
	cbx_image_section(img, img->symtab, &sh);
	if (sh.entsize != sym_size(img) || sh.size % sym_size(img) != 0 || sh.size == 0)
		return cbx_fail(err, CBX_EFORMAT, "bad symbol table entry size");
	if (sh.link == 0 || sh.link >= img->ehdr.shnum)
		return cbx_fail(err, CBX_EFORMAT, "symbol table has a bad string table index %u", sh.link);
	cbx_image_section(img, sh.link, &link);
	if (link.type != CBX_SHT_STRTAB)
		return cbx_fail(err, CBX_EFORMAT, "symbol table's string table is not SHT_STRTAB");
	ret = check_string_table(img, sh.link, err);
	if (ret)
		return ret;
	img->strtab = sh.link;
	img->num_symbols = sh.size / sym_size(img);
	for (i = 1; i < img->num_symbols; i++) {
		if (should_stop(i, YIELD_STEPS))
			return interrupted(err);
		read_symbol(img, i, &sym);
		name = string_at(img, img->strtab, sym.name);
		if (!name)
			return cbx_fail(err, CBX_EFORMAT, "symbol %llu has a name outside the string table",
					(unsigned long long)i);
		if (sym.shndx == CBX_SHN_COMMON)
			return cbx_fail(err, CBX_ESYMBOL, "common symbol '%s' is not supported", name);
		if (sym.shndx >= img->ehdr.shnum && sym.shndx != CBX_SHN_ABS)
			return cbx_fail(err, CBX_EFORMAT, "symbol '%s' has a bad section index %u", name, sym.shndx);
		if (cbx_strcmp(name, CEREBRO_ENTRY_SYMBOL) != 0)
			continue;
		if ((sym.info & 0xf) != CBX_STT_FUNC || (sym.info >> 4) != CBX_STB_GLOBAL ||
		    sym.shndx == CBX_SHN_UNDEF || sym.shndx >= img->ehdr.shnum)
			return cbx_fail(err, CBX_ESYMBOL, "'%s' is not a defined global function", name);
		cbx_image_section(img, sym.shndx, &link);
		if (!(link.flags & CBX_SHF_EXECINSTR) || sym.value >= link.size)
			return cbx_fail(err, CBX_ESYMBOL, "'%s' is not inside an executable section", name);
		img->entry_section = sym.shndx;
		img->entry_value = sym.value;
	}
	if (!img->entry_section)
		return cbx_fail(err, CBX_ESYMBOL, "no '%s' symbol: not a Cerebro model", CEREBRO_ENTRY_SYMBOL);
	return CBX_OK;
}

static int parse_meta(struct cbx_image *img, struct cbx_error *err)
{
	struct cbx_shdr sh;
	int ret;

	if (!img->meta_section)
		return cbx_fail(err, CBX_EMETA, "no %s section: not a .cbx file", CBX_META_SECTION);
	cbx_image_section(img, img->meta_section, &sh);
	if (sh.type != CBX_SHT_PROGBITS)
		return cbx_fail(err, CBX_EMETA, "%s is not a PROGBITS section", CBX_META_SECTION);
	img->meta_data = img->data + sh.offset;
	ret = cbx_meta_check(img->meta_data, sh.size, img->ehdr.machine, &img->meta, err);
	if (ret)
		return ret;
	if (img->weights_section) {
		cbx_image_section(img, img->weights_section, &sh);
		if (img->meta.weights_size > sh.size)
			return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: weights_size %llu exceeds %s (%llu bytes)",
					(unsigned long long)img->meta.weights_size, CBX_WEIGHTS_SECTION,
					(unsigned long long)sh.size);
	} else if (img->meta.weights_size) {
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: weights_size %llu but no %s section",
				(unsigned long long)img->meta.weights_size, CBX_WEIGHTS_SECTION);
	}
	return CBX_OK;
}

/* cbx_sha256_update() in YIELD_BYTES pieces, asking the host between them. */
static int hash_bytes(struct cbx_sha256 *ctx, const uint8_t *data, uint64_t len, struct cbx_error *err)
{
	uint64_t done, take;

	for (done = 0; done < len; done += take) {
		if (should_stop(done, YIELD_BYTES))
			return interrupted(err);
		take = len - done < YIELD_BYTES ? len - done : YIELD_BYTES;
		cbx_sha256_update(ctx, data + done, take);
	}
	return CBX_OK;
}

/* SHA-256 of the file with the 32 hash bytes taken as zero. */
static int check_hash(const struct cbx_image *img, struct cbx_error *err)
{
	static const uint8_t zeros[CBX_SHA256_LEN];
	uint64_t at = (uint64_t)(img->meta_data - img->data) + offsetof(struct cbx_meta, hash);
	struct cbx_sha256 ctx;
	uint8_t digest[CBX_SHA256_LEN];
	int ret;

	cbx_sha256_init(&ctx);
	ret = hash_bytes(&ctx, img->data, at, err);
	if (ret)
		return ret;
	cbx_sha256_update(&ctx, zeros, sizeof(zeros));
	ret = hash_bytes(&ctx, img->data + at + CBX_SHA256_LEN, img->size - at - CBX_SHA256_LEN, err);
	if (ret)
		return ret;
	cbx_sha256_final(&ctx, digest);
	if (cbx_memcmp(digest, img->meta.hash, CBX_SHA256_LEN) != 0)
		return cbx_fail(err, CBX_EHASH, "corrupt .cbx: content hash mismatch");
	return CBX_OK;
}

int cbx_image_parse(struct cbx_image *img, const void *data, uint64_t size,
		    uint32_t host_machine, struct cbx_error *err)
{
	int ret;

	cbx_memset(img, 0, sizeof(*img));
	img->data = data;
	img->size = size;
	ret = parse_header(img, host_machine, err);
	if (!ret)
		ret = parse_sections(img, err);
	if (!ret)
		ret = parse_meta(img, err);
	if (!ret)
		ret = check_hash(img, err);
	if (!ret)
		ret = parse_symbols(img, err);
	return ret;
}

enum load_group { GROUP_EXEC, GROUP_RO, GROUP_RW };

static enum load_group group_of(const struct cbx_shdr *sh)
{
	if (sh->flags & CBX_SHF_EXECINSTR)
		return GROUP_EXEC;
	if (sh->flags & CBX_SHF_WRITE)
		return GROUP_RW;
	return GROUP_RO;
}

static uint64_t align_up(uint64_t value, uint64_t align)
{
	return (value + align - 1) & ~(align - 1);
}

/* Appends every allocated section of @group at @*offset. */
static int place_group(struct cbx_image *img, enum load_group group, uint64_t page_size,
		       uint64_t *offset, struct cbx_error *err)
{
	struct cbx_shdr sh;
	uint64_t align;
	uint32_t i;

	for (i = 1; i < img->ehdr.shnum; i++) {
		cbx_image_section(img, i, &sh);
		if (!(sh.flags & CBX_SHF_ALLOC) || group_of(&sh) != group)
			continue;
		align = sh.addralign ? sh.addralign : 1;
		if (align & (align - 1) || align > page_size)
			return cbx_fail(err, CBX_EFORMAT, "section %s has unsupported alignment %llu",
					cbx_image_section_name(img, i), (unsigned long long)align);
		*offset = align_up(*offset, align);
		if (i == img->in_place && sh.offset % align)
			img->in_place = 0;	/* no page-congruent place keeps its alignment */
		if (i == img->in_place)
			*offset += (sh.offset - *offset) & (page_size - 1);
		img->load_offset[i] = *offset;
		*offset += sh.size;
		if (*offset > CBX_MAX_LOAD_SIZE)
			return cbx_fail(err, CBX_EFORMAT, "image is too large to load");
	}
	return CBX_OK;
}

int cbx_image_layout(struct cbx_image *img, uint64_t page_size,
		     uint32_t num_imports, struct cbx_error *err)
{
	uint64_t offset = 0;
	uint32_t i;
	int ret;

	if (page_size == 0 || page_size & (page_size - 1))
		return cbx_fail(err, CBX_EFORMAT, "bad page size %llu", (unsigned long long)page_size);
	for (i = 0; i < CBX_MAX_SECTIONS; i++)
		img->load_offset[i] = CBX_NOT_LOADED;
	ret = place_group(img, GROUP_EXEC, page_size, &offset, err);
	if (ret)
		return ret;
	img->stubs_offset = align_up(offset, 16);
	img->num_stubs = num_imports;
	offset = img->stubs_offset + (uint64_t)num_imports * img->arch->stub_size;
	img->exec_end = align_up(offset, page_size);
	offset = img->exec_end;
	ret = place_group(img, GROUP_RO, page_size, &offset, err);
	if (ret)
		return ret;
	img->ro_end = align_up(offset, page_size);
	offset = img->ro_end;
	ret = place_group(img, GROUP_RW, page_size, &offset, err);
	if (ret)
		return ret;
	img->load_size = align_up(offset, page_size);
	img->entry_offset = img->load_offset[img->entry_section] + img->entry_value;
	return CBX_OK;
}

/* Index of import @name, or -1. */
static int find_import(const char *name, const struct cbx_import *imports, uint32_t num_imports)
{
	uint32_t i;

	for (i = 0; i < num_imports; i++) {
		if (cbx_strcmp(name, imports[i].name) == 0)
			return (int)i;
	}
	return -1;
}

static int check_imports(const struct cbx_image *img, const struct cbx_import *imports,
			 uint32_t num_imports, struct cbx_error *err)
{
	struct cbx_sym sym;
	const char *name;
	uint64_t i;

	if (num_imports > img->num_stubs)
		return cbx_fail(err, CBX_ESYMBOL, "layout reserved %u import stubs, host passed %u",
				img->num_stubs, num_imports);
	for (i = 1; i < img->num_symbols; i++) {
		if (should_stop(i, YIELD_STEPS))
			return interrupted(err);
		read_symbol(img, i, &sym);
		if (sym.shndx != CBX_SHN_UNDEF)
			continue;
		name = symbol_name(img, &sym);
		if (find_import(name, imports, num_imports) < 0)
			return cbx_fail(err, CBX_ESYMBOL, "undefined symbol '%s' is not provided by the runtime", name);
	}
	return CBX_OK;
}

static const char *reloc_problem(int status)
{
	switch (status) {
	case CBX_RELOC_OVERFLOW:
		return "overflows its field";
	case CBX_RELOC_MISALIGNED:
		return "has a misaligned value";
	default:
		return "runs past the end of its section";
	}
}

/* Applies the RELA section @index to the loaded image at @base. */
static int relocate_section(const struct cbx_image *img, uint8_t *base, uint32_t index,
			    const struct cbx_import *imports, uint32_t num_imports,
			    struct cbx_error *err)
{
	const char *name = cbx_image_section_name(img, index);
	struct cbx_shdr sh, target;
	struct cbx_rela rela;
	struct cbx_sym sym;
	uint64_t i, symbol_value, place;
	uint32_t type, sym_index;
	int found, status;

	cbx_image_section(img, index, &sh);
	if (sh.info == 0 || sh.info >= img->ehdr.shnum)
		return cbx_fail(err, CBX_ERELOC, "%s applies to bad section index %u", name, sh.info);
	cbx_image_section(img, sh.info, &target);
	if (!(target.flags & CBX_SHF_ALLOC))
		return CBX_OK;	/* debug info and the like are not loaded */
	if (target.type == CBX_SHT_NOBITS)
		return cbx_fail(err, CBX_ERELOC, "%s applies to a section without data", name);
	if (sh.link != img->symtab)
		return cbx_fail(err, CBX_ERELOC, "%s does not use the symbol table", name);
	if (sh.entsize != reloc_size(img) || sh.size % reloc_size(img) != 0)
		return cbx_fail(err, CBX_ERELOC, "%s has a bad entry size", name);
	for (i = 0; i < sh.size / reloc_size(img); i++) {
		if (should_stop(i, YIELD_STEPS))
			return interrupted(err);
		read_reloc(img, img->data + sh.offset + i * reloc_size(img), &rela);
		type = (uint32_t)rela.info;
		sym_index = (uint32_t)(rela.info >> 32);
		if (!img->arch->reloc_name(type))
			return cbx_fail(err, CBX_ERELOC, "unknown relocation type %u in %s", type, name);
		if (sym_index >= img->num_symbols)
			return cbx_fail(err, CBX_ERELOC, "relocation %llu in %s uses bad symbol index %u",
					(unsigned long long)i, name, sym_index);
		if (rela.offset >= target.size)
			return cbx_fail(err, CBX_ERELOC, "relocation %llu in %s is outside its section",
					(unsigned long long)i, name);
		read_symbol(img, sym_index, &sym);
		if (sym.shndx == CBX_SHN_UNDEF) {
			found = find_import(symbol_name(img, &sym), imports, num_imports);
			if (sym_index == 0 || found < 0)
				return cbx_fail(err, CBX_ESYMBOL, "undefined symbol '%s' is not provided by the runtime",
						symbol_name(img, &sym));
			symbol_value = (uint64_t)(uintptr_t)base + img->stubs_offset +
				       (uint64_t)found * img->arch->stub_size;
		} else if (sym.shndx == CBX_SHN_ABS) {
			symbol_value = sym.value;
		} else if (img->load_offset[sym.shndx] == CBX_NOT_LOADED) {
			return cbx_fail(err, CBX_ERELOC, "relocation in %s refers to '%s' in unloaded section %s",
					name, symbol_name(img, &sym), cbx_image_section_name(img, sym.shndx));
		} else {
			symbol_value = (uint64_t)(uintptr_t)base + img->load_offset[sym.shndx] + sym.value;
		}
		place = (uint64_t)(uintptr_t)base + img->load_offset[sh.info] + rela.offset;
		status = CBX_RELOC_OK;
		if (img->elf32)
			status = img->arch->read_addend(type, base + img->load_offset[sh.info] + rela.offset,
							target.size - rela.offset, &rela.addend);
		if (status == CBX_RELOC_OK)
			status = img->arch->apply(type, base + img->load_offset[sh.info] + rela.offset,
						  target.size - rela.offset, place, symbol_value, rela.addend);
		if (status != CBX_RELOC_OK)
			return cbx_fail(err, CBX_ERELOC, "relocation %s against '%s' at %s+0x%llx %s",
					img->arch->reloc_name(type), symbol_name(img, &sym),
					cbx_image_section_name(img, sh.info), (unsigned long long)rela.offset,
					reloc_problem(status));
	}
	return CBX_OK;
}

int cbx_image_load(const struct cbx_image *img, uint8_t *base,
		   const struct cbx_import *imports, uint32_t num_imports,
		   struct cbx_error *err)
{
	struct cbx_shdr sh;
	uint32_t i;
	int ret;

	ret = check_imports(img, imports, num_imports, err);
	if (ret)
		return ret;
	for (i = 1; i < img->ehdr.shnum; i++) {
		cbx_image_section(img, i, &sh);
		if (img->load_offset[i] == CBX_NOT_LOADED || sh.type == CBX_SHT_NOBITS || i == img->in_place)
			continue;
		cbx_memcpy(base + img->load_offset[i], img->data + sh.offset, sh.size);
	}
	for (i = 0; i < num_imports; i++)
		img->arch->write_stub(base + img->stubs_offset + (uint64_t)i * img->arch->stub_size,
				      imports[i].address);
	for (i = 1; i < img->ehdr.shnum; i++) {
		cbx_image_section(img, i, &sh);
		if (sh.type != (img->elf32 ? CBX_SHT_REL : CBX_SHT_RELA))
			continue;
		ret = relocate_section(img, base, i, imports, num_imports, err);
		if (ret)
			return ret;
	}
	return CBX_OK;
}
