/* The gateway's durable status outbox.
 *
 * A node POSTs a status record; the gateway appends it here and answers the
 * node only once gw_outbox_append() has returned FERRY_OK, which happens
 * after the record is fsync'd. Records then go upstream in batches and leave
 * the outbox only when the cloud's application-level ack names their
 * (node, seq): a broker's PUBACK says nothing about the cloud's inventory.
 *
 * On disk, in STATE_DIR/outbox/ (all integers little-endian):
 *   journal  a 20-byte header (magic, format, base id, CRC-32), then
 *            append-only records: magic u32, payload length u32,
 *            CRC-32 u32 (of magic, length, id and payload), outbox id u64,
 *            payload = the record's JSON (ferry_status_to_json) with the
 *            gateway field filled in. Ids increase for the outbox's life.
 *   acks     append-only 20-byte records: magic u32, the acked record's
 *            CRC u32, its id u64, CRC-32 u32 of the first 16 bytes.
 *   lock     held with flock() while the outbox is open.
 * Pending = journal records minus those named by an ack with the same CRC.
 *
 * Crash behaviour (kill -9 or power loss at any point):
 * - A torn or corrupt tail of either file (nothing valid after it) is what
 *   an interrupted append leaves: it is dropped and truncated away at open.
 * - A corrupt record with valid records after it is corruption in the
 *   middle: that one record is logged and skipped, the rest are kept.
 * - Compaction writes the pending records to journal.tmp, fsyncs it, renames
 *   it over journal, fsyncs the folder, and only then empties acks. A crash
 *   before the rename leaves the old journal and all acks; after it, the new
 *   journal holds only pending records and the leftover acks name ids that
 *   no longer exist. So no pending record is lost and no acked one returns.
 * A record whose append failed may still appear after a crash (the cloud
 * de-duplicates by (node, seq)); one whose append returned FERRY_OK is
 * never lost.
 *
 * Not thread-safe: use an outbox from the gateway's event loop only. */
#ifndef FERRY_GW_OUTBOX_H
#define FERRY_GW_OUTBOX_H

#include "ferry_batch.h"
#include "ferry_err.h"
#include "ferry_io.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The journal bytes of the largest record (header and JSON). */
#define GW_OUTBOX_RECORD_MAX (20u + FERRY_STATUS_MAX_BYTES)

/* Upper bounds on the configured limits, so memory and open-time reads
 * stay bounded. */
#define GW_OUTBOX_RECORDS_LIMIT 1000000
#define GW_OUTBOX_BYTES_LIMIT   (UINT64_C(64) << 20)
/* Compaction runs when every record is acked, or when acked records are
 * more than half the journal and more than this many bytes. */
#define GW_OUTBOX_COMPACT_MIN_BYTES (UINT64_C(1) << 20)

struct gw_outbox_opts {
    const char *state_dir;  /* the outbox lives in <state_dir>/outbox */
    const char *gateway_id; /* written into every record's gateway field */
    size_t max_records;     /* 1..GW_OUTBOX_RECORDS_LIMIT pending records */
    uint64_t max_bytes;     /* pending journal bytes, at least one full
                               record and at most GW_OUTBOX_BYTES_LIMIT */
    /* One node's share: at most this many of the pending records and bytes
     * may be its own (0: no share, the node may fill the outbox). With
     * shares of max/N, N nodes can each always store their share, whatever
     * the others send. Bytes: 0, or GW_OUTBOX_RECORD_MAX..max_bytes. */
    size_t max_node_records;
    uint64_t max_node_bytes;
    const struct ferry_io *io; /* file I/O (ferry_io.h); NULL: the system's */
};

/* One pending record, oldest first, as gw_outbox_peek() returns it. */
struct gw_outbox_item {
    uint64_t id; /* outbox id, for log lines */
    struct ferry_status st;
};

struct gw_outbox;

/* Opens (creating if needed) the outbox, recovers it as described above and
 * takes its lock. opts and its strings are copied; opts->io must outlive
 * the outbox. FERRY_E_BUSY if another open outbox holds the lock,
 * FERRY_E_CORRUPT if the journal is not an outbox journal at all,
 * FERRY_E_IO / FERRY_E_NOSPACE if recovery could not write. Records already
 * pending above the limits are kept (the limits only refuse new ones). */
enum ferry_err gw_outbox_open(const struct gw_outbox_opts *opts, struct gw_outbox **out,
                              struct ferry_diag *d) FERRY_MUST_CHECK;

/* Closes the files and frees; NULL is fine. Writes nothing. */
void gw_outbox_close(struct gw_outbox *ob);

/* Appends a copy of st, with this gateway on its path, and fsyncs it: a
 * record whose last hop is not this gateway gets it as its gateway (a
 * node's record, gateway empty) or appended to its via (a child gateway's,
 * ferry_status_add_hop()). FERRY_OK means the record is durable (answer the node now).
 * If the same record (same JSON) is already pending, nothing is written,
 * FERRY_OK is returned and *duplicate (may be NULL) is set: the node
 * retried its POST. Errors: FERRY_E_CONFLICT if another record is pending
 * under st's (node, seq) (nothing is written: one of the two is not the
 * node's); FERRY_E_INVALID_ARG if st does not encode
 * (ferry_status_to_json), FERRY_E_TOO_LARGE if its JSON exceeds
 * FERRY_STATUS_MAX_BYTES, FERRY_E_NOSPACE if the node's share or the
 * outbox is at its limits or the disk is full, FERRY_E_IO on a write or
 * fsync failure. On any error the outbox is as before and nothing partial
 * is left in the journal (it is truncated back; if even that fails,
 * recovery drops the torn tail). */
enum ferry_err gw_outbox_append(struct gw_outbox *ob, const struct ferry_status *st,
                                bool *duplicate, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Copies up to cap of the oldest pending records into items (oldest first)
 * and sets *n. The records stay pending until acked, so calling it again
 * returns the same records: the caller sends them as one batch and peeks
 * again after the ack or a resend timeout. A record found corrupt on disk
 * since open is logged and dropped. FERRY_E_IO if the journal cannot be
 * read. */
enum ferry_err gw_outbox_peek(struct gw_outbox *ob, struct gw_outbox_item *items, size_t cap,
                              size_t *n, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Marks the pending records named by ids as acked, with one write and one
 * fsync; pairs that are not pending (unknown, or acked already) are
 * ignored. *acked (may be NULL) gets how many were pending. On an error
 * nothing is marked. FERRY_OK means the acks are durable; compaction may
 * follow, and its failure is only logged (it is retried on the next ack). */
enum ferry_err gw_outbox_ack(struct gw_outbox *ob, const struct ferry_record_id *ids, size_t n,
                             size_t *acked, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Rewrites the journal with only the pending records and empties the ack
 * journal (see above). Normally run by gw_outbox_ack(); public for tests
 * and tools. On an error the outbox stays usable and consistent. */
enum ferry_err gw_outbox_compact(struct gw_outbox *ob, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The records of node pending now, and (bytes, may be NULL) their journal
 * bytes; 0 for a node with none. */
size_t gw_outbox_node_pending(const struct gw_outbox *ob, const char *node, uint64_t *bytes);

/* Calls cb once for every node with records pending, in no order. cb must
 * not change the outbox. */
typedef void (*gw_outbox_node_cb)(void *arg, const char *node, size_t records);
void gw_outbox_each_node(const struct gw_outbox *ob, gw_outbox_node_cb cb, void *arg);

/* Pending records, and their bytes in the journal (headers included). */
size_t gw_outbox_count(const struct gw_outbox *ob);
uint64_t gw_outbox_bytes(const struct gw_outbox *ob);

#endif
