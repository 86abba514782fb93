/* Timestamp documents (ferry_timestamp.h) from the cloud: what is current
 * in a product line and what is withdrawn, re-signed before it expires.
 *
 *   timestamp --broker URL --fleet F --store DIR --key TS_KEY [--product P]
 *             [--expires 1d] [--withdraw RELEASE ...] [--trust ROOT]
 *             [--if-changed]
 *   withdraw  (the same flags) --release RELEASE
 *
 * Both publish a new timestamp for the product, retained (QoS 1) on
 * ferry/v1/<fleet>/timestamp/<product>; `withdraw` adds the release to the
 * withdrawn list. `timestamp` is what a timer runs (deploy/systemd has one):
 * a timestamp that is not re-signed before it expires stops every install
 * of the product line, by design (that is what bounds a freeze).
 *
 * State lives in the store, each file written atomically:
 *   DIR/releases/<product>.env           the line's current release: the
 *                                        envelope `publish` last had
 *                                        acknowledged, or the release a
 *                                        whole-line rollout completed with
 *                                        (the rollout controller records it)
 *   DIR/meta/offered/<product>.json      what the product's latest rollout
 *                                        offers now (ferry_offered), kept by
 *                                        the rollout controller in `serve`
 *                                        whenever the rollout changes
 *   DIR/meta/timestamp/<product>.json    the last timestamp signed for it
 * The next timestamp names current the line's release and each release the
 * rollout offers (cloud_offered_of()), none withdrawn, and carries the
 * withdrawn list over from the last one. It is recorded (once it checked
 * out) before it is published, so a crash in between never loses a
 * withdrawal.
 *
 * `serve` does not sign timestamps: the timestamp key stays off the host
 * that faces the gateways, and the operator's timer (or `withdraw`) picks
 * up what the rollout controller recorded. So a rollout's start, halt (its
 * revert release), completion and cancellation reach nodes with the next
 * timer run: run it more often than a rollout's soak (every few minutes),
 * well inside --expires. A scheduled rollout's release is named already,
 * so its start does not wait for the timer. With --if-changed (what the
 * timer runs) nothing is published while the last timestamp names the same
 * and has more than half its life left (cloud_timestamp_unchanged()): every
 * new timestamp is a new bundle for every node of the line to fetch. */
#ifndef FERRY_CLOUD_TIMESTAMP_H
#define FERRY_CLOUD_TIMESTAMP_H

#include "cloud_keys.h"
#include "ferry_err.h"
#include "ferry_opts.h"
#include "ferry_rollout.h"
#include "ferry_timestamp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_TIMESTAMP_DEFAULT_LIFETIME 86400

/* The releases a product's latest rollout offers in state s (pure): its
 * release while scheduled, running, paused or completed (a completed
 * rollout keeps offering it to its targets); once halted only its revert
 * release (revert NULL: none); nothing once cancelled. env and revert are
 * the signed envelopes; out->rollout = id. */
enum ferry_err cloud_offered_of(const char *product, uint64_t id, enum ferry_rollout_state s,
                                const uint8_t *env, size_t env_len, const uint8_t *revert,
                                size_t revert_len, struct ferry_offered *out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Records o as what product o->product's rollout offers (unchanged bytes
 * are not written again). *changed: whether the record changed. */
enum ferry_err cloud_offered_record(const char *store_dir, const struct ferry_offered *o,
                                    bool *changed, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The next timestamp for product: version max(prev + 1, now) (so it still
 * grows if the saved state is lost), valid [now, now + lifetime), current
 * list the line's release read from env (the signed envelope, NULL: none)
 * and then offered's entries (NULL: none), withdrawn list prev's plus
 * `withdraw` (NULL or empty: none), the oldest dropped beyond
 * FERRY_TIMESTAMP_MAX_WITHDRAWN (only what is named current is ever
 * installed, so a release that fell off is still refused). A withdrawn
 * release is left out of the current list. */
enum ferry_err cloud_timestamp_next(const char *product, const struct ferry_timestamp *prev,
                                    const uint8_t *env, size_t env_len,
                                    const struct ferry_offered *offered,
                                    const struct ferry_strlist *withdraw, int64_t now,
                                    int64_t lifetime, struct ferry_timestamp *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Whether a timer may leave prev in place rather than publish next: both
 * name the same current releases (in order) and withdrawn ids, and more
 * than half of prev's lifetime is left at now (pure). */
bool cloud_timestamp_unchanged(const struct ferry_timestamp *prev,
                               const struct ferry_timestamp *next, int64_t now);

/* Reads the store's state for product, builds the next timestamp, signs it
 * with the nkeys keys and returns the signed document (the caller frees
 * *doc) and, if ts is not NULL, its content. Nothing is saved: record it
 * with cloud_timestamp_record() before publishing it. */
enum ferry_err cloud_timestamp_issue(const char *store_dir, const char *product,
                                     struct cloud_key *const *keys, size_t nkeys,
                                     const struct ferry_strlist *withdraw, int64_t now,
                                     int64_t lifetime, char **doc, size_t *len,
                                     struct ferry_timestamp *ts,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* Records doc as the last timestamp signed for product, which the next one
 * builds on. */
enum ferry_err cloud_timestamp_record(const char *store_dir, const char *product, const char *doc,
                                      size_t len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Records env as the current release of product in the store (publish does
 * this once the broker acknowledged it). */
enum ferry_err cloud_release_record(const char *store_dir, const char *product, const uint8_t *env,
                                    size_t len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* argv[0] is "timestamp" / "withdraw"; return the exit status. */
int cloud_cmd_timestamp(int argc, char **argv);
int cloud_cmd_withdraw(int argc, char **argv);

#endif
