// SPDX-License-Identifier: MIT
/*
 * mbrtowc/wcrtomb in the "C" locale the program always has: one byte is one character, a byte
 * 0x80-0xff the unit of the same value (Windows' "C" locale), and a unit above 0xff has no byte
 * (EILSEQ). wchar_t is 16 bits; mbstate_t (an int) carries nothing between calls.
 */
#include <errno.h>

#include "shims.h"

static WINAPI size_t s_mbrtowc(uint16_t *out, const char *s, size_t n, int *state)
{
	(void)state;
	if (!s)
		return 0;
	if (!n)
		return (size_t)-2;
	if (out)
		*out = (uint8_t)*s;
	return *s ? 1 : 0;
}

static WINAPI size_t s_wcrtomb(char *s, uint16_t unit, int *state)
{
	(void)state;
	if (!s)
		return 1;
	if (unit > 0xff) {
		errno = EILSEQ;
		return (size_t)-1;
	}
	*s = (char)unit;
	return 1;
}

const struct shim multibyte_shims[] = {
	M("mbrtowc", s_mbrtowc), M("wcrtomb", s_wcrtomb),
};

SHIM_TABLE_SIZE(multibyte);
