// SPDX-License-Identifier: MIT
/*
 * KERNEL32 FormatMessageA for system error codes: the text Windows (English) gives for the errors
 * the shims set (file, path, access, handle, memory, parameter, module, procedure), as programs
 * print it after a failed call (Lua's package.loadlib does). Other codes fail with
 * ERROR_MR_MID_NOT_FOUND, as Windows does for codes it has no text for, so the program prints its
 * own fallback.
 */
#include <string.h>

#include "shims.h"

enum { FROM_SYSTEM = 0x1000, IGNORE_INSERTS = 0x200, MAX_WIDTH_MASK = 0xff };
enum { ERROR_INVALID_PARAMETER = 87, ERROR_INSUFFICIENT_BUFFER = 122, ERROR_MR_MID_NOT_FOUND = 317 };

static const struct { uint32_t code; const char *text; } system_messages[] = {
	{ 0, "The operation completed successfully." },
	{ 2, "The system cannot find the file specified." },
	{ 3, "The system cannot find the path specified." },
	{ 5, "Access is denied." },
	{ 6, "The handle is invalid." },
	{ 8, "Not enough memory resources are available to process this command." },
	{ 87, "The parameter is incorrect." },
	{ 126, "The specified module could not be found." },
	{ 127, "The specified procedure could not be found." },
};

/*
 * Only FORMAT_MESSAGE_FROM_SYSTEM (with IGNORE_INSERTS: these texts have none) into the caller's
 * buffer; a width of 0xff drops the line break, as on Windows. ALLOCATE_BUFFER, FROM_STRING,
 * FROM_HMODULE and line wrapping fail with ERROR_INVALID_PARAMETER.
 */
static STDCALL uint32_t s_FormatMessageA(uint32_t flags, const void *source, uint32_t code, uint32_t lang,
					 char *buf, uint32_t size, void *args)
{
	uint32_t width = flags & MAX_WIDTH_MASK;
	const char *text = NULL;
	size_t len;

	(void)source, (void)lang, (void)args;
	if ((flags & ~(FROM_SYSTEM | IGNORE_INSERTS | MAX_WIDTH_MASK)) || !(flags & FROM_SYSTEM) ||
	    (width && width != MAX_WIDTH_MASK) || !buf) {
		g_last_error = ERROR_INVALID_PARAMETER;
		return 0;
	}
	for (size_t i = 0; i < sizeof(system_messages) / sizeof(system_messages[0]); i++)
		if (system_messages[i].code == code)
			text = system_messages[i].text;
	if (!text) {
		g_last_error = ERROR_MR_MID_NOT_FOUND;
		return 0;
	}
	len = strlen(text);
	if (len + 3 > size) {
		g_last_error = ERROR_INSUFFICIENT_BUFFER;
		return 0;
	}
	memcpy(buf, text, len);
	if (width != MAX_WIDTH_MASK) {
		memcpy(buf + len, "\r\n", 2);
		len += 2;
	}
	buf[len] = 0;
	return (uint32_t)len;
}

const struct shim message_shims[] = {
	K("FormatMessageA", s_FormatMessageA),
};

SHIM_TABLE_SIZE(message);
