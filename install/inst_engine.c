#include "inst_engine.h"

#include "inst_system.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inst_engine {
    struct inst_bootloader bl;
    struct edge_slots *slots;
    char mountinfo[PATH_MAX];
    char slot_path[2][PATH_MAX];
    bool check_root;
    enum edge_slot booted;
};

enum ferry_err inst_engine_open(const struct inst_engine_opts *o, struct inst_engine **out,
                                struct ferry_diag *d)
{
    struct inst_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return ferry_fail(d, FERRY_E_NOMEM, "install: out of memory");
    e->bl = *o->boot;
    e->booted = EDGE_SLOT_NONE;
    snprintf(e->mountinfo, sizeof(e->mountinfo), "%s",
             o->mountinfo ? o->mountinfo : INST_MOUNTINFO_PATH);
    e->check_root = o->slot_path[0] && o->slot_path[1];
    for (int i = 0; e->check_root && i < 2; i++)
        snprintf(e->slot_path[i], sizeof(e->slot_path[i]), "%s", o->slot_path[i]);
    enum ferry_err err = edge_slots_open(o->slots, &e->slots, d);
    if (err != FERRY_OK) {
        free(e);
        return err;
    }
    *out = e;
    return FERRY_OK;
}

void inst_engine_free(struct inst_engine *e)
{
    if (!e)
        return;
    edge_slots_free(e->slots);
    free(e);
}

enum edge_slot inst_engine_booted(const struct inst_engine *e)
{
    return e->booted;
}

const struct edge_boot_state *inst_engine_state(const struct inst_engine *e)
{
    return edge_slots_state(e->slots);
}

static enum ferry_err bl_state(struct inst_engine *e, enum edge_slot slot, bool good,
                               struct ferry_diag *d)
{
    if (slot == EDGE_SLOT_NONE)
        return FERRY_OK;
    return e->bl.ops->set_state(e->bl.ctx, slot, good, d);
}

static enum ferry_err bl_primary(struct inst_engine *e, enum edge_slot slot, unsigned attempts,
                                 struct ferry_diag *d)
{
    if (slot == EDGE_SLOT_NONE)
        return FERRY_OK;
    return e->bl.ops->set_primary(e->bl.ctx, slot, attempts, d);
}

/* The bootloader's answer against the root file system actually mounted. */
static enum ferry_err check_root(struct inst_engine *e, enum edge_slot booted, struct ferry_diag *d)
{
    if (!e->check_root)
        return FERRY_OK;
    const char *const paths[2] = {e->slot_path[0], e->slot_path[1]};
    enum edge_slot root = EDGE_SLOT_NONE;
    enum ferry_err err = inst_system_root_slot(e->mountinfo, paths, &root, d);
    if (err != FERRY_OK)
        return err;
    if (root != EDGE_SLOT_NONE && root != booted)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "install: %s says slot %s booted, but slot %s (%s) is mounted at /: "
                          "check the slot paths and the boot script",
                          e->bl.name, edge_slot_name(booted), edge_slot_name(root),
                          e->slot_path[root]);
    return FERRY_OK;
}

enum ferry_err inst_engine_start(struct inst_engine *e, struct inst_engine_start *out,
                                 struct ferry_diag *d)
{
    enum edge_slot booted = EDGE_SLOT_NONE;
    enum ferry_err err = e->bl.ops->get_booted(e->bl.ctx, &booted, d);
    if (err == FERRY_OK && booted != EDGE_SLOT_A && booted != EDGE_SLOT_B)
        err = ferry_fail(d, FERRY_E_PROTOCOL, "install: %s names no slot as booted", e->bl.name);
    if (err == FERRY_OK)
        err = check_root(e, booted, d);
    if (err != FERRY_OK)
        return err;
    struct inst_boot_plan plan;
    out->before = *edge_slots_state(e->slots);
    inst_boot_plan(&out->before, booted, &plan);
    /* Bootloader first (inst_boot.h), then Ferry's state. */
    err = bl_state(e, plan.bad, false, d);
    if (err == FERRY_OK)
        err = bl_primary(e, plan.primary, INST_BOOT_GOOD_ATTEMPTS, d);
    if (err == FERRY_OK)
        err = bl_state(e, plan.good, true, d);
    if (err == FERRY_OK)
        err = bl_state(e, plan.also_bad, false, d);
    if (err == FERRY_OK && plan.store)
        err = edge_slots_replace(e->slots, &plan.next, d);
    if (err != FERRY_OK)
        return err;
    e->booted = booted;
    out->after = *edge_slots_state(e->slots);
    out->booted = booted;
    out->verdict = plan.verdict;
    out->reboot = plan.reboot;
    return FERRY_OK;
}

static enum ferry_err not_running(const struct inst_engine *e, struct ferry_diag *d)
{
    enum edge_slot target = edge_slot_other(edge_slots_state(e->slots)->active);
    if (e->booted == EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "install: no boot step yet");
    if (target == e->booted)
        return ferry_fail(d, FERRY_E_BUSY,
                          "install: slot %s is the running system; reboot before installing",
                          edge_slot_name(target));
    return FERRY_OK;
}

enum ferry_err inst_engine_begin(struct inst_engine *e, const struct edge_image *img,
                                 struct ferry_diag *d)
{
    enum ferry_err err = not_running(e, d);
    if (err == FERRY_OK)
        err = bl_state(e, edge_slot_other(edge_slots_state(e->slots)->active), false, d);
    if (err != FERRY_OK)
        return err;
    return edge_slots_begin(e->slots, img, d);
}

enum ferry_err inst_engine_resume(struct inst_engine *e, const struct edge_image *img,
                                  uint64_t written, struct ferry_diag *d)
{
    enum ferry_err err = not_running(e, d);
    if (err == FERRY_OK)
        err = bl_state(e, edge_slot_other(edge_slots_state(e->slots)->active), false, d);
    if (err != FERRY_OK)
        return err;
    return edge_slots_resume(e->slots, img, written, d);
}

enum ferry_err inst_engine_write(struct inst_engine *e, uint64_t off, const void *buf, size_t len,
                                 struct ferry_diag *d)
{
    return edge_slots_write(e->slots, off, buf, len, d);
}

enum ferry_err inst_engine_sync(struct inst_engine *e, struct ferry_diag *d)
{
    return edge_slots_sync(e->slots, d);
}

enum ferry_err inst_engine_finish(struct inst_engine *e, struct ferry_diag *d)
{
    return edge_slots_finish(e->slots, d);
}

void inst_engine_abort(struct inst_engine *e)
{
    edge_slots_abort(e->slots);
}

enum ferry_err inst_engine_set_trial(struct inst_engine *e, unsigned attempts, struct ferry_diag *d)
{
    enum ferry_err err = edge_slots_set_trial(e->slots, attempts, d);
    if (err != FERRY_OK)
        return err;
    return bl_primary(e, edge_slots_state(e->slots)->trial, attempts, d);
}

enum ferry_err inst_engine_confirm(struct inst_engine *e, enum edge_slot running,
                                   struct ferry_diag *d)
{
    enum ferry_err err = bl_state(e, running, true, d);
    if (err != FERRY_OK)
        return err;
    return edge_slots_confirm(e->slots, running, d);
}

enum ferry_err inst_engine_rollback(struct inst_engine *e, enum edge_slot *boot,
                                    struct ferry_diag *d)
{
    const struct edge_boot_state *st = edge_slots_state(e->slots);
    if (st->trial == EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "install: no trial to roll back");
    enum ferry_err err = bl_state(e, st->trial, false, d);
    if (err == FERRY_OK)
        err = bl_primary(e, st->active, INST_BOOT_GOOD_ATTEMPTS, d);
    if (err != FERRY_OK)
        return err;
    return edge_slots_rollback(e->slots, boot, d);
}

enum ferry_err inst_engine_verify(struct inst_engine *e, enum edge_slot slot, struct ferry_diag *d)
{
    return edge_slots_verify(e->slots, slot, d);
}
