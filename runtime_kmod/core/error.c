// SPDX-License-Identifier: MIT
/*
 * Error recording shared by every part of the loader.
 */
#include "error.h"

#include "elf32.h"

int cbx_fail(struct cbx_error *err, int code, const char *fmt, ...)
{
	va_list args;

	if (!err)
		return code;
	err->code = code;
	va_start(args, fmt);
	cbx_vsnprintf(err->msg, sizeof(err->msg), fmt, args);
	va_end(args);
	return code;
}

const char *cbx_machine_name(uint32_t machine)
{
	switch (machine) {
	case CBX_EM_X86_64:
		return "x86-64";
	case CBX_EM_AARCH64:
		return "aarch64";
	case CBX_EM_386:
		return "i686";
	default:
		return "an unsupported machine";
	}
}
