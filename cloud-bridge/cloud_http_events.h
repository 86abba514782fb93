/* Live updates for the console: GET /api/v1/events, a Server-Sent Events
 * stream (text/event-stream).
 *
 * Model. One watcher thread, with its own read-only connection
 * (cloud_http_sql.h), looks at the inventory once a tick (a second) while
 * at least one stream is open, and not at all otherwise. What changed
 * becomes an event, built once and appended to a ring of the last
 * CLOUD_HTTP_EVENTS_RING events that every stream reads from; so the cost
 * of watching does not grow with the number of pages open, and a stream
 * never queries anything itself:
 *   nodes      the nodes whose latest record arrived since the last tick,
 *              or in the two seconds before it (a record stamped late in a
 *              second may commit after a tick: a node can come twice)
 *              ({"nodes":[...],"truncated":bool}, at most
 *              CLOUD_HTTP_EVENTS_NODES, each as GET /api/v1/nodes shows it);
 *   summary    GET /api/v1/summary's document, when nodes, rollouts or
 *              presence changed (at most every CLOUD_HTTP_SUMMARY_MS);
 *   rollouts   GET /api/v1/rollouts's document, under the same rule but
 *              for nodes, which count only while a rollout is active (an
 *              ended rollout's targets no longer change), and at least
 *              every 10 s while one is active (its "waiting" text counts
 *              down a soak);
 *   gateways   GET /api/v1/gateways's document, when a presence changed;
 *   reset      the stream fell further behind than the ring reaches (or
 *              asked to resume from an event the ring no longer holds): the
 *              client should read the resources again.
 * Every event has an id (growing); a new stream starts with the latest
 * summary, rollouts and gateways documents, then follows the ring; with a
 * Last-Event-ID it resumes after that event when the ring still holds it.
 * A comment line (": ping") goes out after 15 s of silence, which also
 * shows the server a client that went away.
 *
 * Bounds. At most max_streams streams at once (cloud_http_stream_open()
 * says FERRY_E_BUSY beyond: the server answers 503); the ring holds at
 * most CLOUD_HTTP_EVENTS_RING events; a stream holds one event at a time. A
 * stream's reader waits at most a second at a time and returns when the
 * client hangs up or the server stops.
 *
 * Threads: the watcher; each stream is read by its connection's thread
 * (libmicrohttpd's thread per connection); one mutex and condition guard
 * the ring and the counts. */
#ifndef FERRY_CLOUD_HTTP_EVENTS_H
#define FERRY_CLOUD_HTTP_EVENTS_H

#include "cloud_http_presence.h"
#include "cloud_store.h"
#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLOUD_HTTP_EVENTS_RING  32
#define CLOUD_HTTP_EVENTS_NODES 200
#define CLOUD_HTTP_SUMMARY_MS   2000

struct cloud_http_events_cfg {
    const char *db;                       /* the inventory */
    struct cloud_http_presence *presence; /* borrowed */
    unsigned max_streams;
    unsigned tick_ms; /* 0: 1000 */
};

struct cloud_http_events;

enum ferry_err cloud_http_events_start(const struct cloud_http_events_cfg *cfg,
                                       struct cloud_http_events **out,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;
/* Ends every stream's reads (they return end of stream) so their threads
 * can finish; the watcher keeps its thread until _free(). */
void cloud_http_events_stop(struct cloud_http_events *ev);
void cloud_http_events_free(struct cloud_http_events *ev); /* NULL is fine */

/* Streams open now. */
unsigned cloud_http_events_streams(struct cloud_http_events *ev);

struct cloud_http_stream;

/* A stream for one client: last_id is its Last-Event-ID (0: none); fd its
 * socket, watched for a hang-up (-1: not watched). FERRY_E_BUSY when
 * max_streams are open. */
enum ferry_err cloud_http_stream_open(struct cloud_http_events *ev, uint64_t last_id, int fd,
                                      struct cloud_http_stream **out,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

#define CLOUD_HTTP_STREAM_END   (-1) /* the server stops */
#define CLOUD_HTTP_STREAM_ERROR (-2) /* the client went away, or out of memory */

/* Copies the stream's next bytes into buf (at most max), waiting for them
 * as long as nothing else is due: a number of bytes > 0, or one of the two
 * values above. */
ssize_t cloud_http_stream_read(struct cloud_http_stream *s, char *buf, size_t max);
void cloud_http_stream_close(struct cloud_http_stream *s); /* NULL is fine */

#endif
