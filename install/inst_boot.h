/* What to do after a boot: a pure function of Ferry's boot state
 * (edge_boot.h, as stored) and the slot the bootloader says it booted.
 * No I/O: the engine (inst_engine.h) asks the bootloader, applies the plan
 * and tells the state machine (edge_fsm.h) what happened.
 *
 * Two counters guard a trial. The bootloader's (inst_bootloader.h) spends
 * an attempt before the kernel starts, so an image that never reaches user
 * space falls back by itself. Ferry's own (edge_boot_state.attempts)
 * spends one each time ferry-edge starts on the trial slot, so an image
 * that reaches user space but never gets as far as its health check is
 * rolled back too, even under a bootloader that would keep trying it.
 *
 *   Ferry's state       booted         verdict      Ferry's state after     bootloader
 *   no trial            active         NORMAL       unchanged               active good and
 *                                                                           primary; the other
 *                                                                           good if it holds a
 *                                                                           valid image, else bad
 *   trial T, attempts   T              TRIAL        one attempt spent       (untouched)
 *   trial T, none left  T              EXHAUSTED    trial ended, T invalid  T bad, active good
 *                                                                           and primary; reboot
 *   trial T             active         FELL_BACK    trial ended, T invalid  T bad, active good
 *                                                                           and primary
 *   no trial            the other one  FOREIGN      the booted slot becomes booted good and
 *                                                   active, unconfirmed     primary
 *
 * FELL_BACK is also what a power cut between storing a trial and arming
 * the bootloader looks like: the old image runs and the release is
 * reported rolled back, never half-installed. FOREIGN happens when
 * someone else switched slots, or when an environment kept in one copy
 * was torn and U-Boot fell back to its default: Ferry follows what runs
 * (keeping its anti-rollback counter) rather than rebooting into a slot
 * the bootloader did not choose; the image in the booted slot is trusted
 * only if Ferry's state already vouched for it.
 *
 * Order of the effects (power-cut safety): the bootloader changes come
 * first whenever Ferry's state ends a trial, so no cut leaves the
 * bootloader aiming at a slot Ferry has forgotten; a cut between the two
 * leads to FELL_BACK or NORMAL at the next boot, which repeat the same
 * changes. */
#ifndef FERRY_INST_BOOT_H
#define FERRY_INST_BOOT_H

#include "edge_boot.h"

#include <stdbool.h>

enum inst_boot_verdict {
    INST_BOOT_NORMAL,
    INST_BOOT_TRIAL,
    INST_BOOT_EXHAUSTED,
    INST_BOOT_FELL_BACK,
    INST_BOOT_FOREIGN,
};

/* One bootloader change; NONE slots mean "no change". */
struct inst_boot_plan {
    enum inst_boot_verdict verdict;
    struct edge_boot_state next; /* Ferry's state after the boot */
    bool store;                  /* next differs from the state given: store it */
    enum edge_slot bad;          /* set-state bad, first */
    enum edge_slot primary;      /* set-primary with INST_BOOT_GOOD_ATTEMPTS, then */
    enum edge_slot good;         /* set-state good, then */
    enum edge_slot also_bad;     /* set-state bad, last (NORMAL's unbootable slot) */
    bool reboot;                 /* the booted slot must not stay running */
};

/* booted must be A or B. */
void inst_boot_plan(const struct edge_boot_state *st, enum edge_slot booted,
                    struct inst_boot_plan *out);

const char *inst_boot_verdict_name(enum inst_boot_verdict v); /* static, never NULL */

#endif
