/* The bootloader verbs (inst_bootloader.h) over an environment of
 * variables, the scheme the boot scripts in deploy/ read and write:
 *
 *   BOOT_ORDER    the slots to try, in order, space-separated: "A B", "B A",
 *                 "A"; absent: "A B". Unknown words are skipped, repeats
 *                 count once.
 *   BOOT_A_LEFT   boots slot A may still take, decimal 0..99; absent: 3
 *   BOOT_B_LEFT   (INST_BOOT_GOOD_ATTEMPTS); not a number: 0.
 *
 * The boot script (deploy/uboot/boot.cmd, deploy/grub/ferry.cfg, and
 * inst_bootenv_boot() here, all three the same algorithm):
 *   for each slot S in BOOT_ORDER: if BOOT_S_LEFT > 0, spend one, save the
 *   environment, boot S with ferry.slot=S on the kernel command line.
 *   No slot left: every slot in BOOT_ORDER (A B when it is empty) gets
 *   INST_BOOT_GOOD_ATTEMPTS again, save, start over (a device that cannot
 *   boot anything keeps trying rather than halting).
 *
 * Where the variables live is an environment store (struct inst_env_store):
 * U-Boot's environment through libubootenv (inst_uboot.h), a GRUB
 * environment block (inst_grubenv.h), memory (tests). A file store Ferry
 * writes itself (inst_grubenv.h) goes through struct ferry_io, so power-cut
 * tests reach it with ferry_io_faulty.h; libubootenv's writes, and
 * fw_setenv's and grub-editenv's when a test or an operator runs them
 * (inst_exec.h), are outside ferry_io: their durability is the library's
 * and the tool's (inst_uboot.h says what libubootenv does). The store is asked
 * for the three variables and writes exactly those three, leaving every
 * other variable as it was; a set-* verb that changes nothing writes
 * nothing (the environment's flash or file is not worn by a no-op).
 *
 * get-booted: set by inst_bootenv_boot() (the simulator and tests), else
 * the kernel command line (ferry.slot=), else the slot mounted at / per
 * mountinfo (inst_system.h, paths injectable). */
#ifndef FERRY_INST_BOOTENV_H
#define FERRY_INST_BOOTENV_H

#include "edge_slots.h"
#include "ferry_err.h"
#include "inst_bootloader.h"

#include <stdbool.h>
#include <stddef.h>

#define INST_ENV_NVARS     3
#define INST_ENV_VALUE_MAX 31
#define INST_ENV_LEFT_MAX  99

/* BOOT_ORDER, BOOT_A_LEFT, BOOT_B_LEFT. */
extern const char *const INST_ENV_NAMES[INST_ENV_NVARS];

/* The three variables as text, as a store reads and writes them. */
struct inst_env_vars {
    bool set[INST_ENV_NVARS];
    char val[INST_ENV_NVARS][INST_ENV_VALUE_MAX + 1];
};

/* The variables' meaning. */
struct inst_bootenv {
    enum edge_slot order[2];
    size_t norder;    /* 0..2 */
    unsigned left[2]; /* by slot, 0..INST_ENV_LEFT_MAX */
};

/* Reads the meaning of vars with the defaults above (never fails: the
 * boot scripts never do either). */
void inst_bootenv_from_vars(const struct inst_env_vars *vars, struct inst_bootenv *out);
/* Writes env as the three variables (all set). */
void inst_bootenv_to_vars(const struct inst_bootenv *env, struct inst_env_vars *out);

/* The boot script on env: the slot it boots, env updated as it saves it. */
enum edge_slot inst_bootenv_decide(struct inst_bootenv *env);

/* The verbs on env, pure. */
enum edge_slot inst_bootenv_primary(const struct inst_bootenv *env);
bool inst_bootenv_good(const struct inst_bootenv *env, enum edge_slot slot);
void inst_bootenv_set_primary(struct inst_bootenv *env, enum edge_slot slot, unsigned attempts);
void inst_bootenv_set_state(struct inst_bootenv *env, enum edge_slot slot, bool good);

/* ---- Environment stores -------------------------------------------------- */

struct inst_env_ops {
    /* Reads the three variables; an unset one has set[i] false. An
     * environment that cannot be read at all is an error; one that fails
     * its checksum reads as empty (the bootloader then uses its default
     * environment too). */
    enum ferry_err (*load)(void *ctx, struct inst_env_vars *out, struct ferry_diag *d);
    /* Writes the three variables (unset ones are removed), keeping the
     * others; durable on FERRY_OK. */
    enum ferry_err (*store)(void *ctx, const struct inst_env_vars *vars, struct ferry_diag *d);
};

struct inst_env_store {
    const struct inst_env_ops *ops;
    void *ctx;
};

/* In memory, for tests: starts empty; *vars is the current content. */
struct inst_env_mem {
    struct inst_env_store store; /* ops and ctx = this */
    struct inst_env_vars vars;
    unsigned stores; /* store() calls that wrote */
};
void inst_env_mem_init(struct inst_env_mem *m);

/* ---- The bootloader over a store ---------------------------------------- */

struct inst_bootenv_opts {
    const char *name;      /* for messages: "uboot", "grub", "sim" */
    const char *cmdline;   /* NULL: INST_CMDLINE_PATH */
    const char *mountinfo; /* NULL: INST_MOUNTINFO_PATH */
    const char *slot[2];   /* slot paths, for the mountinfo fallback; may be NULL */
};

struct inst_bootenv_bl;

/* `store` must outlive the result; the strings in o are copied. */
enum ferry_err inst_bootenv_new(const struct inst_env_store *store,
                                const struct inst_bootenv_opts *o, struct inst_bootenv_bl **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_bootenv_free(struct inst_bootenv_bl *b); /* NULL is fine */
/* The port; valid while b lives. */
const struct inst_bootloader *inst_bootenv_bootloader(const struct inst_bootenv_bl *b);

/* Plays the bootloader (the simulator, and tests): runs the boot script on
 * the stored environment, saves it, and answers get-booted with the slot it
 * chose from then on. */
enum ferry_err inst_bootenv_boot(struct inst_bootenv_bl *b, enum edge_slot *booted,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
