// SPDX-License-Identifier: MIT
/*
 * Wide-character basics: Windows' wchar_t is 16 bits (UTF-16 units), so glibc's 32-bit wcs*
 * functions cannot be used on guest strings; these walk 16-bit units. Classification and case
 * mapping cover ASCII (the "C" locale); other units are in no class and map to themselves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "shims.h"

typedef uint16_t wchar16;

static WINAPI wchar16 *s_wcscpy(wchar16 *d, const wchar16 *s)
{
	wchar16 *out = d;

	while ((*d++ = *s++))
		;
	return out;
}

static WINAPI wchar16 *s_wcsncpy(wchar16 *d, const wchar16 *s, size_t n)
{
	size_t i = 0;

	for (; i < n && s[i]; i++)
		d[i] = s[i];
	for (; i < n; i++)
		d[i] = 0;
	return d;
}

static WINAPI wchar16 *s_wcscat(wchar16 *d, const wchar16 *s)
{
	wchar16 *end = d;

	while (*end)
		end++;
	s_wcscpy(end, s);
	return d;
}

static WINAPI int s_wcsncmp(const wchar16 *a, const wchar16 *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
		if (!a[i])
			return 0;
	}
	return 0;
}

static WINAPI int s_wcscmp(const wchar16 *a, const wchar16 *b) { return s_wcsncmp(a, b, SIZE_MAX); }

static WINAPI wchar16 *s_wcschr(const wchar16 *s, wchar16 c)
{
	for (;; s++) {
		if (*s == c)
			return (wchar16 *)s;
		if (!*s)
			return NULL;
	}
}

static WINAPI wchar16 *s_wcsrchr(const wchar16 *s, wchar16 c)
{
	const wchar16 *last = NULL;

	for (;; s++) {
		if (*s == c)
			last = s;
		if (!*s)
			return (wchar16 *)last;
	}
}

static WINAPI wchar16 *s_wcsstr(const wchar16 *hay, const wchar16 *needle)
{
	size_t n = 0;

	while (needle[n])
		n++;
	for (; *hay; hay++)
		if (!s_wcsncmp(hay, needle, n))
			return (wchar16 *)hay;
	return n ? NULL : (wchar16 *)hay;
}

static WINAPI wchar16 s_towlower(wchar16 c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static WINAPI wchar16 s_towupper(wchar16 c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }

static WINAPI int s__wcsicmp(const wchar16 *a, const wchar16 *b)
{
	for (;; a++, b++) {
		wchar16 x = s_towlower(*a), y = s_towlower(*b);
		if (x != y)
			return x < y ? -1 : 1;
		if (!x)
			return 0;
	}
}

/* msvcrt's iswctype(c, mask) with the _pctype masks; iswalpha and friends are macros over it. */
static WINAPI int s_iswctype(wchar16 c, uint16_t mask) { return c < 128 ? ctype_bits(c, mask) : 0; }

/* wcstol with Windows' 32-bit long (clamped, ERANGE); the ASCII prefix is parsed by strtoll. */
static WINAPI int32_t s_wcstol(const wchar16 *s, wchar16 **end, int base)
{
	size_t n = 0;
	char *narrow, *stop;
	long long v;

	while (s[n] && s[n] < 128)
		n++;
	narrow = malloc(n + 1);
	if (!narrow)
		die(126, "wcstol: out of memory");
	for (size_t i = 0; i < n; i++)
		narrow[i] = (char)s[i];
	narrow[n] = 0;
	errno = 0;
	v = strtoll(narrow, &stop, base);
	if (end)
		*end = (wchar16 *)s + (stop - narrow);
	free(narrow);
	if (v > INT32_MAX || v < INT32_MIN) {
		errno = ERANGE;
		return v > 0 ? INT32_MAX : INT32_MIN;
	}
	return (int32_t)v;
}

const struct shim wide_shims[] = {
	M("wcscpy", s_wcscpy), M("wcsncpy", s_wcsncpy), M("wcscat", s_wcscat), M("wcscmp", s_wcscmp),
	M("wcsncmp", s_wcsncmp), M("wcschr", s_wcschr), M("wcsrchr", s_wcsrchr), M("wcsstr", s_wcsstr),
	M("_wcsicmp", s__wcsicmp), M("towlower", s_towlower), M("towupper", s_towupper), M("iswctype", s_iswctype),
	M("wcstol", s_wcstol),
};

SHIM_TABLE_SIZE(wide);
