#include "gw_selfupd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool gw_selfupd_node_busy(const struct ferry_status *last, uint64_t stored_ms, uint64_t now_ms)
{
    if (last->seq == 0 || now_ms - stored_ms > GW_SELFUPD_BUSY_STALE_MS)
        return false;
    switch (last->state) {
    case FERRY_STATE_DOWNLOADING:
    case FERRY_STATE_VERIFYING:
    case FERRY_STATE_INSTALLING:
    case FERRY_STATE_PENDING_REBOOT:
        return true;
    default:
        return false;
    }
}

static void wait_until(struct gw_selfupd_out *out, int64_t at, const char *why)
{
    out->verdict = GW_SELFUPD_WAIT;
    out->state = FERRY_STATE_DEFERRED;
    out->retry_at = at;
    snprintf(out->why, sizeof(out->why), "%s", why);
}

static void give_up(struct gw_selfupd_out *out, enum ferry_state state, enum ferry_err error,
                    const char *why)
{
    out->verdict = GW_SELFUPD_GIVE_UP;
    out->state = state;
    out->error = error;
    snprintf(out->why, sizeof(out->why), "%s", why);
}

void gw_selfupd_decide(const struct gw_selfupd_in *in, struct gw_selfupd_out *out)
{
    memset(out, 0, sizeof(*out));
    out->verdict = GW_SELFUPD_NOTHING;
    const struct ferry_manifest *m = in->m;
    if (!m || !in->cached || in->given_up)
        return;
    if (m->seq <= in->running_seq || m->seq <= in->floor_seq ||
        (in->running_sha && memcmp(in->running_sha, m->sha256, FERRY_SHA256_LEN) == 0))
        return; /* runs it already, or something newer */
    char why[FERRY_STATUS_MESSAGE_MAX + 1];
    if (!ferry_manifest_matches_hw(m, in->hw_model, in->hw_revision)) {
        snprintf(why, sizeof(why), "release %s does not list this gateway's hardware %s%s%s",
                 m->release_id, in->hw_model, in->hw_revision ? " revision " : "",
                 in->hw_revision ? in->hw_revision : "");
        give_up(out, FERRY_STATE_REJECTED, FERRY_E_INCOMPATIBLE_HW, why);
        return;
    }
    const struct ferry_constraints *c = &m->constraints;
    if (c->window_end && in->now >= c->window_end) {
        snprintf(why, sizeof(why), "the install window of %s ended at %" PRId64, m->release_id,
                 c->window_end);
        give_up(out, FERRY_STATE_FAILED, FERRY_E_EXPIRED, why);
        return;
    }
    if (c->window_start && in->now < c->window_start) {
        snprintf(why, sizeof(why), "waiting for the install window (opens at %" PRId64 ")",
                 c->window_start);
        wait_until(out, c->window_start, why);
        return;
    }
    if (in->busy == 0) {
        out->verdict = GW_SELFUPD_INSTALL;
        return;
    }
    bool deadline = c->max_deferral > 0 && in->now >= in->ready_since + c->max_deferral;
    if (deadline && c->must_be_idle) {
        snprintf(why, sizeof(why),
                 "%zu node(s) still busy after the longest deferral (%" PRId64 " s), and the "
                 "release must wait for idle",
                 in->busy, c->max_deferral);
        give_up(out, FERRY_STATE_FAILED, FERRY_E_BUSY, why);
        return;
    }
    if (deadline) {
        out->verdict = GW_SELFUPD_INSTALL;
        out->forced = true;
        snprintf(out->why, sizeof(out->why),
                 "installing while %zu node(s) are busy: deferred for the longest allowed (%" PRId64
                 " s)",
                 in->busy, c->max_deferral);
        return;
    }
    int64_t at = in->now + GW_SELFUPD_RECHECK_S;
    if (c->max_deferral > 0 && in->ready_since + c->max_deferral < at)
        at = in->ready_since + c->max_deferral;
    snprintf(why, sizeof(why),
             "waiting for %zu node(s) downloading or installing through this "
             "gateway",
             in->busy);
    wait_until(out, at, why);
}
