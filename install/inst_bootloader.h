/* The bootloader port: what the install engine asks of whoever decides
 * which slot boots (U-Boot, GRUB, a board's own tool, the simulator).
 *
 * Model. The bootloader, not Ferry, counts boot attempts: each slot it may
 * boot has a number of attempts left, and each boot of a slot spends one
 * *before* the kernel starts, so an image that never reaches user space
 * (kernel panic, hung init) runs out of attempts and the bootloader falls
 * back to the next slot by itself. Ferry's own record (edge_boot.h) keeps
 * a second counter of trial starts that reached ferry-edge; the boot
 * decision (inst_boot.h) takes both into account.
 *
 * The verbs, as RAUC's custom backend and the U-Boot / GRUB scripts in
 * deploy/ implement them (slot names are "A" and "B"):
 *   get-booted        the slot the running system was booted from
 *   get-primary       the slot the next boot tries first: the first slot in
 *                     the boot order with attempts left; none when no slot
 *                     has any
 *   set-primary S N   from the next boot on, try S first, N times (1..16);
 *                     the other slot stays where it was in the order, as
 *                     the fallback, if it was there
 *   get-state S       good: S is in the boot order with attempts left
 *   set-state S good  keep S bootable: in the order (appended when it was
 *                     not), attempts renewed to INST_BOOT_GOOD_ATTEMPTS
 *   set-state S bad   never boot S: out of the order, no attempts
 * Durability: set-* are durable when they return FERRY_OK. A power cut
 * during one leaves the bootloader's old state or the new one; with an
 * environment kept in one copy it may leave the bootloader's built-in
 * default instead, which inst_boot.h also survives (see deploy/README.md
 * for why a redundant environment is still the better choice).
 *
 * Every function returns FERRY_OK or an error with a message in d (which
 * may be NULL) naming the bootloader and what failed; all are called from
 * one thread. */
#ifndef FERRY_INST_BOOTLOADER_H
#define FERRY_INST_BOOTLOADER_H

#include "edge_boot.h"
#include "ferry_err.h"

#include <stdbool.h>

/* Attempts a good slot gets (set-state good), and a slot the boot scripts
 * meet without a counter. */
#define INST_BOOT_GOOD_ATTEMPTS 3

struct inst_bootloader_ops {
    enum ferry_err (*get_booted)(void *ctx, enum edge_slot *out, struct ferry_diag *d);
    enum ferry_err (*get_primary)(void *ctx, enum edge_slot *out, struct ferry_diag *d);
    enum ferry_err (*set_primary)(void *ctx, enum edge_slot slot, unsigned attempts,
                                  struct ferry_diag *d);
    enum ferry_err (*get_state)(void *ctx, enum edge_slot slot, bool *good, struct ferry_diag *d);
    enum ferry_err (*set_state)(void *ctx, enum edge_slot slot, bool good, struct ferry_diag *d);
};

/* A bootloader: its functions and the context they get. Plain value; the
 * backend that made it owns the context. */
struct inst_bootloader {
    const struct inst_bootloader_ops *ops;
    void *ctx;
    const char *name; /* "uboot", "grub", "custom", "sim": for messages */
};

/* The --bootloader names, in the order of enum inst_bootloader_kind. */
enum inst_bootloader_kind {
    INST_BOOTLOADER_SIM,
    INST_BOOTLOADER_UBOOT,
    INST_BOOTLOADER_GRUB,
    INST_BOOTLOADER_CUSTOM,
};

/* FERRY_E_INVALID_ARG for anything but "sim", "uboot", "grub", "custom". */
enum ferry_err inst_bootloader_kind_parse(const char *name,
                                          enum inst_bootloader_kind *out) FERRY_MUST_CHECK;
const char *inst_bootloader_kind_name(enum inst_bootloader_kind kind); /* static */

#endif
