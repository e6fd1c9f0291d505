// SPDX-License-Identifier: MIT
/*
 * Every field of .cerebro.meta is checked before a host trusts it: sizes
 * drive buffer lengths, so a record that lies must be refused here.
 */
#include "meta.h"

#include <cerebro/abi.h>

static const uint32_t dtype_sizes[] = {
	[CBX_DTYPE_F32] = 4, [CBX_DTYPE_F64] = 8, [CBX_DTYPE_I8] = 1,
	[CBX_DTYPE_I16] = 2, [CBX_DTYPE_I32] = 4, [CBX_DTYPE_I64] = 8,
	[CBX_DTYPE_U8] = 1, [CBX_DTYPE_BOOL] = 1, [CBX_DTYPE_U16] = 2,
	[CBX_DTYPE_U32] = 4, [CBX_DTYPE_F16] = 2, [CBX_DTYPE_BF16] = 2,
};

uint32_t cbx_dtype_size(uint32_t dtype)
{
	if (dtype >= sizeof(dtype_sizes) / sizeof(dtype_sizes[0]))
		return 0;
	return dtype_sizes[dtype];
}

static bool terminated(const char *text, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i++) {
		if (text[i] == '\0')
			return true;
	}
	return false;
}

static int check_tensor(const struct cbx_tensor *t, uint32_t index,
			struct cbx_error *err)
{
	uint64_t count = 1;
	uint32_t itemsize = cbx_dtype_size(t->dtype);
	uint32_t d;

	if (!terminated(t->name, CBX_NAME_LEN) || t->name[0] == '\0')
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: tensor #%u has an empty or unterminated name", index);
	if (itemsize == 0)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: tensor '%s' has unknown dtype code %u", t->name, t->dtype);
	if (t->rank > CBX_MAX_RANK)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: tensor '%s' has rank %u > %d", t->name, t->rank, CBX_MAX_RANK);
	for (d = 0; d < CBX_MAX_RANK; d++) {
		uint64_t dim = t->dims[d];

		if (d >= t->rank) {
			if (dim != 0)
				return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: tensor '%s' has a nonzero unused dim %u", t->name, d);
			continue;
		}
		if (dim != 0 && count > UINT64_MAX / 16 / dim)
			return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: tensor '%s' is impossibly large", t->name);
		count *= dim;
	}
	if (t->nbytes != count * itemsize)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: tensor '%s' claims %llu bytes but its shape and dtype need %llu",
				t->name, (unsigned long long)t->nbytes, (unsigned long long)(count * itemsize));
	return CBX_OK;
}

/*
 * The regions of a split call's arena (cbx.h): at most one per part, each
 * CEREBRO_BUFFER_ALIGN-aligned and at least the one-part arena apart, all of
 * them within CBX_MAX_ARENA_SIZE, so a host's cbx_arena_bytes() cannot
 * overflow or ask for more than a one-part arena's bound.
 */
static int check_regions(const struct cbx_meta *m, struct cbx_error *err)
{
	if (m->reserved != 0)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: reserved field is %u, not 0", m->reserved);
	if (m->regions == 0 || m->regions > m->parts)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: regions %u (need 1..parts = %u)",
				m->regions, m->parts);
	if (m->regions == 1) {
		if (m->region_size != 0)
			return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: region_size %llu with one region (need 0)",
					(unsigned long long)m->region_size);
		return CBX_OK;
	}
	if (m->region_size < m->arena_size || m->region_size % CEREBRO_BUFFER_ALIGN != 0)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: region_size %llu (need a multiple of %d, >= arena_size %llu)",
				(unsigned long long)m->region_size, CEREBRO_BUFFER_ALIGN,
				(unsigned long long)m->arena_size);
	if (m->region_size > CBX_MAX_ARENA_SIZE ||
	    (uint64_t)(m->regions - 1) * m->region_size > CBX_MAX_ARENA_SIZE - m->arena_size)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: %u regions of %llu bytes are impossibly large",
				m->regions, (unsigned long long)m->region_size);
	return CBX_OK;
}

int cbx_meta_check(const uint8_t *sec, uint64_t size, uint32_t machine,
		   struct cbx_meta *out, struct cbx_error *err)
{
	struct cbx_meta m;
	struct cbx_tensor t;
	uint64_t count, expected;
	uint32_t i;
	int ret;

	if (size < sizeof(m))
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: %llu bytes, the header alone needs %zu",
				(unsigned long long)size, sizeof(m));
	cbx_memcpy(&m, sec, sizeof(m));
	if (cbx_memcmp(m.magic, CBX_MAGIC, sizeof(m.magic)) != 0)
		return cbx_fail(err, CBX_EMAGIC, "bad magic in .cerebro.meta (expected \"%s\")", CBX_MAGIC);
	if (m.format_version != CBX_FORMAT_VERSION)
		return cbx_fail(err, CBX_EMETA, "unsupported .cbx format version %u (runtime reads %d; rebuild the model)",
				m.format_version, CBX_FORMAT_VERSION);
	if (m.abi_version != CEREBRO_ABI_VERSION)
		return cbx_fail(err, CBX_EMETA, "unsupported entry ABI version %u (runtime has %d)",
				m.abi_version, CEREBRO_ABI_VERSION);
	if (m.machine != machine)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: machine %u disagrees with the ELF header (%u)",
				m.machine, machine);
	count = (uint64_t)m.num_inputs + m.num_outputs;
	if (m.num_outputs == 0 || count > CBX_MAX_TENSORS)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: %u inputs and %u outputs (need >= 1 output, <= %d tensors)",
				m.num_inputs, m.num_outputs, CBX_MAX_TENSORS);
	if (m.num_stages == 0)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: num_stages is 0");
	if (m.num_stages > CBX_MAX_STAGES)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: num_stages %u > %d",
				m.num_stages, CBX_MAX_STAGES);
	if (m.arena_size > CBX_MAX_ARENA_SIZE)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: arena_size %llu is impossibly large",
				(unsigned long long)m.arena_size);
	expected = sizeof(m) + count * sizeof(struct cbx_tensor);
	if (m.meta_size != expected || size != expected)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: meta_size %u, section %llu bytes, %llu tensors need %llu",
				m.meta_size, (unsigned long long)size, (unsigned long long)count,
				(unsigned long long)expected);
	if (m.parts > CEREBRO_MAX_PARTS)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: parts %u > %d", m.parts, CEREBRO_MAX_PARTS);
	if (m.parts == 0)
		m.parts = 1;
	if (m.fpu > CBX_FPU_NONE)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: fpu %u (0 simd, 1 none)", m.fpu);
	ret = check_regions(&m, err);
	if (ret)
		return ret;
	if (m.parts > 1 && m.arena_size < CEREBRO_BARRIER_BYTES)
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: parts %u needs an arena of >= %d bytes, not %llu",
				m.parts, CEREBRO_BARRIER_BYTES, (unsigned long long)m.arena_size);
	if (!terminated(m.triple, sizeof(m.triple)) || !terminated(m.cpu, sizeof(m.cpu)) ||
	    !terminated(m.features, sizeof(m.features)) || !terminated(m.model_name, sizeof(m.model_name)))
		return cbx_fail(err, CBX_EMETA, "bad .cerebro.meta: unterminated string field");
	for (i = 0; i < count; i++) {
		cbx_meta_tensor(sec, i, &t);
		ret = check_tensor(&t, i, err);
		if (ret)
			return ret;
	}
	*out = m;
	return CBX_OK;
}

void cbx_meta_tensor(const uint8_t *sec, uint32_t index, struct cbx_tensor *out)
{
	cbx_memcpy(out, sec + sizeof(struct cbx_meta) + (uint64_t)index * sizeof(*out), sizeof(*out));
}
