/* The edge node's durable status journal: every status record the node
 * produces is numbered with the next per-node seq, appended to a file and
 * fsync'd before anyone may send it, delivered oldest first, and dropped
 * only once the gateway has answered 2.04 for it. Records therefore survive
 * gateway outages and restarts of ferry-edge, and reach the gateway in seq
 * order (PROTOCOL.md, "Status record": seq starts at 1 and strictly grows).
 *
 * Files in the state folder:
 *   status.journal  entries, each: kind (1 byte, 'S' record or 'A' ack),
 *                   1 zero byte, payload length (u16 LE), CRC-32 (u32 LE)
 *                   over the 4 bytes before it and the payload, payload.
 *                   'S' carries the record as compact CBOR (what is sent),
 *                   'A' the u64 LE seq up to which everything was delivered.
 *                   Once nothing is pending and the file has grown past
 *                   EDGE_JOURNAL_COMPACT_BYTES it is replaced atomically by
 *                   one 'A' entry, which keeps the last seq.
 *   status.seq      a seq reservation, u64 LE + CRC-32: no seq at or above
 *                   it was ever handed out. Rewritten (atomically) every
 *                   EDGE_JOURNAL_SEQ_BLOCK records.
 *
 * Opening reads the journal up to the first damaged entry (a torn append
 * after a power cut, or media damage) and cuts it there. A cut may have lost
 * records the gateway already stored, so after one (and when the journal is
 * missing or empty while status.seq survives) the next seq is taken from
 * the reservation: seqs may skip, never repeat.
 *
 * How far a seq may skip (PROTOCOL.md, "Status record": the gateway and the
 * cloud refuse a record more than FERRY_STATUS_SEQ_WINDOW beyond the last
 * one they hold for the node): past the last record the gateway stored,
 * the node holds at most EDGE_JOURNAL_MAX_PENDING more, a cut skips at most
 * EDGE_JOURNAL_SEQ_BLOCK beyond the last handed out, and a renumbering at
 * most EDGE_JOURNAL_MAX_PENDING. The sum stays inside the window (checked
 * at compile time in edge_journal.c).
 *
 * Memory: three integers per pending record, and never more than
 * EDGE_JOURNAL_MAX_PENDING pending records. One thread. */
#ifndef FERRY_EDGE_JOURNAL_H
#define FERRY_EDGE_JOURNAL_H

#include "ferry_err.h"
#include "ferry_io.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_JOURNAL_MAX_PENDING   1024
#define EDGE_JOURNAL_COMPACT_BYTES 16384
#define EDGE_JOURNAL_SEQ_BLOCK     1024

struct edge_journal;

/* Opens (creating if needed) the journal in dir, which must exist, through
 * io (ferry_io.h; NULL: the system's, which must outlive the journal).
 * Damage is cut off as described above (edge_journal_repaired() tells).
 * FERRY_E_IO when the files cannot be read or created. Free with
 * edge_journal_free(). */
enum ferry_err edge_journal_open(const char *dir, const struct ferry_io *io,
                                 struct edge_journal **out, struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_journal_free(struct edge_journal *j); /* NULL is fine */

/* Numbers a copy of *st with the next seq (st->seq is ignored), encodes it
 * (FERRY_E_MALFORMED etc. from ferry_status_to_cbor()), appends and fsyncs
 * it; *seq gets the number. FERRY_E_NOSPACE when EDGE_JOURNAL_MAX_PENDING
 * records wait already or the disk is full; nothing is kept then and the
 * seq is not used up. */
enum ferry_err edge_journal_append(struct edge_journal *j, const struct ferry_status *st,
                                   uint64_t *seq, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The oldest pending record: its CBOR into buf (cap bytes, at least
 * FERRY_STATUS_MAX_BYTES), its length and seq. FERRY_E_NOT_FOUND when
 * nothing is pending; FERRY_E_CORRUPT when its bytes no longer match their
 * CRC on the way back from storage (drop it with edge_journal_ack()). */
enum ferry_err edge_journal_head(struct edge_journal *j, uint8_t *buf, size_t cap, size_t *len,
                                 uint64_t *seq, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The gateway stored record `seq`, the head: drop it. The ack is appended
 * without fsync: losing it only sends the record again, and the gateway
 * drops duplicates by (node, seq). FERRY_E_INVALID_ARG when seq is not the
 * head's. */
enum ferry_err edge_journal_ack(struct edge_journal *j, uint64_t seq,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* The gateway holds another record under the head's (node, seq) (CoAP
 * 4.09: PROTOCOL.md, "ferry/status"): gives every pending record, in order,
 * a fresh seq after the last one handed out, so none of them is lost and
 * their order is kept. One durable append; *first (may be NULL) gets the
 * head's new seq. FERRY_E_NOT_FOUND when nothing is pending. */
enum ferry_err edge_journal_renumber(struct edge_journal *j, uint64_t *first,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* The seq of the oldest pending record, 0 when none: lets a caller drop a
 * head that edge_journal_head() found corrupt. */
uint64_t edge_journal_head_seq(const struct edge_journal *j);

size_t edge_journal_pending(const struct edge_journal *j);
/* The highest seq handed out so far (0 for a new node). */
uint64_t edge_journal_last_seq(const struct edge_journal *j);
/* True when edge_journal_open() had to cut damage off. */
bool edge_journal_repaired(const struct edge_journal *j);

#endif
