/* Timestamp documents (ferry_timestamp.h) from the cloud: what is current
 * in a product line and what is withdrawn, re-signed before it expires.
 *
 *   timestamp --broker URL --fleet F --store DIR --key TS_KEY [--product P]
 *             [--expires 1d] [--withdraw RELEASE ...] [--trust ROOT]
 *   withdraw  (the same flags) --release RELEASE
 *
 * Both publish a new timestamp for the product, retained (QoS 1) on
 * ferry/v1/<fleet>/timestamp/<product>; `withdraw` adds the release to the
 * withdrawn list. `timestamp` is what a timer runs (deploy/systemd has one):
 * a timestamp that is not re-signed before it expires stops every install
 * of the product line, by design (that is what bounds a freeze).
 *
 * State lives in the store, each file written atomically:
 *   DIR/releases/<product>.env           the envelope `publish` last had
 *                                        acknowledged for the product: the
 *                                        current release
 *   DIR/meta/timestamp/<product>.json    the last timestamp signed for it
 * The next timestamp takes the current release from the first and carries
 * the withdrawn list over from the second. It is recorded (once it checked
 * out) before it is published, so a crash in between never loses a
 * withdrawal. */
#ifndef FERRY_CLOUD_TIMESTAMP_H
#define FERRY_CLOUD_TIMESTAMP_H

#include "cloud_keys.h"
#include "ferry_err.h"
#include "ferry_opts.h"
#include "ferry_timestamp.h"

#include <stddef.h>
#include <stdint.h>

#define CLOUD_TIMESTAMP_DEFAULT_LIFETIME 86400

/* The next timestamp for product: version max(prev + 1, now) (so it still
 * grows if the saved state is lost), valid [now, now + lifetime), current
 * release read from env (the signed envelope, NULL: none), withdrawn list
 * prev's plus `withdraw` (NULL or empty: none), the oldest dropped beyond
 * FERRY_TIMESTAMP_MAX_WITHDRAWN (only the current release is ever
 * installed, so a release that fell off is still refused). A withdrawn
 * current release leaves nothing current. */
enum ferry_err cloud_timestamp_next(const char *product, const struct ferry_timestamp *prev,
                                    const uint8_t *env, size_t env_len,
                                    const struct ferry_strlist *withdraw, int64_t now,
                                    int64_t lifetime, struct ferry_timestamp *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

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
