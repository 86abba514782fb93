/* Runs a helper program to completion: the custom bootloader's verbs
 * (inst_bootcmd.h) and update modules' verbs (inst_module.h). These are
 * short, synchronous steps of an install, so the caller waits; a bound on
 * time keeps a hung helper from holding the device forever.
 *
 * The program is exec'd directly (no shell) with argv as given, stdin from
 * /dev/null, stdout captured (the first `cap - 1` bytes are kept, the rest
 * read and dropped), stderr inherited (it lands in ferry-edge's log), in a
 * process group of its own that is killed whole at the timeout, with `env`
 * ("NAME=value" strings, NULL-terminated; may be NULL) added to the
 * environment. Descriptors above 2 are closed in the child.
 *
 * What a helper writes (a custom bootloader's fw_setenv or grub-editenv, a
 * module's files) is outside ferry_io.h: no fault-injecting driver reaches
 * it, and its durability is the helper's own. */
#ifndef FERRY_INST_EXEC_H
#define FERRY_INST_EXEC_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inst_exec_result {
    bool exited;    /* false: killed by a signal or at the timeout */
    int status;     /* exit status when exited, else the signal */
    bool timed_out; /* killed at the timeout */
};

/* FERRY_OK when the program ran (whatever its exit status: see *res);
 * FERRY_E_IO when it could not be started. `out` (cap >= 1) receives its
 * stdout, NUL-terminated; out may be NULL with cap 0. */
enum ferry_err inst_exec_run(char *const argv[], char *const env[], uint64_t timeout_ms, char *out,
                             size_t cap, struct inst_exec_result *res,
                             struct ferry_diag *d) FERRY_MUST_CHECK;

/* "exit 3", "killed by signal 9", "timed out after 30 s": for messages. */
void inst_exec_describe(const struct inst_exec_result *res, uint64_t timeout_ms, char *buf,
                        size_t cap);

#endif
