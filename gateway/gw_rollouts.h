/* The rollout documents a gateway holds, and its own report, on disk. The
 * decisions are gw_policy.h's; this is their I/O.
 *
 * A document arrives retained on ferry/v1/<fleet>/rollout/<gw>/<product>
 * (proto/ferry_rollout.h). It is taken only when it is for this gateway and
 * that product, and both its envelopes verify against the release keys of the gateway's trust
 * as a release would (gw_releases.h: no hardware check, the product must be
 * the topic's): the gateway is trusted with the policy, never with what
 * nodes install, which they verify again themselves.
 *
 *   STATE/rollouts/<product>.json  the last document taken, exact bytes
 *   STATE/rollouts/report.json     the gateway's report (its own halts)
 *
 * each written atomically (ferry_write_atomic()), so a gateway that restarts
 * without its uplink enforces what it last knew, halts included. At start
 * every stored document is verified again; one that fails is logged and
 * skipped (the gateway then offers that product's baseline only, the safe
 * side). */
#ifndef FERRY_GW_ROLLOUTS_H
#define FERRY_GW_ROLLOUTS_H

#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_rollout.h"
#include "ferry_trust.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_rollouts_opts {
    const char *state_dir;
    const char *gateway_id;
    const struct ferry_trust *trust; /* borrowed: its release keys verify the envelopes */
    uint64_t max_artifact_size;      /* 0: FERRY_ARTIFACT_MAX_SIZE only */
    int64_t clock_skew;
};

/* A verified document: the doc (the caller frees it, or hands it to
 * gw_policy_rollout()), and its envelopes' manifests. */
struct gw_rollout_in {
    struct ferry_rollout_doc *doc;
    struct ferry_manifest rel, rev;
    bool has_rev;
};

/* Decodes and verifies what arrived for product. FERRY_E_PROTOCOL for a
 * document of another gateway or product, the decoder's and
 * ferry_envelope_verify()'s errors, with a message naming the product. */
enum ferry_err gw_rollouts_accept(const struct gw_rollouts_opts *o, const char *product,
                                  const uint8_t *buf, size_t len, int64_t now,
                                  struct gw_rollout_in *out, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Keeps buf as product's document. */
enum ferry_err gw_rollouts_store(const struct gw_rollouts_opts *o, const char *product,
                                 const uint8_t *buf, size_t len,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Every stored document that still verifies, one call each; a callback's
 * error stops the walk and is returned. Creates the folder. */
typedef enum ferry_err (*gw_rollouts_cb)(void *arg, struct gw_rollout_in *in);
enum ferry_err gw_rollouts_load(const struct gw_rollouts_opts *o, int64_t now, gw_rollouts_cb cb,
                                void *arg, struct ferry_diag *d) FERRY_MUST_CHECK;

enum ferry_err gw_rollouts_store_report(const struct gw_rollouts_opts *o,
                                        const struct ferry_rollout_report *r,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;
/* FERRY_E_NOT_FOUND when none was stored. */
enum ferry_err gw_rollouts_load_report(const struct gw_rollouts_opts *o,
                                       struct ferry_rollout_report *r,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
