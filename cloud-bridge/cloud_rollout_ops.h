/* What the operator's tools do to a rollout and see of it. The commands
 * (`ferry-cloud rollout`, cloud_rollout_cli.h) and the HTTP API
 * (cloud_http.h) call these same functions, so a pause from the page and one
 * from the shell are one implementation and one kind of log entry.
 *
 * Actions: pause, resume, next, cancel, retry. cloud_rollout_act() is one
 * write transaction on the inventory (BEGIN IMMEDIATE: it waits for serve's
 * controller or another writer, cloud_inventory_rollout.h) that loads the
 * rollout, checks that the action applies to its state, logs it in the
 * rollout's decision log with who did it and why, and saves it with a new
 * revision. serve's controller notices at its next tick and tells the
 * gateways. The rules per state:
 *   pause    running or scheduled -> paused
 *   resume   paused -> running (scheduled if no wave is open yet); a halted
 *            rollout needs retry instead
 *   next     running or scheduled: opens the next wave now, whatever its gate
 *   cancel   any state but cancelled and completed -> cancelled
 *   retry    halted -> running (scheduled...); final states reported so far
 *            stop counting toward the halt rule
 *
 * The view (struct ferry_rollout_view, proto/ferry_rollout.h) is what
 * `rollout show --json` prints and GET /api/v1/rollouts/ID serves: the
 * rollout's fields, per-wave counts, the halt figures and why it waits, as
 * the controller would judge it at `now`. */
#ifndef FERRY_CLOUD_ROLLOUT_OPS_H
#define FERRY_CLOUD_ROLLOUT_OPS_H

#include "cloud_inventory_rollout.h"
#include "cloud_rollout_calc.h"
#include "ferry_err.h"
#include "ferry_rollout.h"

#include <stdint.h>

enum cloud_rollout_action {
    CLOUD_ACT_PAUSE,
    CLOUD_ACT_RESUME,
    CLOUD_ACT_NEXT,
    CLOUD_ACT_CANCEL,
    CLOUD_ACT_RETRY,
    CLOUD_ACT__COUNT
};

#define CLOUD_ACT_WHAT_MAX 128

/* "pause", "resume", "next", "cancel", "retry": the command's and the API's
 * name of the action. */
const char *cloud_rollout_action_verb(enum cloud_rollout_action a);
/* FERRY_E_NOT_FOUND for any other word. */
enum ferry_err cloud_rollout_action_parse(const char *verb,
                                          enum cloud_rollout_action *out) FERRY_MUST_CHECK;

/* Does action a to rollout id at unix time now, as actor (the decision
 * log's "by": "operator:<name>", ...; at most CLOUD_ACTOR_MAX bytes) for
 * reason (may be NULL or ""; UTF-8). what (CLOUD_ACT_WHAT_MAX bytes) gets
 * what happened ("paused", "wave 2 of 3 opened by hand"). FERRY_E_NOT_FOUND
 * when there is no such rollout; FERRY_E_INVALID_ARG, naming the state,
 * when the action does not apply to it (nothing is written then);
 * FERRY_E_BUSY when another writer held the inventory too long. */
enum ferry_err cloud_rollout_act(struct cloud_inventory *inv, int64_t id,
                                 enum cloud_rollout_action a, const char *actor, const char *reason,
                                 int64_t now, char what[CLOUD_ACT_WHAT_MAX],
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Fills v from rollout r (borrowed: v->plan points into it) and its counts
 * (waves[0..r->plan.nwaves)), deciding at now why it waits. v->log is left
 * NULL. Pure. */
void cloud_rollout_view_fill(const struct cloud_rollout *r, const struct cloud_wave_tally *waves,
                             const struct cloud_halt_tally *halt, int64_t now,
                             struct ferry_rollout_view *v);

/* The counts from the inventory (cloud_rollout_tally()), then the view. */
enum ferry_err cloud_rollout_view_make(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                       int64_t now, struct ferry_rollout_view *v,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
