#include "inst_trial.h"

#include <stdio.h>
#include <string.h>

void inst_trial_after_boot(const struct edge_boot_state *before,
                           const struct edge_boot_state *after, enum edge_slot booted,
                           bool fell_back, struct inst_trial *out)
{
    memset(out, 0, sizeof(*out));
    out->slot = EDGE_SLOT_NONE;
    if (before->trial != EDGE_SLOT_A && before->trial != EDGE_SLOT_B)
        return;
    enum edge_slot t = before->trial;
    out->slot = t;
    out->img = before->slot[t].img;
    out->step = INST_TRIAL_ROLLED_BACK;
    if (after->trial == EDGE_SLOT_NONE && fell_back)
        snprintf(out->why, sizeof(out->why),
                 "the bootloader fell back to slot %s: %s in slot %s did not start Ferry "
                 "within its boot attempts",
                 edge_slot_name(booted), out->img.version, edge_slot_name(t));
    else if (after->trial == EDGE_SLOT_NONE)
        snprintf(out->why, sizeof(out->why),
                 "trial boot of %s was not confirmed before its boot attempts ran out",
                 out->img.version);
    else if (booted != t)
        snprintf(out->why, sizeof(out->why), "the boot decision did not try slot %s",
                 edge_slot_name(t));
    else
        out->step = INST_TRIAL_HEALTH;
}
