#include "cloud_rollout_ops.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const VERBS[CLOUD_ACT__COUNT] = {"pause", "resume", "next", "cancel", "retry"};
/* The decision log's action for each. */
static const char *const LOGGED[CLOUD_ACT__COUNT] = {"paused", "resumed", "wave-opened",
                                                     "cancelled", "retried"};

const char *cloud_rollout_action_verb(enum cloud_rollout_action a)
{
    return (unsigned)a < CLOUD_ACT__COUNT ? VERBS[a] : "?";
}

enum ferry_err cloud_rollout_action_parse(const char *verb, enum cloud_rollout_action *out)
{
    for (int i = 0; i < CLOUD_ACT__COUNT; i++) {
        if (strcmp(verb, VERBS[i]) == 0) {
            *out = (enum cloud_rollout_action)i;
            return FERRY_OK;
        }
    }
    return FERRY_E_NOT_FOUND;
}

/* The transition on r (in memory), or why not. */
static enum ferry_err apply(struct cloud_inventory *inv, struct cloud_rollout *r,
                            enum cloud_rollout_action a, int64_t now, char what[CLOUD_ACT_WHAT_MAX],
                            struct ferry_diag *d)
{
    const char *state = ferry_rollout_state_name(r->state);
    if (ferry_rollout_state_is_final(r->state))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rollout %" PRId64 " is %s: nothing to change",
                          r->id, state);
    switch (a) {
    case CLOUD_ACT_PAUSE:
        if (r->state != FERRY_ROLLOUT_RUNNING && r->state != FERRY_ROLLOUT_SCHEDULED)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "rollout %" PRId64 " is %s, not running",
                              r->id, state);
        r->state = FERRY_ROLLOUT_PAUSED;
        break;
    case CLOUD_ACT_RESUME:
        if (r->state == FERRY_ROLLOUT_HALTED)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "rollout %" PRId64 " halted on failures: 'rollout retry' goes on, "
                              "'rollout cancel' ends it",
                              r->id);
        if (r->state != FERRY_ROLLOUT_PAUSED)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "rollout %" PRId64 " is %s, not paused",
                              r->id, state);
        r->state = r->open_waves ? FERRY_ROLLOUT_RUNNING : FERRY_ROLLOUT_SCHEDULED;
        r->resume++;
        break;
    case CLOUD_ACT_NEXT: {
        if (r->state != FERRY_ROLLOUT_RUNNING && r->state != FERRY_ROLLOUT_SCHEDULED)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "rollout %" PRId64 " is %s: resume or retry it first", r->id, state);
        if (r->open_waves >= r->plan.nwaves)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "rollout %" PRId64 ": every wave is open",
                              r->id);
        enum ferry_err err = cloud_rollout_wave_opened(inv, r->id, r->open_waves, now, d);
        if (err != FERRY_OK)
            return err;
        r->open_waves++;
        r->state = FERRY_ROLLOUT_RUNNING;
        snprintf(what, CLOUD_ACT_WHAT_MAX, "wave %u of %zu opened by hand", r->open_waves,
                 r->plan.nwaves);
        r->revision++;
        return FERRY_OK;
    }
    case CLOUD_ACT_CANCEL:
        r->state = FERRY_ROLLOUT_CANCELLED;
        break;
    case CLOUD_ACT_RETRY:
        if (r->state != FERRY_ROLLOUT_HALTED)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "rollout %" PRId64 " is %s, not halted",
                              r->id, state);
        r->state = r->open_waves ? FERRY_ROLLOUT_RUNNING : FERRY_ROLLOUT_SCHEDULED;
        r->retry_at = now;
        r->resume++;
        break;
    default:
        return ferry_fail(d, FERRY_E_INVALID_ARG, "unknown rollout action %d", (int)a);
    }
    snprintf(what, CLOUD_ACT_WHAT_MAX, "%s", ferry_rollout_state_name(r->state));
    r->state_at = now;
    r->revision++;
    return FERRY_OK;
}

enum ferry_err cloud_rollout_act(struct cloud_inventory *inv, int64_t id,
                                 enum cloud_rollout_action a, const char *actor, const char *reason,
                                 int64_t now, char what[CLOUD_ACT_WHAT_MAX], struct ferry_diag *d)
{
    struct cloud_rollout r;
    memset(&r, 0, sizeof(r));
    what[0] = '\0';
    if ((unsigned)a >= CLOUD_ACT__COUNT)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "unknown rollout action %d", (int)a);
    enum ferry_err err = cloud_rollouts_begin(inv, d);
    if (err != FERRY_OK)
        return err;
    err = cloud_rollout_load(inv, id, &r, d);
    if (err == FERRY_OK)
        err = apply(inv, &r, a, now, what, d);
    if (err == FERRY_OK) {
        bool why = reason && reason[0];
        char text[CLOUD_REASON_MAX];
        snprintf(text, sizeof(text), "%s%s%.200s", what, why ? ": " : "", why ? reason : "");
        snprintf(r.reason, sizeof(r.reason), "%.160s by %.80s", text, actor);
        err = cloud_rollout_log(inv, id, now, actor, LOGGED[a], text, d);
    }
    if (err == FERRY_OK)
        err = cloud_rollout_save(inv, &r, d);
    if (err == FERRY_OK)
        err = cloud_rollouts_commit(inv, d);
    if (err != FERRY_OK) {
        cloud_rollouts_rollback(inv);
        what[0] = '\0';
    }
    cloud_rollout_clear(&r);
    return err;
}

void cloud_rollout_view_fill(const struct cloud_rollout *r, const struct cloud_wave_tally *waves,
                             const struct cloud_halt_tally *halt, int64_t now,
                             struct ferry_rollout_view *v)
{
    memset(v, 0, sizeof(*v));
    v->id = (uint64_t)r->id;
    snprintf(v->product, sizeof(v->product), "%s", r->product);
    snprintf(v->release, sizeof(v->release), "%s", r->release);
    snprintf(v->version, sizeof(v->version), "%s", r->version);
    v->seq = r->seq;
    snprintf(v->revert_release, sizeof(v->revert_release), "%s", r->revert_release);
    v->revert_seq = r->revert_seq;
    v->state = r->state;
    v->plan = &r->plan;
    v->open_waves = r->open_waves;
    v->created_at = r->created_at;
    v->start_at = r->start_at;
    v->state_at = r->state_at;
    v->revision = r->revision;
    snprintf(v->created_by, sizeof(v->created_by), "%s", r->created_by);
    for (size_t i = 0; i < r->plan.nwaves && i < FERRY_ROLLOUT_MAX_WAVES; i++) {
        v->waves[i].open = i < r->open_waves;
        v->waves[i].opened_at = waves[i].opened_at;
        v->waves[i].targets = waves[i].targets;
        memcpy(v->waves[i].by_state, waves[i].by_state, sizeof(v->waves[i].by_state));
        v->waves[i].last_success_at = waves[i].last_success_at;
    }
    v->halt_finals = halt->finals;
    v->halt_failed = halt->failed;
    struct cloud_rollout_rules rules = {r->plan.success_pct, r->plan.min_final, r->plan.halt_pct,
                                        r->plan.soak_s};
    struct cloud_rollout_view cv = {
        r->state, (uint32_t)r->plan.nwaves, r->open_waves, r->start_at, waves, *halt};
    struct cloud_decision dec;
    cloud_rollout_decide(&rules, &cv, now, &dec);
    if (dec.wait == CLOUD_WAIT_HALTED || dec.wait == CLOUD_WAIT_PAUSED)
        snprintf(v->waiting, sizeof(v->waiting), "%.150s (%.100s)", dec.reason, r->reason);
    else if (dec.step == CLOUD_STEP_NONE)
        snprintf(v->waiting, sizeof(v->waiting), "%s", dec.reason);
    else
        snprintf(v->waiting, sizeof(v->waiting), "'ferry-cloud serve' is about to act: %.200s",
                 dec.reason);
}

enum ferry_err cloud_rollout_view_make(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                       int64_t now, struct ferry_rollout_view *v,
                                       struct ferry_diag *d)
{
    struct cloud_wave_tally waves[FERRY_ROLLOUT_MAX_WAVES];
    struct cloud_halt_tally halt;
    enum ferry_err err = cloud_rollout_tally(inv, r, waves, &halt, d);
    if (err == FERRY_OK)
        cloud_rollout_view_fill(r, waves, &halt, now, v);
    return err;
}
