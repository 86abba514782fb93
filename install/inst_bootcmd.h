/* The custom bootloader backend: one executable a board integrator
 * provides (--bootloader-cmd PATH), answering the verbs of
 * inst_bootloader.h the way RAUC's custom backend does:
 *
 *   PATH get-booted            prints A or B
 *   PATH get-primary           prints A, B or none
 *   PATH set-primary A|B N     next boots try the slot first, N times
 *   PATH get-state A|B         prints good or bad
 *   PATH set-state A|B good|bad
 *
 * Exit status 0 is success; anything else, a timeout (--cmd-timeout) or an
 * answer that is not one of the words above is an error naming the verb,
 * the exit and the answer. Output is read up to the first newline; a
 * set-* verb must have made its change durable before it exits 0.
 * deploy/custom/ferry-bootloader-example is a complete implementation over
 * a plain file, with the attempt counting the boot scripts do. */
#ifndef FERRY_INST_BOOTCMD_H
#define FERRY_INST_BOOTCMD_H

#include "ferry_err.h"
#include "inst_bootloader.h"

#include <stdint.h>

struct inst_bootcmd;

/* path must name an executable file (FERRY_E_INVALID_ARG otherwise). */
enum ferry_err inst_bootcmd_new(const char *path, uint64_t timeout_ms, struct inst_bootcmd **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_bootcmd_free(struct inst_bootcmd *b); /* NULL is fine */
const struct inst_bootloader *inst_bootcmd_bootloader(const struct inst_bootcmd *b);

#endif
