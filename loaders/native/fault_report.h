/* SPDX-License-Identifier: MIT */
/*
 * Reports a fault in a loaded program as one line on stderr instead of a silent death.
 */
#ifndef CEREBRO_FAULT_REPORT_H
#define CEREBRO_FAULT_REPORT_H

#include <stddef.h>
#include <stdint.h>

/* Exit status after a reported fault (documented in docs/loaders.md). */
#define EXIT_FAULT 125

/*
 * Installs handlers for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP and SIGABRT on an alternate
 * stack (a stack overflow still gets its report). Each writes
 *   cerebro-peload: NAME crashed: SIGSEGV (read of unmapped address 0x0) at NAME+0x1002 (pc 0x140001002)
 * with write(2) and exits with EXIT_FAULT.
 */
void fault_report_install(const char *program_name);

/* Gives the calling thread (one the loader created) its own alternate stack for those reports;
 * fault_report_thread_end(what it returned) takes it back when the thread is done. */
void *fault_report_thread(void);
void fault_report_thread_end(void *stack);

/* Names pc addresses inside [base, base + size) as program_name+RVA; call once the image is mapped. */
void fault_report_set_image(const void *base, size_t size);

#endif
