/* How `ferry-cloud serve` shares its artifact streaming among gateways, so
 * that no gateway can make it spend all its time (and bandwidth) on its own
 * requests: a 100-byte request asks for up to 2 MiB. Pure: no clock (times
 * are arguments), no I/O; serve does the sending.
 *
 * Model. Each gateway has a queue of requests waiting, served in order: a
 * gateway keeps several requests out at once (its window, at most
 * FERRY_STREAM_MAX_WINDOW chunks in all), and asks again for whatever it
 * still lacks. So the queue holds at most that many chunks: a request that
 * would make it hold more pushes the oldest ones out, and a flood of
 * requests costs what the last window's worth asks. Each gateway also has
 * a bucket of bytes, `burst` deep, refilled at `rate` bytes a second (0: no
 * rate, only turns).
 *
 * Turns. cloud_budget_next() gives the next turn to the next gateway, in
 * round-robin order, that has a request waiting and tokens for at least
 * one chunk: at most `quantum` chunks of its request, and no more than its
 * tokens pay for (each chunk is charged at the request's chunk size), from
 * the request at the front of its queue. The rest stays waiting for a later
 * turn. So every gateway with
 * work gets a turn in each round whatever the others ask, and one gateway
 * gets at most `rate` bytes a second beyond its burst.
 *
 * Bounds. At most max_gateways gateways are tracked; a request from
 * another is refused (FERRY_E_BUSY) while that many have requests waiting,
 * and an idle gateway (nothing waiting, bucket full) is forgotten to make
 * room. Memory: one small entry per gateway.
 *
 * Not thread-safe; serve's loop owns it. */
#ifndef FERRY_CLOUD_BUDGET_H
#define FERRY_CLOUD_BUDGET_H

#include "ferry_err.h"
#include "ferry_names.h"
#include "ferry_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_BUDGET_DEFAULT_RATE    (UINT64_C(128) << 20) /* bytes a second: about 1 Gbit/s */
#define CLOUD_BUDGET_DEFAULT_QUANTUM 4                     /* chunks a turn */
#define CLOUD_BUDGET_DEFAULT_MAX_GW  4096
/* deadline when nothing waits */
#define CLOUD_BUDGET_NEVER UINT64_MAX

struct cloud_budget_opts {
    uint64_t rate;       /* bytes a second per gateway; 0: unlimited */
    uint64_t burst;      /* bucket depth, >= FERRY_STREAM_MAX_CHUNK when rate is set */
    uint32_t quantum;    /* chunks a turn, >= 1 */
    size_t max_gateways; /* >= 1 */
};

/* One turn: send req (offset and count already cut to this turn) to
 * gateway's data topic. */
struct cloud_turn {
    char gateway[FERRY_ID_MAX + 1];
    struct ferry_stream_req req;
};

struct cloud_budget;

enum ferry_err cloud_budget_new(const struct cloud_budget_opts *o, struct cloud_budget **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_budget_free(struct cloud_budget *b); /* NULL is fine */

/* A request from gateway (a valid id), queued behind its others (pushing
 * the oldest out past FERRY_STREAM_MAX_WINDOW chunks). FERRY_E_BUSY (d
 * names the gateway) when no place is free for a new gateway. */
enum ferry_err cloud_budget_request(struct cloud_budget *b, const char *gateway,
                                    const struct ferry_stream_req *req, uint64_t now_ms,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* The next turn, charged to its gateway: true with *turn set. false when no
 * gateway may have one now; *wake_ms then says when one may (when tokens
 * will have refilled), or CLOUD_BUDGET_NEVER when nothing waits. */
bool cloud_budget_next(struct cloud_budget *b, uint64_t now_ms, struct cloud_turn *turn,
                       uint64_t *wake_ms);

/* The server sent only `sent` chunks of the turn it was given (the MQTT
 * client was full, or the artifact ended): the unsent chunks are refunded
 * and, unless the artifact ended (done), put back at the front of the
 * gateway's queue for its next turn. */
void cloud_budget_unsent(struct cloud_budget *b, const struct cloud_turn *turn, uint32_t sent,
                         bool done);

/* Gateways with a request waiting. */
size_t cloud_budget_waiting(const struct cloud_budget *b);

#endif
