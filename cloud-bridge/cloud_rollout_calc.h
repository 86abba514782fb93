/* The arithmetic of a rollout: when the next wave opens, when the rollout
 * halts, when it is complete, and the verdicts behind `ferry-cloud status
 * --wait` (with or without --rollout). Shared by the controller inside
 * `serve` (cloud_rollout_ctl.h), `rollout show` (why it waits) and `status`.
 * Pure: counts and the time come in, a decision comes out.
 *
 * The rules (PROTOCOL.md, "Rollouts"; README, "Rolling out"):
 * - Final states are success, failed, rolled-back and rejected. A target
 *   counts by the latest state it reported for the rollout's release.
 * - Success gate. Wave k+1 opens when wave k has at least
 *   min(min_final, its targets) final states, at least success_pct % of
 *   them success, and soak_s has passed since the wave's last success (or,
 *   with none, since it opened). An empty wave passes once soak_s has passed
 *   since it opened: nodes that have not described themselves yet get that
 *   long to fall into it. With no target at all the rollout waits.
 * - Halt. Over every target, counting only final states reported since the
 *   last retry: at least min_final final and more than halt_pct % of them
 *   failed or rolled-back. Checked while running or paused.
 * - Complete. Every wave open, at least one target, every target final.
 * Scheduled rollouts start (open wave 0) at their start time; paused ones
 * open no wave; halted, cancelled and completed ones decide nothing. */
#ifndef FERRY_CLOUD_ROLLOUT_CALC_H
#define FERRY_CLOUD_ROLLOUT_CALC_H

#include "ferry_rollout.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stdint.h>

#define CLOUD_REASON_MAX 256

/* One wave's targets, by the state of their latest record for the release. */
struct cloud_wave_tally {
    uint64_t targets;                      /* assigned to the wave */
    uint64_t by_state[FERRY_STATE__COUNT]; /* of those that reported */
    int64_t opened_at;                     /* unix seconds; 0: not open */
    int64_t last_success_at;               /* 0: no success yet */
};

uint64_t cloud_tally_final(const struct cloud_wave_tally *t);
uint64_t cloud_tally_failed(const struct cloud_wave_tally *t); /* failed + rolled-back */
/* Targets that have not reported on the release at all. */
uint64_t cloud_tally_silent(const struct cloud_wave_tally *t);

struct cloud_rollout_rules {
    uint32_t success_pct, min_final, halt_pct;
    int64_t soak_s;
};

/* Final states (and failures among them) since the last retry. */
struct cloud_halt_tally {
    uint64_t finals, failed;
};

/* Whether the halt rule holds; reason (may be NULL) says why, or how far
 * from it the rollout is. */
bool cloud_rollout_should_halt(const struct cloud_rollout_rules *r,
                               const struct cloud_halt_tally *h, char reason[CLOUD_REASON_MAX]);

struct cloud_rollout_view {
    enum ferry_rollout_state state;
    uint32_t nwaves, open_waves;
    int64_t start_at;
    const struct cloud_wave_tally *waves; /* nwaves of them */
    struct cloud_halt_tally halt;
};

enum cloud_step {
    CLOUD_STEP_NONE,      /* nothing to do now (see wait) */
    CLOUD_STEP_START,     /* scheduled -> running, wave 0 opens */
    CLOUD_STEP_OPEN_WAVE, /* wave open_waves opens */
    CLOUD_STEP_HALT,      /* -> halted */
    CLOUD_STEP_COMPLETE,  /* -> completed */
};

enum cloud_wait {
    CLOUD_WAIT_NONE,
    CLOUD_WAIT_START,      /* for start_at */
    CLOUD_WAIT_PAUSED,     /* for the operator */
    CLOUD_WAIT_HALTED,     /* for the operator: retry or cancel */
    CLOUD_WAIT_NO_TARGETS, /* no node matches yet */
    CLOUD_WAIT_FINALS,     /* for final states in the last open wave */
    CLOUD_WAIT_SUCCESS,    /* too few successes among them */
    CLOUD_WAIT_SOAK,       /* for the soak time */
    CLOUD_WAIT_FINISH,     /* every wave open: for the targets to finish */
    CLOUD_WAIT_ENDED,      /* cancelled or completed */
};

struct cloud_decision {
    enum cloud_step step;
    enum cloud_wait wait;          /* when step is NONE */
    int64_t wake_at;               /* START and SOAK: when to look again; else 0 */
    char reason[CLOUD_REASON_MAX]; /* for the decision log, or why it waits */
};

void cloud_rollout_decide(const struct cloud_rollout_rules *r, const struct cloud_rollout_view *v,
                          int64_t now, struct cloud_decision *out);

/* ---- status --wait ------------------------------------------------------------ */

enum cloud_settle {
    CLOUD_SETTLE_PENDING,      /* keep waiting */
    CLOUD_SETTLE_SUCCESS,      /* exit 0 */
    CLOUD_SETTLE_UNSUCCESSFUL, /* exit 3 */
};

/* Nodes matching status's filters: settled once at least `expect` (>= 1)
 * are targeted and every one of them is final. */
enum cloud_settle cloud_settle_nodes(uint64_t targeted, uint64_t finals, uint64_t successes,
                                     uint64_t expect);

/* A rollout: pending while scheduled, running or paused; halted and
 * cancelled are unsuccessful unless every target had already succeeded;
 * completed is a success when every target succeeded. */
enum cloud_settle cloud_settle_rollout(enum ferry_rollout_state state, uint64_t targets,
                                       uint64_t successes);

#endif
