/* Status records: one step of one node's progress through one release.
 * They flow edge -> gateway over CoAP (compact CBOR or JSON) and gateway ->
 * cloud over MQTT (JSON). (node, seq) identifies a record: the sequence is
 * per node, strictly increasing, persisted by the node, so every hop can
 * de-duplicate and keep order. */
#ifndef FERRY_STATUS_H
#define FERRY_STATUS_H

#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_names.h"

#include <stddef.h>
#include <stdint.h>

#define FERRY_STATUS_FORMAT      1
#define FERRY_STATUS_MESSAGE_MAX 200
#define FERRY_STATUS_MAX_BYTES   1024 /* one encoded record, either encoding */

/* The sequence window (PROTOCOL.md, "Status record"): a receiver that holds
 * records of a node up to seq `last` (0: none) refuses one whose seq is
 * more than this beyond it. A node never skips that far (edge_journal.h
 * says why), so only a forged or broken record can; without the rule, one
 * record with a seq near 2^53 would sit above every real one for good. */
#define FERRY_STATUS_SEQ_WINDOW 8192

/* The path a record took above the gateway that took it from its node
 * (PROTOCOL.md, "Cascaded gateways"): `gateway` is that gateway, and `via`
 * lists each parent gateway it then passed through, nearest first, the last
 * being the one that publishes it to the cloud. Node, gateway and six
 * parents fill the cloud's CLOUD_PATH_MAX of eight hops. */
#define FERRY_STATUS_VIA_MAX 6

/* The documented set of states (PROTOCOL.md, "Status"). Values are stable on
 * the wire (CBOR) and must never be renumbered. */
enum ferry_state {
    FERRY_STATE_IDLE = 0,       /* running its image, nothing to do */
    FERRY_STATE_AVAILABLE,      /* a release for it was verified */
    FERRY_STATE_DEFERRED,       /* waiting: busy or outside the window */
    FERRY_STATE_DOWNLOADING,    /* bytes/total show progress */
    FERRY_STATE_VERIFYING,      /* re-hashing the written slot */
    FERRY_STATE_INSTALLING,     /* switching slots */
    FERRY_STATE_PENDING_REBOOT, /* trial boot of the new slot */
    FERRY_STATE_SUCCESS,        /* new image confirmed healthy (final) */
    FERRY_STATE_FAILED,         /* gave up; old image still runs (final) */
    FERRY_STATE_ROLLED_BACK,    /* new image failed its trial (final) */
    FERRY_STATE_REJECTED,       /* release refused before download (final) */
    FERRY_STATE__COUNT
};

struct ferry_status {
    char node[FERRY_ID_MAX + 1];
    char gateway[FERRY_ID_MAX + 1]; /* "" from a node; the gateway fills it */
    char release_id[FERRY_NAME_MAX + 1];
    char version[FERRY_VERSION_MAX + 1]; /* version the node runs or installs */
    enum ferry_state state;
    uint64_t bytes;
    uint64_t total;
    enum ferry_err error; /* FERRY_OK when none */
    char message[FERRY_STATUS_MESSAGE_MAX + 1];
    uint64_t seq; /* per node, >= 1 */
    int64_t ts;   /* unix seconds at the node */
    /* The parents above `gateway`, nearest first (see FERRY_STATUS_VIA_MAX);
     * nvia 0 without a cascade. Each an id, none twice on the path, and
     * only with a gateway. Not part of what the node says: JSON only, and
     * ferry_status_same() leaves it out. */
    char via[FERRY_STATUS_VIA_MAX][FERRY_ID_MAX + 1];
    size_t nvia;
};

/* The hop that relayed st last: via's last entry, else gateway ("" for a
 * record straight from its node). */
const char *ferry_status_last_hop(const struct ferry_status *st);

/* gw takes st on its way up: a record straight from its node gets gw as its
 * gateway; one relayed by a child gateway gets gw appended to via.
 * FERRY_E_TOO_LARGE when via is full, FERRY_E_PROTOCOL when gw is on the
 * path already (a loop), FERRY_E_INVALID_ARG for an invalid gw; st is
 * unchanged then, and d names the record and the path. */
enum ferry_err ferry_status_add_hop(struct ferry_status *st, const char *gw,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* True when seq is within FERRY_STATUS_SEQ_WINDOW of last (see above). */
bool ferry_status_seq_in_window(uint64_t last, uint64_t seq);

/* True when a and b say the same thing: every field a node writes (node,
 * release, version, state, bytes, total, error, message, seq, ts). The
 * gateway field is left out: a node's record relayed by two gateways is
 * still one record. Two records with one (node, seq) that are not the same
 * are a conflict: one of them is not the node's. */
bool ferry_status_same(const struct ferry_status *a, const struct ferry_status *b);

const char *ferry_state_name(enum ferry_state s); /* "pending-reboot"; static */
enum ferry_err ferry_state_from_name(const char *name, enum ferry_state *out) FERRY_MUST_CHECK;
bool ferry_state_is_final(enum ferry_state s);

/* JSON, as carried over MQTT and accepted over CoAP (content-format 50).
 * The caller frees *out with free(). Every integer is limited to +-2^53 in
 * both encodings, so a record one accepts the other can carry. */
enum ferry_err ferry_status_to_json(const struct ferry_status *st, char **out, size_t *len,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_status_from_json(const uint8_t *buf, size_t len, struct ferry_status *out,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* Compact CBOR (content-format 60) for the CoAP leg: a map with small integer
 * keys (PROTOCOL.md). It carries no `via` (a node's own record has none;
 * a child gateway sends JSON): encoding one with via is
 * FERRY_E_INVALID_ARG. Encodes into buf (cap bytes); *len gets the length. */
enum ferry_err ferry_status_to_cbor(const struct ferry_status *st, uint8_t *buf, size_t cap,
                                    size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_status_from_cbor(const uint8_t *buf, size_t len, struct ferry_status *out,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
