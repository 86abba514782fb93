/* What to ask the cloud for while one artifact streams in over MQTT
 * (proto/ferry_stream.h): a pure state machine, so every decision can be
 * replayed in a unit test. It does no I/O, reads no clock and owns no
 * socket; the event loop feeds it events with the current time and carries
 * out the actions it returns.
 *
 * Model. Chunks are numbered from 0; chunk i covers bytes [i*chunk,
 * min((i+1)*chunk, total)). The gateway keeps only a contiguous prefix
 * (gw_cache accepts a chunk only at its contiguous end), so the state is:
 *   end        chunks 0..end-1 are held;
 *   requested  chunks end..requested-1 have been asked for and not yet held.
 * Invariant: end <= requested <= nchunks and requested - end <= window.
 *
 * Policy.
 *   - Pipelining: after a chunk arrives at the end, once at most
 *     window - ceil(window/2) chunks remain outstanding (half the window has
 *     arrived), ask for the chunks up to end + window. With window 1 this is
 *     stop-and-wait.
 *   - Loss: a chunk beyond the end is dropped (not stored), so one lost
 *     chunk stalls the prefix. When no chunk has arrived at the end for the
 *     current timeout, ask again for end..end+window. The timeout starts at
 *     timeout_ms and doubles on each consecutive expiry up to
 *     max_timeout_ms; a chunk at the end resets it. As the protocol says, a
 *     lost chunk costs a timeout and a new request: chunks still in flight
 *     when loss is first seen are useless anyway, and re-asking at once would
 *     put more than `window` chunks on the wire, past the broker limits the
 *     window is sized for.
 *   - Errors: an error chunk for this artifact (the cloud could not serve a
 *     request: not in its store yet, a read error, a serve instance
 *     without the file) answers the request early rather than losing it.
 *     Nothing outstanding is waited for: end..end+window is asked for again
 *     after GW_FETCH_ERROR_DELAY_MS, doubling with each further error and
 *     capped at max_timeout_ms; a chunk at the end resets it. So an error
 *     never stalls a fetch for longer than a lost chunk would. After
 *     GW_FETCH_MAX_ERRORS errors in a row with no progress the fetch has
 *     failed (gw_fetch_failed()): the caller may try other artifacts and
 *     come back to this one. The cloud echoes the request's offset: an
 *     error for a range that is not outstanding (held already, or from a
 *     request the fetch has given up on, as after an error) is stale and
 *     ignored like a duplicate, so the errors of one round count once.
 *   - Busy: an error chunk named "busy" (gw_fetch_error_busy()) says that
 *     this answer came from a serve instance that cannot serve the range
 *     now (its store lacks the file: instances on several hosts, one whose
 *     copy has not arrived) while another instance, or the same one a
 *     little later, can. The first GW_FETCH_BUSY_QUICK busy answers in a
 *     row are asked for again after GW_FETCH_BUSY_QUICK_MS (with a shared
 *     subscription the retry likely reaches another instance: one instance
 *     in two lacking the file must not halve the download's speed), later
 *     ones after GW_FETCH_BUSY_DELAY_MS, doubling with each busy answer in a
 *     row up to GW_FETCH_BUSY_MAX_DELAY_MS; each delay plus a jitter of up
 *     to half of it
 *     drawn from params.seed (so gateways told "busy" at once do not come
 *     back at once, and a shared subscription hands the retry to any
 *     instance). Busy answers count apart from other errors: only
 *     GW_FETCH_MAX_BUSY of them in a row (minutes) fail the fetch, and then
 *     only for the caller to try other artifacts before this one again;
 *     a busy answer is never a verdict on the artifact.
 *   - Link: while the MQTT link is down nothing is requested and there is no
 *     deadline; when it comes back, end..end+window is asked for at once and
 *     the timeout is reset.
 *   - Nothing beyond the last chunk is ever requested.
 *
 * Driving it (all times are one monotonic clock in milliseconds):
 *   gw_fetch_start()  once, with the cache's resume point;
 *   gw_fetch_chunk()  for every decoded chunk message (ferry_chunk_decode);
 *                     when it says GW_FETCH_NEXT, write the payload to the
 *                     cache. If that write fails, abandon this fetch
 *                     (gw_fetch_free) and start a new one later from the
 *                     cache's resume point: the machine already counts the
 *                     chunk as held;
 *   gw_fetch_tick()   when the deadline passes (early calls are harmless);
 *   gw_fetch_link()   on every MQTT connect and connection loss.
 * Each of these fills a struct gw_fetch_actions: publish `req` if `send` is
 * set (ferry_stream_req_encode), then arm a timer for `deadline_ms`. */
#ifndef FERRY_GW_FETCH_H
#define FERRY_GW_FETCH_H

#include "ferry_err.h"
#include "ferry_sha256.h"
#include "ferry_stream.h"

#include <stdbool.h>
#include <stdint.h>

#define GW_FETCH_DEFAULT_TIMEOUT_MS     3000
#define GW_FETCH_DEFAULT_MAX_TIMEOUT_MS 30000
#define GW_FETCH_ERROR_DELAY_MS         500
#define GW_FETCH_MAX_ERRORS             5
#define GW_FETCH_BUSY_QUICK             2
#define GW_FETCH_BUSY_QUICK_MS          250
#define GW_FETCH_BUSY_DELAY_MS          1000
#define GW_FETCH_BUSY_MAX_DELAY_MS      8000
#define GW_FETCH_MAX_BUSY               24 /* about 3 minutes of busy answers in a row */
/* deadline_ms when no timer is needed (done, or link down). */
#define GW_FETCH_NO_DEADLINE UINT64_MAX

struct gw_fetch_params {
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t total;          /* artifact size from the verified manifest, >= 1 */
    uint32_t chunk;          /* FERRY_STREAM_MIN_CHUNK..FERRY_STREAM_MAX_CHUNK */
    uint64_t resume;         /* bytes already held: a multiple of chunk, or total */
    uint32_t window;         /* chunks outstanding, 1..FERRY_STREAM_MAX_WINDOW */
    uint32_t timeout_ms;     /* 0: GW_FETCH_DEFAULT_TIMEOUT_MS */
    uint32_t max_timeout_ms; /* 0: GW_FETCH_DEFAULT_MAX_TIMEOUT_MS; >= timeout_ms */
    uint64_t seed;           /* jitter of busy retries (ferry_random_u64()); any value */
};

/* What the loop does after an event. Every event call overwrites all of it.
 * At most one request is ever needed per event: a request may carry up to
 * FERRY_STREAM_MAX_WINDOW chunks and the window is capped at that. */
struct gw_fetch_actions {
    bool send;                   /* publish req on the stream request topic */
    struct ferry_stream_req req; /* offset is a multiple of chunk; count >= 1 */
    uint64_t deadline_ms;        /* call gw_fetch_tick() then, or GW_FETCH_NO_DEADLINE */
};

/* How a chunk message relates to this fetch. */
enum gw_fetch_verdict {
    GW_FETCH_NEXT,      /* the chunk at the end: store it; the end has advanced */
    GW_FETCH_DUPLICATE, /* a chunk already held: drop it */
    GW_FETCH_AHEAD,     /* beyond the end: drop it; it will be asked for again */
    GW_FETCH_FOREIGN,   /* another artifact (SHA-256 or total differs): not ours */
    GW_FETCH_INVALID,   /* ours, but misaligned, or of the wrong length */
    GW_FETCH_ERROR,     /* an error chunk for ours: asked again soon (see Errors) */
};

/* Counters for logs and tests, for this run only (since gw_fetch_start). */
struct gw_fetch_stats {
    uint64_t bytes_received; /* payload bytes of every chunk of ours, kept or not */
    uint64_t bytes_kept;     /* payload bytes of GW_FETCH_NEXT chunks */
    uint64_t requests;       /* requests emitted, of any cause */
    uint64_t timeouts;       /* re-requests after a timeout */
    uint64_t duplicates;     /* GW_FETCH_DUPLICATE verdicts */
    uint64_t out_of_order;   /* GW_FETCH_AHEAD verdicts */
    uint64_t invalid;        /* GW_FETCH_INVALID verdicts */
    uint64_t errors;         /* GW_FETCH_ERROR verdicts */
    uint64_t busy;           /* of which busy answers (gw_fetch_error_busy) */
};

struct gw_fetch;

/* Validates p (FERRY_E_INVALID_ARG naming the bad field) and creates the
 * machine; the first request is in *act when link_up, and nothing is
 * requested when resume == total (already done). The caller frees *out with
 * gw_fetch_free(). */
enum ferry_err gw_fetch_start(const struct gw_fetch_params *p, uint64_t now_ms, bool link_up,
                              struct gw_fetch **out, struct gw_fetch_actions *act,
                              struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_fetch_free(struct gw_fetch *f); /* NULL is fine */

/* Whether c is an error chunk whose error name is "busy" (proto/PROTOCOL.md,
 * Artifact stream): retried soon, never final. Reads c->payload. */
bool gw_fetch_error_busy(const struct ferry_chunk *c);

/* Classifies a decoded chunk and updates the state. c->payload is read only
 * for an error chunk's name (gw_fetch_error_busy). */
enum gw_fetch_verdict gw_fetch_chunk(struct gw_fetch *f, const struct ferry_chunk *c,
                                     uint64_t now_ms, struct gw_fetch_actions *act);

/* Re-requests from the end if the deadline has passed, else does nothing. */
void gw_fetch_tick(struct gw_fetch *f, uint64_t now_ms, struct gw_fetch_actions *act);

/* Reports the MQTT link state; repeating the current state does nothing. */
void gw_fetch_link(struct gw_fetch *f, bool up, uint64_t now_ms, struct gw_fetch_actions *act);

/* True once every chunk is held. */
bool gw_fetch_done(const struct gw_fetch *f);

/* True after GW_FETCH_MAX_ERRORS error chunks, or GW_FETCH_MAX_BUSY busy
 * answers, in a row without progress. */
bool gw_fetch_failed(const struct gw_fetch *f);

/* Bytes held from offset 0: the contiguous end as a byte offset. */
uint64_t gw_fetch_end(const struct gw_fetch *f);

void gw_fetch_stats(const struct gw_fetch *f, struct gw_fetch_stats *out);

#endif
