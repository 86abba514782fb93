#include "cloud_rollout_calc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

uint64_t cloud_tally_final(const struct cloud_wave_tally *t)
{
    uint64_t n = 0;
    for (int s = 0; s < FERRY_STATE__COUNT; s++)
        if (ferry_state_is_final((enum ferry_state)s))
            n += t->by_state[s];
    return n;
}

uint64_t cloud_tally_failed(const struct cloud_wave_tally *t)
{
    return t->by_state[FERRY_STATE_FAILED] + t->by_state[FERRY_STATE_ROLLED_BACK];
}

uint64_t cloud_tally_silent(const struct cloud_wave_tally *t)
{
    uint64_t reported = 0;
    for (int s = 0; s < FERRY_STATE__COUNT; s++)
        reported += t->by_state[s];
    return t->targets > reported ? t->targets - reported : 0;
}

/* a * 100 > pct * b without overflow for counts below 2^56. */
static bool above_pct(uint64_t a, uint64_t b, uint32_t pct)
{
    return a * 100 > (uint64_t)pct * b;
}

static unsigned pct_of(uint64_t a, uint64_t b)
{
    return b ? (unsigned)(a * 100 / b) : 0;
}

bool cloud_rollout_should_halt(const struct cloud_rollout_rules *r,
                               const struct cloud_halt_tally *h, char reason[CLOUD_REASON_MAX])
{
    bool halt = h->finals >= r->min_final && above_pct(h->failed, h->finals, r->halt_pct);
    if (reason)
        snprintf(reason, CLOUD_REASON_MAX,
                 "%" PRIu64 " of %" PRIu64 " final states failed or rolled back (%u%%); the halt "
                 "rule is more than %u%% of at least %u",
                 h->failed, h->finals, pct_of(h->failed, h->finals), r->halt_pct, r->min_final);
    return halt;
}

static void wait_for(struct cloud_decision *out, enum cloud_wait w, int64_t wake_at)
{
    out->step = CLOUD_STEP_NONE;
    out->wait = w;
    out->wake_at = wake_at;
}

/* The gate of the last open wave, k. */
static void gate(const struct cloud_rollout_rules *r, const struct cloud_rollout_view *v,
                 int64_t now, struct cloud_decision *out)
{
    uint32_t k = v->open_waves - 1;
    const struct cloud_wave_tally *t = &v->waves[k];
    uint64_t finals = cloud_tally_final(t), ok = t->by_state[FERRY_STATE_SUCCESS];
    uint64_t need = t->targets < r->min_final ? t->targets : r->min_final;
    if (t->targets == 0) {
        int64_t until = t->opened_at + r->soak_s;
        if (now < until) {
            wait_for(out, CLOUD_WAIT_SOAK, until);
            snprintf(out->reason, sizeof(out->reason),
                     "wave %u has no targets yet; it passes at the end of the soak time", k + 1);
            return;
        }
        out->step = CLOUD_STEP_OPEN_WAVE;
        snprintf(out->reason, sizeof(out->reason),
                 "wave %u had no targets for the soak time (%" PRId64 " s)", k + 1, r->soak_s);
        return;
    }
    if (finals < need) {
        wait_for(out, CLOUD_WAIT_FINALS, 0);
        snprintf(out->reason, sizeof(out->reason),
                 "wave %u: %" PRIu64 " of %" PRIu64 " targets final, the gate needs %" PRIu64,
                 k + 1, finals, t->targets, need);
        return;
    }
    if (ok * 100 < (uint64_t)r->success_pct * finals) {
        wait_for(out, CLOUD_WAIT_SUCCESS, 0);
        snprintf(out->reason, sizeof(out->reason),
                 "wave %u: %" PRIu64 " of %" PRIu64 " final states are success (%u%%), the gate "
                 "needs %u%%",
                 k + 1, ok, finals, pct_of(ok, finals), r->success_pct);
        return;
    }
    int64_t since = t->last_success_at ? t->last_success_at : t->opened_at;
    if (now < since + r->soak_s) {
        wait_for(out, CLOUD_WAIT_SOAK, since + r->soak_s);
        snprintf(out->reason, sizeof(out->reason),
                 "wave %u passed its gate (%" PRIu64 " of %" PRIu64 " final are success); soaking "
                 "for %" PRId64 " s more",
                 k + 1, ok, finals, since + r->soak_s - now);
        return;
    }
    out->step = CLOUD_STEP_OPEN_WAVE;
    snprintf(out->reason, sizeof(out->reason),
             "wave %u: %" PRIu64 " of %" PRIu64 " final states success (%u%%, needs %u%%), soaked "
             "%" PRId64 " s",
             k + 1, ok, finals, pct_of(ok, finals), r->success_pct, r->soak_s);
}

void cloud_rollout_decide(const struct cloud_rollout_rules *r, const struct cloud_rollout_view *v,
                          int64_t now, struct cloud_decision *out)
{
    memset(out, 0, sizeof(*out));
    switch (v->state) {
    case FERRY_ROLLOUT_CANCELLED:
    case FERRY_ROLLOUT_COMPLETED:
    case FERRY_ROLLOUT__COUNT:
        wait_for(out, CLOUD_WAIT_ENDED, 0);
        snprintf(out->reason, sizeof(out->reason), "the rollout has ended (%s)",
                 ferry_rollout_state_name(v->state));
        return;
    case FERRY_ROLLOUT_SCHEDULED:
        if (now >= v->start_at) {
            out->step = CLOUD_STEP_START;
            snprintf(out->reason, sizeof(out->reason), "start time reached");
        } else {
            wait_for(out, CLOUD_WAIT_START, v->start_at);
            snprintf(out->reason, sizeof(out->reason), "starts in %" PRId64 " s",
                     v->start_at - now);
        }
        return;
    case FERRY_ROLLOUT_HALTED:
        wait_for(out, CLOUD_WAIT_HALTED, 0);
        snprintf(out->reason, sizeof(out->reason),
                 "halted: 'rollout retry' goes on, 'rollout cancel' ends it");
        return;
    case FERRY_ROLLOUT_RUNNING:
    case FERRY_ROLLOUT_PAUSED:
        break;
    }
    char why[CLOUD_REASON_MAX];
    if (cloud_rollout_should_halt(r, &v->halt, why)) {
        out->step = CLOUD_STEP_HALT;
        snprintf(out->reason, sizeof(out->reason), "%s", why);
        return;
    }
    if (v->state == FERRY_ROLLOUT_PAUSED) {
        wait_for(out, CLOUD_WAIT_PAUSED, 0);
        snprintf(out->reason, sizeof(out->reason), "paused: 'rollout resume' goes on");
        return;
    }
    uint64_t targets = 0, finals = 0;
    for (uint32_t k = 0; k < v->nwaves; k++) {
        targets += v->waves[k].targets;
        finals += cloud_tally_final(&v->waves[k]);
    }
    if (targets == 0) {
        wait_for(out, CLOUD_WAIT_NO_TARGETS, 0);
        snprintf(out->reason, sizeof(out->reason),
                 "no node matches yet (nodes are targeted once their gateway describes them)");
        return;
    }
    if (v->open_waves == 0) { /* a running rollout always has wave 1 open */
        out->step = CLOUD_STEP_OPEN_WAVE;
        snprintf(out->reason, sizeof(out->reason), "no wave was open");
        return;
    }
    if (v->open_waves < v->nwaves) {
        gate(r, v, now, out);
        return;
    }
    if (finals == targets) {
        out->step = CLOUD_STEP_COMPLETE;
        snprintf(out->reason, sizeof(out->reason),
                 "every wave open and all %" PRIu64 " targets final", targets);
        return;
    }
    wait_for(out, CLOUD_WAIT_FINISH, 0);
    snprintf(out->reason, sizeof(out->reason),
             "every wave open; %" PRIu64 " of %" PRIu64 " targets not final yet", targets - finals,
             targets);
}

enum cloud_settle cloud_settle_nodes(uint64_t targeted, uint64_t finals, uint64_t successes,
                                     uint64_t expect)
{
    if (targeted < (expect ? expect : 1) || finals < targeted)
        return CLOUD_SETTLE_PENDING;
    return successes == targeted ? CLOUD_SETTLE_SUCCESS : CLOUD_SETTLE_UNSUCCESSFUL;
}

enum cloud_settle cloud_settle_rollout(enum ferry_rollout_state state, uint64_t targets,
                                       uint64_t successes)
{
    bool all = targets > 0 && successes == targets;
    switch (state) {
    case FERRY_ROLLOUT_COMPLETED:
    case FERRY_ROLLOUT_HALTED:
    case FERRY_ROLLOUT_CANCELLED:
        return all ? CLOUD_SETTLE_SUCCESS : CLOUD_SETTLE_UNSUCCESSFUL;
    default:
        return CLOUD_SETTLE_PENDING;
    }
}
