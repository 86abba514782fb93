#include "cloud_verdict.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void refuse(struct cloud_judgement *out, enum ferry_err reason)
{
    out->verdict = CLOUD_REFUSE;
    out->reason = reason;
    memset(out->bind, 0, sizeof(out->bind));
}

void cloud_judge(const struct ferry_status *rec, const char *const *path, size_t npath,
                 const struct cloud_facts *facts, struct cloud_judgement *out)
{
    memset(out, 0, sizeof(*out));
    out->verdict = CLOUD_STORE;
    if (facts->have_seq && ferry_status_same(&facts->same, rec)) {
        out->verdict = CLOUD_DUPLICATE;
        return;
    }
    for (size_t i = 0; i + 1 < npath && i + 1 < CLOUD_PATH_MAX; i++) {
        const char *bound = facts->bound[i];
        if (!bound[0]) {
            out->bind[i] = true;
        } else if (strcmp(bound, path[i + 1]) != 0) {
            refuse(out, FERRY_E_WRONG_GATEWAY);
            snprintf(out->detail, sizeof(out->detail),
                     "%s is bound to gateway %s, not %s (a move is made with 'ferry-cloud bind')",
                     path[i], bound, path[i + 1]);
            return;
        }
    }
    if (facts->have_seq) {
        refuse(out, FERRY_E_CONFLICT);
        snprintf(out->detail, sizeof(out->detail),
                 "another record of node %s under seq %" PRIu64
                 " is stored (state %s, through %s); this one (state %s) is not the same",
                 rec->node, rec->seq, ferry_state_name(facts->same.state),
                 facts->same.gateway[0] ? facts->same.gateway : "?", ferry_state_name(rec->state));
        return;
    }
    if (!ferry_status_seq_in_window(facts->last_seq, rec->seq)) {
        refuse(out, FERRY_E_SEQ_RANGE);
        snprintf(out->detail, sizeof(out->detail),
                 "seq %" PRIu64 " of node %s is more than %d past its last stored seq %" PRIu64,
                 rec->seq, rec->node, FERRY_STATUS_SEQ_WINDOW, facts->last_seq);
    }
}
