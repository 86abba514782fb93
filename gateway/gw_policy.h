/* The gateway's policy: which release to offer which node, whether a node
 * may fetch an artifact's blocks, and when that changes. Pure, like
 * edge-client/edge_fsm.h: no sockets, no files, no clock (wall time and a
 * monotonic time are arguments); what the daemon must do comes back as
 * effects (struct gw_policy_effects).
 *
 * What it knows, each copied in by the daemon:
 *   held      per product, the current and previous release the gateway
 *             holds (gw_releases.h) and whether each artifact is cached;
 *   rollouts  per product, the cloud's rollout document for this gateway
 *             (proto/ferry_rollout.h), its envelopes already verified, and
 *             whether their artifacts are cached;
 *   nodes     the status records nodes send (their state for a rollout's
 *             release), and the descriptions they give in their manifest
 *             requests (proto/ferry_nodeinfo.h).
 *
 * The rules (PROTOCOL.md, "Rollouts"):
 * - Baseline. Without a rollout, every node following a product is offered
 *   the product's current release once its artifact is cached, until then
 *   the previous one if that is cached, else nothing. A node that is not a
 *   target of the product's rollout, an anonymous client, and a target whose
 *   wave is not open, get the baseline: they keep the release they run.
 * - Rollout. A target in an open wave of a running (or completed) rollout is
 *   offered the rollout's release once its artifact is cached, at most
 *   rate_per_min new nodes a minute (the first offer is the start of its
 *   download); a node that started keeps being offered it, also while the
 *   rollout is paused. Scheduled rollouts offer nothing yet.
 * - Windows. A target whose window is closed is offered the release with a
 *   hold: download, but do not install for this many seconds (until the
 *   window opens), which the node reports as deferred.
 * - Halt. A halted rollout (by the cloud, or by this gateway: more than
 *   halt_pct % of at least min_final final states of its own targets failed
 *   or rolled back, counted from the records it relayed since the document's
 *   last resume) offers nothing new: targets that started and have not
 *   finished keep the release with a day's hold and their block requests are
 *   stalled (5.03), so they stop at their next block and go on after a
 *   retry; targets that installed it (installing, pending-reboot, success)
 *   are offered the revert release when there is one, else keep the
 *   release; the others get the baseline. A halt this gateway made is
 *   reported (struct ferry_rollout_report) and kept until a document with a
 *   higher resume counter (an operator's resume or retry) arrives.
 * - Cancelled. Like halted, without revert, and block requests are refused
 *   (4.03): downloads end.
 * - Artifacts. A rollout's release artifact is served to the targets that
 *   may download it (above) and to anonymous clients while the rollout runs;
 *   anyone else is refused, unless the artifact is also a held release's.
 * - Trust. With a timestamp role, a rollout's release and revert pass the
 *   same verdict as held releases (ferry_trust_verdict(), given to
 *   gw_policy_trust() with the time): FERRY_OK, offered as above;
 *   FERRY_E_STALE (the product's timestamp does not name it current, or
 *   expired), fetched and kept but not offered, since a fresh timestamp may
 *   name it soon; FERRY_E_WITHDRAWN, neither fetched, kept nor offered, and
 *   its blocks are refused (4.03). Where a release may not be offered, its
 *   targets get what they would get without it: the baseline, or for a
 *   halted rollout's installed targets the release they run (if offerable)
 *   when the revert may not be offered. Nodes check the timestamp too; this
 *   saves the downloads they would refuse.
 *
 * Documents: one per product; an older rollout id, or an older revision of
 * the same rollout, is ignored. Not thread-safe: the loop owns it. */
#ifndef FERRY_GW_POLICY_H
#define FERRY_GW_POLICY_H

#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_nodeinfo.h"
#include "ferry_rollout.h"
#include "ferry_sha256.h"
#include "ferry_status.h"
#include "ferry_trust.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_POLICY_MAX_PRODUCTS 64
#define GW_POLICY_MAX_NODES    200000 /* descriptions remembered */
#define GW_POLICY_HALT_HOLD_S  86400  /* hold while halted or cancelled */
#define GW_POLICY_STALL_S      60     /* Max-Age of a stalled block request */
#define GW_POLICY_WHY_MAX      256    /* gw_policy_trust()'s message */

struct gw_policy;

enum ferry_err gw_policy_new(uint64_t seed, struct gw_policy **out,
                             struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_policy_free(struct gw_policy *p); /* NULL is fine */

/* What the daemon must do after a call. */
struct gw_policy_effects {
    /* Products whose manifest observers must be notified (offers changed). */
    char notify[GW_POLICY_MAX_PRODUCTS][FERRY_ID_MAX + 1];
    size_t nnotify;
    bool report; /* publish (and keep) gw_policy_report() */
};

/* ---- inputs ----------------------------------------------------------------- */

/* A held release: env NULL when none. Copied. */
struct gw_policy_release {
    const uint8_t *env;
    size_t len;
    const struct ferry_manifest *m;
    bool cached;
};

/* The product's held releases changed (a new one, or a cache change). */
enum ferry_err gw_policy_held(struct gw_policy *p, const char *product,
                              const struct gw_policy_release *current,
                              const struct gw_policy_release *previous,
                              struct gw_policy_effects *fx) FERRY_MUST_CHECK;

/* A rollout document for this gateway. The caller verified its envelopes:
 * rel (and rev, NULL without a revert release) are their manifests. The
 * policy takes doc over (it frees it, also on error). FERRY_E_DOWNGRADE for
 * an older rollout or revision than held (nothing changes), FERRY_E_NOMEM. */
enum ferry_err gw_policy_rollout(struct gw_policy *p, struct ferry_rollout_doc *doc,
                                 const struct ferry_manifest *rel, const struct ferry_manifest *rev,
                                 int64_t wall, struct gw_policy_effects *fx) FERRY_MUST_CHECK;

/* The trust changed (a timestamp, a root) or a rollout document arrived:
 * product's rollout release and revert get t's verdict at wall (rules
 * above). Returns true when a verdict changed, with why saying what now
 * happens to them (for the log) and the product in fx->notify. A new
 * document starts from the verdicts its manifests had (FERRY_OK for others):
 * call this after every gw_policy_rollout(). */
bool gw_policy_trust(struct gw_policy *p, const char *product, const struct ferry_trust *t,
                     int64_t wall, struct gw_policy_effects *fx, char why[GW_POLICY_WHY_MAX]);

/* Whether artifact sha is complete in the cache. */
void gw_policy_cached(struct gw_policy *p, const uint8_t sha[FERRY_SHA256_LEN], bool cached,
                      struct gw_policy_effects *fx);

/* A status record a node sent (after it was stored). */
void gw_policy_status(struct gw_policy *p, const struct ferry_status *st, int64_t wall,
                      struct gw_policy_effects *fx);

/* The uplink came up or went down: a halt made while down says so, and is
 * reported again once up. */
void gw_policy_link(struct gw_policy *p, bool up, struct gw_policy_effects *fx);

/* A description a node gave. *changed when it is new or differs from the
 * last one (the daemon then publishes it). */
enum ferry_err gw_policy_describe(struct gw_policy *p, const struct ferry_nodeinfo *info,
                                  bool *changed) FERRY_MUST_CHECK;

/* ---- decisions ----------------------------------------------------------------- */

enum gw_offer_kind {
    GW_OFFER_NONE,     /* nothing: an empty 2.05 */
    GW_OFFER_BASELINE, /* the product's held release */
    GW_OFFER_ROLLOUT,  /* the rollout's release */
    GW_OFFER_REVERT,   /* the rollout's revert release */
};

struct gw_offer {
    enum gw_offer_kind kind;
    const uint8_t *env; /* valid until the next call that changes the policy */
    size_t len;
    uint32_t hold_s; /* 0: may install now */
};

/* What node (NULL: anonymous) following product is offered now. Counts a
 * start against the rate cap when this is a target's first offer. */
void gw_policy_offer(struct gw_policy *p, const char *product, const char *node, int64_t wall,
                     uint64_t mono_ms, struct gw_offer *out);

enum gw_admit {
    GW_ADMIT_SERVE,  /* serve the block */
    GW_ADMIT_STALL,  /* 5.03 with Max-Age *max_age_s: come back later */
    GW_ADMIT_REFUSE, /* 4.03: not for this node */
};

/* Whether node (NULL: anonymous) may fetch a block of artifact sha; why
 * (may be NULL, 96 bytes) says why not. *first (may be NULL) tells the
 * first block a target fetches of a rollout's release, for the log. */
enum gw_admit gw_policy_admit(struct gw_policy *p, const uint8_t sha[FERRY_SHA256_LEN],
                              const char *node, uint32_t *max_age_s, char why[96], bool *first);

/* Whether a held release or a rollout of any product refers to sha (the
 * artifacts to fetch and keep; a withdrawn rollout release is not). */
bool gw_policy_wants(const struct gw_policy *p, const uint8_t sha[FERRY_SHA256_LEN]);

/* The releases the rollouts not cancelled or completed need (release and
 * revert, unless withdrawn), whose artifacts the gateway must fetch and keep: up to cap
 * manifests (valid until the next gw_policy_rollout()), returns how many. */
size_t gw_policy_rollout_releases(const struct gw_policy *p, const struct ferry_manifest **out,
                                  size_t cap);

/* ---- time --------------------------------------------------------------------------- */

/* The earliest time something changes by itself (a window opens or closes,
 * the rate cap lets the next node start): *wall_at (unix seconds) or
 * *mono_at (ms); each INT64_MAX / UINT64_MAX when none. */
void gw_policy_next(const struct gw_policy *p, int64_t wall, uint64_t mono_ms, int64_t *wall_at,
                    uint64_t *mono_at);

/* Time passed: products whose offers may have changed since the last tick. */
void gw_policy_tick(struct gw_policy *p, int64_t wall, uint64_t mono_ms,
                    struct gw_policy_effects *fx);

/* ---- reporting ------------------------------------------------------------------------ */

/* What this gateway decided by itself, for the cloud (ferry_rollout_report). */
void gw_policy_report(const struct gw_policy *p, const char *gateway, int64_t wall,
                      struct ferry_rollout_report *out);

/* Takes back halts from a report kept on disk before a restart (items of
 * rollouts it does not hold, or older ones, are ignored). */
void gw_policy_restore(struct gw_policy *p, const struct ferry_rollout_report *r);

/* Counters for logs, tests and the benchmark. */
struct gw_policy_stats {
    uint64_t offers_rollout, offers_revert, offers_baseline, offers_held; /* held: with a hold */
    uint64_t capped; /* targets made to wait by the rate cap */
    uint64_t admits, stalls, refusals;
};
const struct gw_policy_stats *gw_policy_stats(const struct gw_policy *p);

#endif
