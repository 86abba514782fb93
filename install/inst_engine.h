/* The install engine: the A/B slots (edge_slots.h) and the bootloader
 * (inst_bootloader.h) kept in step, so that a power cut at any point ends
 * with the old image or the new one booting, never neither, and never a
 * slot booting that Ferry's state does not vouch for. ferry-edge drives it
 * from its state machine's actions; a gateway updating itself can drive it
 * the same way.
 *
 * Start (every boot): inst_engine_start() asks the bootloader which slot
 * booted, checks it against the running root where mountinfo knows it,
 * plans (inst_boot.h) and applies the plan, and hands back what the state
 * machine needs (edge_fsm_boot). When the plan says the running slot must
 * not stay (a trial out of Ferry's own attempts), the caller reboots.
 *
 * An install, and the order of its effects:
 *   begin    bootloader: target bad; then edge_slots_begin() (Ferry's state
 *            forgets the target, then its data is erased/opened)
 *   write / sync / finish   edge_slots_*() (finish re-hashes from storage)
 *   set_trial  Ferry's state: trial; then bootloader: set-primary target N
 *   (reboot: the caller's; the next start's verdict is TRIAL or FELL_BACK)
 *   confirm  bootloader: running good; then Ferry's state: confirmed and
 *            the anti-rollback counter moved, then its LKG record
 *   rollback bootloader: trial bad, active good and primary; then Ferry's
 *            state ends the trial; the caller reboots into the active slot
 * The target of begin and resume is never the slot that booted (the
 * running system): FERRY_E_BUSY, before anything is touched. */
#ifndef FERRY_INST_ENGINE_H
#define FERRY_INST_ENGINE_H

#include "edge_slots.h"
#include "ferry_err.h"
#include "inst_boot.h"
#include "inst_bootloader.h"

#include <stdbool.h>

struct inst_engine_opts {
    const struct edge_slots_backend *slots; /* borrowed, must outlive the engine */
    const struct inst_bootloader *boot;     /* borrowed, must outlive the engine */
    /* For the start-up check that the bootloader and the mounted root agree;
     * NULL slot paths skip it (file slots, the simulator). */
    const char *mountinfo; /* NULL: INST_MOUNTINFO_PATH */
    const char *slot_path[2];
};

struct inst_engine;

/* Loads Ferry's boot state through the slots' backend (edge_slots_open()). */
enum ferry_err inst_engine_open(const struct inst_engine_opts *o, struct inst_engine **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_engine_free(struct inst_engine *e); /* NULL is fine */

/* What a start found and did. */
struct inst_engine_start {
    struct edge_boot_state before; /* Ferry's state as loaded */
    struct edge_boot_state after;  /* after the plan */
    enum edge_slot booted;         /* the running slot */
    enum inst_boot_verdict verdict;
    bool reboot; /* the running slot must not stay: reboot now */
};

/* The boot step above. Errors: the bootloader cannot say which slot booted
 * or cannot be changed, the booted slot is not the one mounted at /
 * (FERRY_E_INVALID_ARG naming both: the slot paths or the boot script are
 * wrong), Ferry's state cannot be stored. May be called again after a
 * simulated reboot. */
enum ferry_err inst_engine_start(struct inst_engine *e, struct inst_engine_start *out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* The running slot (after inst_engine_start(); NONE before). */
enum edge_slot inst_engine_booted(const struct inst_engine *e);
/* Ferry's boot state as last stored. */
const struct edge_boot_state *inst_engine_state(const struct inst_engine *e);

/* The install steps above; errors as edge_slots.h's, plus the bootloader's
 * and FERRY_E_BUSY for the running slot. */
enum ferry_err inst_engine_begin(struct inst_engine *e, const struct edge_image *img,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_engine_resume(struct inst_engine *e, const struct edge_image *img,
                                  uint64_t written, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_engine_write(struct inst_engine *e, uint64_t off, const void *buf, size_t len,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_engine_sync(struct inst_engine *e, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_engine_finish(struct inst_engine *e, struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_engine_abort(struct inst_engine *e);
enum ferry_err inst_engine_set_trial(struct inst_engine *e, unsigned attempts,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_engine_confirm(struct inst_engine *e, enum edge_slot running,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;
/* *boot: the slot to reboot into. */
enum ferry_err inst_engine_rollback(struct inst_engine *e, enum edge_slot *boot,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
/* Re-hashes a slot against Ferry's state (edge_slots_verify()). */
enum ferry_err inst_engine_verify(struct inst_engine *e, enum edge_slot slot,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
