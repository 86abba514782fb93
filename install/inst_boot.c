#include "inst_boot.h"

#include <string.h>

static void no_changes(struct inst_boot_plan *p)
{
    p->bad = p->primary = p->good = p->also_bad = EDGE_SLOT_NONE;
    p->store = false;
    p->reboot = false;
}

/* The trial is over: T invalid, the active slot the bootloader's choice. */
static void end_trial(const struct edge_boot_state *st, struct inst_boot_plan *p)
{
    enum edge_slot t = st->trial;
    enum edge_slot to = EDGE_SLOT_NONE;
    /* edge_boot_rollback() only refuses a state without a trial. */
    if (edge_boot_rollback(&p->next, &to, NULL) != FERRY_OK)
        return;
    p->store = true;
    p->bad = t;
    p->primary = st->active;
}

void inst_boot_plan(const struct edge_boot_state *st, enum edge_slot booted,
                    struct inst_boot_plan *out)
{
    memset(out, 0, sizeof(*out));
    out->next = *st;
    no_changes(out);
    if (st->trial != EDGE_SLOT_NONE) {
        if (booted == st->trial && st->attempts > 0) {
            out->verdict = INST_BOOT_TRIAL;
            out->next.attempts--;
            out->store = true;
        } else if (booted == st->trial) {
            out->verdict = INST_BOOT_EXHAUSTED;
            end_trial(st, out);
            out->reboot = true;
        } else {
            out->verdict = INST_BOOT_FELL_BACK;
            end_trial(st, out);
        }
        return;
    }
    enum edge_slot other = edge_slot_other(booted);
    if (booted == st->active) {
        out->verdict = INST_BOOT_NORMAL;
        out->primary = booted;
        if (st->slot[other].valid)
            out->good = other;
        else
            out->also_bad = other;
        return;
    }
    out->verdict = INST_BOOT_FOREIGN;
    out->next.active = booted;
    out->next.confirmed = false;
    out->store = true;
    out->primary = booted;
}

const char *inst_boot_verdict_name(enum inst_boot_verdict v)
{
    static const char *const names[] = {"normal", "trial", "exhausted", "fell-back", "foreign"};
    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "unknown";
}
