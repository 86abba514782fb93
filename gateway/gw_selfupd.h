/* When a gateway installs its own update (--self-product): a pure decision,
 * no clock (time is an argument), no I/O; gw_self.h carries it out.
 *
 * The order (README, "Gateway self-update"; PROTOCOL.md, "Cascaded
 * gateways"): the nodes first, the gateway last. A gateway is the path by
 * which its nodes, and child gateways, get their updates and report them;
 * it does not restart into a new version of itself while any of them is
 * downloading or installing through it, unless the release's deadline
 * says so. This is SWUpdate's forwarder's order (children before the
 * gateway) rather than aktualizr's (the primary first, activated last):
 * the nodes follow product lines of their own and do not wait for the
 * gateway's, and a gateway whose update fails rolls back by itself and
 * serves on with its old version, so its nodes see a pause and nothing
 * else. Its own trial has two phases like Mender Orchestrator's: installed
 * and booted, then committed only after its health check.
 *
 * Busy: a node's newest record (relayed here within the last
 * GW_SELFUPD_BUSY_STALE_MS) says downloading, verifying, installing or
 * pending-reboot, or any client holds a download place at the gateway's
 * CoAP server (a child gateway fetching, a stock client).
 *
 * The release's constraints, as a node reads them (PROTOCOL.md, "Release
 * manifest"):
 *   - window_start/window_end: before the window, wait (deferred); after
 *     it, the release is given up (failed, expired);
 *   - while busy: wait. max_deferral is the deadline, counted from when the
 *     gateway first found the release ready to install: past it, a release
 *     with must_be_idle false is installed all the same; one with
 *     must_be_idle true is given up (failed, busy). Without max_deferral
 *     the gateway waits for its nodes as long as it takes.
 * A release not above the running image's seq (or the anti-rollback
 * floor), or one that already failed or rolled back here, is not tried
 * again: the operator publishes a higher seq. A release whose hardware
 * list does not name the gateway's model is rejected once. */
#ifndef FERRY_GW_SELFUPD_H
#define FERRY_GW_SELFUPD_H

#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A node's "downloading" older than this no longer keeps the gateway
 * waiting: it went quiet (it will say more when it wakes). */
#define GW_SELFUPD_BUSY_STALE_MS (10u * 60u * 1000u)
/* While it waits for its nodes, the gateway looks again this often. */
#define GW_SELFUPD_RECHECK_S 5

struct gw_selfupd_in {
    int64_t now; /* unix seconds */
    /* The product's release the gateway holds, verified and trusted, and
     * whether its artifact is cached; m NULL: none. */
    const struct ferry_manifest *m;
    bool cached;
    int64_t ready_since; /* when it was first found ready (cached, trusted) */
    /* What runs: its seq (0: unknown image) and the anti-rollback floor. */
    uint64_t running_seq;
    uint64_t floor_seq;
    const uint8_t *running_sha; /* NULL: unknown */
    const char *hw_model;
    const char *hw_revision; /* may be NULL */
    size_t busy;             /* nodes and clients busy through the gateway */
    bool given_up;           /* this release failed or rolled back here before */
};

enum gw_selfupd_verdict {
    GW_SELFUPD_NOTHING, /* nothing to install */
    GW_SELFUPD_WAIT,    /* not now: ask again at retry_at (or on a change) */
    GW_SELFUPD_INSTALL, /* install it now */
    GW_SELFUPD_GIVE_UP, /* never: report `state` with `error`, once */
};

struct gw_selfupd_out {
    enum gw_selfupd_verdict verdict;
    int64_t retry_at;       /* WAIT: unix seconds */
    enum ferry_state state; /* WAIT: deferred; GIVE_UP: rejected or failed */
    enum ferry_err error;   /* GIVE_UP: incompatible-hw, expired, busy */
    bool forced;            /* INSTALL while busy: the deadline passed */
    char why[FERRY_STATUS_MESSAGE_MAX + 1];
};

void gw_selfupd_decide(const struct gw_selfupd_in *in, struct gw_selfupd_out *out);

/* Whether a node's newest record keeps the gateway waiting (see above). */
bool gw_selfupd_node_busy(const struct ferry_status *last, uint64_t stored_ms, uint64_t now_ms);

#endif
