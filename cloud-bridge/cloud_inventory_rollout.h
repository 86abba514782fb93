/* The rollout tables of the fleet inventory: the same database and
 * connection as cloud_inventory.h, created where missing on every open (a
 * row in inventory_parts says which version of them the file holds).
 *
 *   rollouts          one row per rollout: its release and revert release
 *                     (signed envelopes, exact bytes), its plan (JSON,
 *                     proto/ferry_rollout.h), state, open waves, times,
 *                     revision (grows with every change the gateways must
 *                     hear of) and resume counter;
 *   rollout_waves     when each wave opened and why;
 *   rollout_targets   one row per (rollout, node): wave, window, gateway,
 *                     and the latest state the node reported for the
 *                     release (and for the revert release), with the seq of
 *                     that record and when it arrived;
 *   rollout_log       every decision: when, by whom ("controller",
 *                     "operator:<name>", "gateway:<id>"), what and why;
 *   rollout_gw_halts  halts gateways made on their own, already logged;
 *   node_info         each node's description (proto/ferry_nodeinfo.h) as
 *                     its gateway last reported it.
 *
 * Everything a decision reads and writes happens inside one write
 * transaction (cloud_rollouts_begin(): CLOUD_DB_EXCLUSIVE), so several `serve`
 * instances sharing the file take turns and never decide the same step
 * twice. The rollout SQL is the driver's, beside the inventory's
 * (cloud_sql_sqlite.c).
 *
 * Same threading rule as the inventory: one thread per connection. */
#ifndef FERRY_CLOUD_INVENTORY_ROLLOUT_H
#define FERRY_CLOUD_INVENTORY_ROLLOUT_H

#include "cloud_inventory.h"
#include "cloud_rollout_calc.h"
#include "ferry_nodeinfo.h"
#include "ferry_rollout.h"

#include <stdbool.h>
#include <stdint.h>

#define CLOUD_ACTOR_MAX 80

struct cloud_rollout {
    int64_t id;
    char product[FERRY_ID_MAX + 1];
    char release[FERRY_NAME_MAX + 1];
    char version[FERRY_VERSION_MAX + 1];
    uint64_t seq;
    uint8_t *envelope; /* owned: cloud_rollout_clear() */
    size_t envelope_len;
    char revert_release[FERRY_NAME_MAX + 1]; /* "" without a revert release */
    uint64_t revert_seq;
    uint8_t *revert_envelope; /* owned, NULL without */
    size_t revert_len;
    struct ferry_rollout_plan plan;
    enum ferry_rollout_state state;
    uint32_t open_waves;
    int64_t created_at, start_at, state_at;
    int64_t retry_at; /* the halt rule counts final states from here on */
    uint64_t revision, resume;
    bool promoted; /* completed and published as the product's release */
    char created_by[CLOUD_ACTOR_MAX + 1];
    char reason[CLOUD_REASON_MAX]; /* of the last decision, or why it waits */
};

/* Frees the envelopes and zeroes r. */
void cloud_rollout_clear(struct cloud_rollout *r);

/* One exclusive transaction (cloud_db.h: it waits for another process's). */
enum ferry_err cloud_rollouts_begin(struct cloud_inventory *inv,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_rollouts_commit(struct cloud_inventory *inv,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_rollouts_rollback(struct cloud_inventory *inv);

/* Inserts r (its id is set) and logs "created" by actor. */
enum ferry_err cloud_rollout_insert(struct cloud_inventory *inv, struct cloud_rollout *r,
                                    const char *actor, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Loads rollout id into out (clear it afterwards). FERRY_E_NOT_FOUND. */
enum ferry_err cloud_rollout_load(struct cloud_inventory *inv, int64_t id,
                                  struct cloud_rollout *out, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Writes back what changes: state, open_waves, state_at, retry_at,
 * revision, resume, promoted, reason. */
enum ferry_err cloud_rollout_save(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* The ids, in id order, into a new array (free() it), of the rollouts not
 * cancelled or completed, and of those that were at or after final_since
 * (INT64_MIN: every rollout; INT64_MAX: only the active ones). */
enum ferry_err cloud_rollout_ids(struct cloud_inventory *inv, int64_t final_since, int64_t **ids,
                                 size_t *n, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Whether a rollout is not cancelled or completed. */
bool cloud_rollout_is_active(const struct cloud_rollout *r);

/* The rollout of product that is not cancelled or completed: FERRY_OK with
 * *id, or FERRY_E_NOT_FOUND. */
enum ferry_err cloud_rollout_active_for(struct cloud_inventory *inv, const char *product,
                                        int64_t *id, struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- the decision log ------------------------------------------------------------ */

struct cloud_rollout_log_entry {
    int64_t at;
    char actor[CLOUD_ACTOR_MAX + 1];
    char action[32];
    char reason[CLOUD_REASON_MAX];
};

enum ferry_err cloud_rollout_log(struct cloud_inventory *inv, int64_t id, int64_t at,
                                 const char *actor, const char *action, const char *reason,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

typedef enum ferry_err (*cloud_rollout_log_cb)(void *arg, const struct cloud_rollout_log_entry *e);
enum ferry_err cloud_rollout_each_log(struct cloud_inventory *inv, int64_t id,
                                      cloud_rollout_log_cb cb, void *arg,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- waves and targets --------------------------------------------------------------- */

/* Records that wave (0-based) opened at `at`. */
enum ferry_err cloud_rollout_wave_opened(struct cloud_inventory *inv, int64_t id, unsigned wave,
                                         int64_t at, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Per-wave counts (waves[0..r->plan.nwaves)) and the halt counts (final
 * states that arrived at or after r->retry_at). */
enum ferry_err cloud_rollout_tally(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                   struct cloud_wave_tally *waves, struct cloud_halt_tally *halt,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* A node of the rollout's product that was described, or reported, at or
 * after `since`. */
struct cloud_rollout_candidate {
    const struct ferry_nodeinfo *info;
    const char *gateway;   /* from its description */
    const char *version;   /* its latest record's, "" if none */
    bool targeted;         /* already a target... */
    unsigned wave;         /* ...in this wave */
    const char *target_gw; /* ...listed under this gateway */
};
typedef enum ferry_err (*cloud_rollout_candidate_cb)(void *arg,
                                                     const struct cloud_rollout_candidate *c);
enum ferry_err cloud_rollout_candidates(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                        int64_t since, cloud_rollout_candidate_cb cb, void *arg,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adds a target, or moves an existing one to another gateway. */
enum ferry_err cloud_rollout_target_put(struct cloud_inventory *inv, int64_t id, const char *node,
                                        const char *gateway, unsigned wave, int window,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;

/* Takes into the targets every record of the release (or the revert
 * release) that reached the nodes table at or after `since` and is newer
 * than what the target holds. *changed: targets updated. */
enum ferry_err cloud_rollout_refresh(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                     int64_t since, uint64_t *changed,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

struct cloud_rollout_target {
    char node[FERRY_ID_MAX + 1];
    char gateway[FERRY_ID_MAX + 1];
    unsigned wave;
    int window;       /* -1: none */
    int state;        /* enum ferry_state, -1: no record for the release yet */
    int revert_state; /* the same for the revert release */
    int64_t state_at; /* when the state arrived, 0: never */
};
typedef enum ferry_err (*cloud_rollout_target_cb)(void *arg, const struct cloud_rollout_target *t);
/* Every target, ordered by gateway then node; gateway NULL: all. */
enum ferry_err cloud_rollout_each_target(struct cloud_inventory *inv, int64_t id,
                                         const char *gateway, cloud_rollout_target_cb cb, void *arg,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

/* The latest record of every target that has one, in node order (the
 * nodes table's rows, as cloud_inventory_each_node() gives them). */
enum ferry_err cloud_rollout_each_node(struct cloud_inventory *inv, int64_t id,
                                       cloud_inventory_row_cb cb, void *arg,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* Whether a gateway's own halt (at its resume counter) was already taken
 * in; marks it taken. */
enum ferry_err cloud_rollout_gateway_halt(struct cloud_inventory *inv, int64_t id,
                                          const char *gateway, uint64_t resume, bool *first,
                                          struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- node descriptions ------------------------------------------------------------------ */

/* Stores a node's description as gateway reported it (newer replaces). */
enum ferry_err cloud_nodeinfo_put(struct cloud_inventory *inv, const struct ferry_nodeinfo *ni,
                                  const char *gateway, int64_t now,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* FERRY_E_NOT_FOUND when the node never described itself. */
enum ferry_err cloud_nodeinfo_get(struct cloud_inventory *inv, const char *node,
                                  struct ferry_nodeinfo *out, char gateway[FERRY_ID_MAX + 1],
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
