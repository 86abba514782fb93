/* A rollout's rate cap: at most `per_minute` starts in any 60 s, counted in
 * a sliding window (not per calendar minute, so no burst of twice the cap
 * across a minute boundary). The gateway counts, per rollout, the nodes it
 * lets start a download.
 *
 * Model: the times of the last per_minute starts, in a ring. A start is
 * allowed at `now` when fewer than per_minute starts happened in
 * (now - 60 s, now]; ferry_ratecap_next() says when the next one will be.
 * Times are milliseconds on any monotonic clock; pure. */
#ifndef FERRY_RATECAP_H
#define FERRY_RATECAP_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stdint.h>

#define FERRY_RATECAP_MAX    10000 /* largest per-minute cap */
#define FERRY_RATECAP_PERIOD 60000 /* ms */

struct ferry_ratecap;

/* per_minute 0 means no cap (every start allowed, nothing kept). NULL
 * (FERRY_E_NOMEM) or FERRY_E_INVALID_ARG above FERRY_RATECAP_MAX. */
enum ferry_err ferry_ratecap_new(uint32_t per_minute, struct ferry_ratecap **out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_ratecap_free(struct ferry_ratecap *c); /* NULL is fine */

/* Whether a start is allowed now; when it is, it is counted. */
bool ferry_ratecap_take(struct ferry_ratecap *c, uint64_t now_ms);

/* The earliest time >= now_ms at which ferry_ratecap_take() would succeed. */
uint64_t ferry_ratecap_next(const struct ferry_ratecap *c, uint64_t now_ms);

uint32_t ferry_ratecap_limit(const struct ferry_ratecap *c);

#endif
