/* Status batches (gateway -> cloud) and their acknowledgements (cloud ->
 * gateway), PROTOCOL.md "Status batch and acknowledgement":
 *
 *   {"format":1,"batch":"gw-1:1795780801:17","records":[<status record>, ...]}
 *   {"format":1,"batch":"gw-1:1795780801:17","acked":[{"node":"node-7","seq":12}, ...]}
 *   {"format":2,"batch":"gw-1:1795780801:17","acked":[...],
 *    "refused":[{"node":"node-8","seq":3,"error":"conflict"}, ...]}
 *
 * A gateway drops records from its outbox only when an ack names them. An
 * "acked" entry is the cloud's promise that the record is durably in its
 * inventory. A "refused" entry (format 2) says the cloud will never store
 * it and why (a conflicting duplicate, a node bound to another gateway, a
 * seq beyond the node's window): the cloud keeps it aside for the operator
 * and the gateway drops it. The cloud writes format 1 when nothing is
 * refused, so a gateway that reads only format 1 keeps working until a
 * refusal comes. Both messages are parsed strictly: no unknown keys at
 * either level (the records themselves allow "x-" extensions, as status
 * records do), 1 to FERRY_BATCH_MAX_RECORDS entries (in an ack, acked and
 * refused together), and every record checked as ferry_status_from_json()
 * checks one on its own.
 *
 * Also here: the JSON form of one inventory row, for `ferry-cloud status
 * --json`, so that every JSON Ferry emits goes through proto. */
#ifndef FERRY_BATCH_H
#define FERRY_BATCH_H

#include "ferry_err.h"
#include "ferry_names.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_BATCH_FORMAT      1
#define FERRY_BATCH_ACK_FORMAT  2 /* the newest ack format; 1 has no "refused" */
#define FERRY_BATCH_MAX_RECORDS 64
#define FERRY_BATCH_ID_MAX      64
/* Every record at its own cap, plus the envelope around them. */
#define FERRY_BATCH_MAX_BYTES (FERRY_BATCH_MAX_RECORDS * (FERRY_STATUS_MAX_BYTES + 1) + 256)
/* 64 entries of {"node":<64 chars>,"seq":<16 digits>,"error":<a name>}
 * (about 128 bytes each) and the envelope. */
#define FERRY_BATCH_ACK_MAX_BYTES 16384

/* A batch id is chosen by the gateway (e.g. "<gateway>:<boot>:<counter>")
 * and only echoed by the cloud: 1..64 characters from [A-Za-z0-9._:-], not
 * starting with '.', so it is safe in a log line and a file name. */
bool ferry_batch_id_valid(const char *id);

/* A fixed-size value (about 33 KiB): allocate it, don't put it on a small
 * stack. */
struct ferry_batch {
    char id[FERRY_BATCH_ID_MAX + 1];
    struct ferry_status records[FERRY_BATCH_MAX_RECORDS];
    size_t n; /* 1..FERRY_BATCH_MAX_RECORDS */
};

/* One (node, seq) that an ack reports as stored. */
struct ferry_record_id {
    char node[FERRY_ID_MAX + 1];
    uint64_t seq; /* 1..2^53 */
};

/* One (node, seq) that an ack reports as refused for good, and why. */
struct ferry_record_refusal {
    struct ferry_record_id id;
    enum ferry_err reason; /* never FERRY_OK, e.g. FERRY_E_CONFLICT */
};

struct ferry_batch_ack {
    char id[FERRY_BATCH_ID_MAX + 1]; /* the batch being acknowledged */
    struct ferry_record_id acked[FERRY_BATCH_MAX_RECORDS];
    size_t n; /* stored: 0..FERRY_BATCH_MAX_RECORDS */
    struct ferry_record_refusal refused[FERRY_BATCH_MAX_RECORDS];
    size_t nrefused; /* n + nrefused is 1..FERRY_BATCH_MAX_RECORDS */
};

/* Encoders check what they encode as the decoders would
 * (FERRY_E_INVALID_ARG, naming the field) so nothing Ferry sends is refused
 * by Ferry. *out is malloc'd, NUL-terminated, and freed by the caller. */
enum ferry_err ferry_batch_encode(const struct ferry_batch *b, char **out, size_t *len,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_batch_ack_encode(const struct ferry_batch_ack *a, char **out, size_t *len,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* Decoders: FERRY_E_TOO_LARGE above the byte cap, FERRY_E_MALFORMED for
 * anything else wrong, with the field (and record index) named in d. *out
 * is written only on FERRY_OK. */
enum ferry_err ferry_batch_decode(const uint8_t *buf, size_t len, struct ferry_batch *out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_batch_ack_decode(const uint8_t *buf, size_t len, struct ferry_batch_ack *out,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* One node's latest record in the cloud's inventory, when the cloud stored
 * it (unix seconds, cloud clock), and how many of the node's records the
 * cloud refused since then (a conflict, a wrong gateway, a seq jump: a sign
 * that someone else speaks for the node; its latest record may not be its
 * own). */
struct ferry_inventory_row {
    struct ferry_status st;
    int64_t updated_at;
    uint64_t refused;
};

/* One JSON object: the status record's fields (node, gateway, release,
 * version, state, bytes, total, error, message, seq, ts, via) plus
 * updated_at and refused. Unlike a status record on the wire, gateway,
 * release, version, error and message are always present ("" when empty)
 * and via too ([] without a cascade), so a reader of many rows sees one
 * shape. *out is malloc'd and NUL-terminated. */
enum ferry_err ferry_inventory_row_json(const struct ferry_inventory_row *row, char **out,
                                        size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* A record the cloud refused for good and kept aside: the record as it
 * came (gateway is the one that relayed it), when, and why. */
struct ferry_refused_row {
    struct ferry_status st;
    int64_t received_at;
    enum ferry_err reason; /* FERRY_E_CONFLICT, _WRONG_GATEWAY, _SEQ_RANGE */
    char detail[FERRY_DIAG_MAX];
};

/* The record's fields as for an inventory row, plus received_at, reason
 * (an error name) and detail. */
enum ferry_err ferry_refused_row_json(const struct ferry_refused_row *row, char **out, size_t *len,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* An event in the inventory's log: a node bound to a gateway by its first
 * record ("bound"), or by the operator ("bind"), or moved ("move"). */
struct ferry_event_row {
    int64_t at;
    char kind[16];
    char node[FERRY_ID_MAX + 1];
    char detail[FERRY_DIAG_MAX];
};

/* {"at":..,"kind":..,"node":..,"detail":..} */
enum ferry_err ferry_event_row_json(const struct ferry_event_row *row, char **out, size_t *len,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
