/* What a device does about a trial after a boot: a pure function of
 * Ferry's boot state before and after the boot step (inst_boot.h, through
 * inst_engine_start()) and the slot that booted. ferry-edge's state machine
 * and ferry-gateway's self-update both decide with it, so a node and a
 * gateway judge a trial boot the same way.
 *
 *   before: no trial                          NONE (nothing to judge)
 *   before: trial T, after: no trial          ROLLED_BACK: the boot step
 *                                             ended it (the bootloader fell
 *                                             back, or Ferry's own attempts
 *                                             ran out)
 *   before: trial T, after: trial, booted T   HEALTH: run the health check;
 *                                             healthy -> confirm T (success),
 *                                             not -> roll back (rolled-back)
 *   before: trial T, after: trial, booted     ROLLED_BACK: the boot decision
 *           another slot                      did not try T
 *
 * img is the trial's image (as Ferry's state recorded it before the boot),
 * slot the trial slot; why says what happened, for a ROLLED_BACK status
 * record's message. */
#ifndef FERRY_INST_TRIAL_H
#define FERRY_INST_TRIAL_H

#include "edge_boot.h"
#include "ferry_err.h"

#include <stdbool.h>

enum inst_trial_step {
    INST_TRIAL_NONE,
    INST_TRIAL_HEALTH,
    INST_TRIAL_ROLLED_BACK,
};

struct inst_trial {
    enum inst_trial_step step;
    enum edge_slot slot; /* the trial slot (NONE with INST_TRIAL_NONE) */
    struct edge_image img;
    char why[FERRY_DIAG_MAX];
};

void inst_trial_after_boot(const struct edge_boot_state *before,
                           const struct edge_boot_state *after, enum edge_slot booted,
                           bool fell_back, struct inst_trial *out);

#endif
