/* The fleet inventory: every status record the cloud has accepted, each
 * node's latest one, the gateway each node is bound to, and the records it
 * refused, in the database of `--db` (cloud_db.h: an SQLite file). This
 * file names the queries it runs; their SQL is the driver's
 * (cloud_sql_sqlite.c).
 *
 * Tables (schema version 2; a version 1 file is upgraded on open):
 *   records   every stored record, PRIMARY KEY (node, seq);
 *   nodes     one row per node, replaced only by a record with a greater
 *             seq, so records that arrive out of order never move a node
 *             back;
 *   bindings  each node (and, in a cascade, each child gateway) and the one
 *             parent it reports through: made by its first record (trust on
 *             first use) or by the operator (cloud_inventory_bind());
 *   refused   records refused for good (cloud_verdict.h: a conflicting
 *             duplicate, a wrong gateway, a seq jump), kept for the
 *             operator: the newest 100 per node and 100,000 in all;
 *   events    bindings made and moves, with when and why.
 * What happens to each incoming record is decided by cloud_judge()
 * (cloud_verdict.h) from what these tables hold.
 *
 * The file runs in WAL mode with synchronous=FULL: when an ingest returns,
 * its records survive a power cut, which is what lets the cloud acknowledge
 * them and a gateway forget them. Several processes may share the file
 * (SQLite locks it; a writer waits up to a few seconds for another).
 *
 * One struct cloud_inventory belongs to one thread. */
#ifndef FERRY_CLOUD_INVENTORY_H
#define FERRY_CLOUD_INVENTORY_H

#include "ferry_batch.h"
#include "ferry_err.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>

struct cloud_inventory;

/* Opens the inventory at path. With create, a missing file is created with
 * the schema; without it (a reader such as `status`) a missing file is
 * FERRY_E_NOT_FOUND. FERRY_E_CORRUPT when the file is not a Ferry inventory
 * or comes from a newer Ferry. Close with cloud_inventory_close(). */
enum ferry_err cloud_inventory_open(const char *path, bool create, struct cloud_inventory **out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_inventory_close(struct cloud_inventory *inv); /* NULL is fine */

/* What an ingest did, as an ack reports it; the caller gives both arrays
 * room for n entries. */
struct cloud_ingest_out {
    struct ferry_record_id *stored; /* stored now or before */
    size_t nstored;
    struct ferry_record_refusal *refused; /* refused for good, and why */
    size_t nrefused;
};

/* Judges and stores n records (n >= 1) in one transaction, stamped with the
 * cloud's clock; each record's gateway field is the gateway it came
 * through. Stored records also make the bindings their first record makes;
 * refused ones are kept in `refused` when keep is set (a batch) and only
 * logged otherwise (a node's retained twin, a copy of what a batch
 * brings). On FERRY_OK out lists each (node, seq) once: stored ones (now or
 * before) in first-seen order, then refused ones, never one in both:
 * exactly what an ack may name. On failure nothing is stored (the
 * transaction is rolled back) and out is untouched. FERRY_E_INVALID_ARG
 * when a record's node, gateway, seq, state or error is out of range,
 * FERRY_E_NOSPACE when the disk is full, FERRY_E_BUSY when another process
 * held the lock too long. */
enum ferry_err cloud_inventory_ingest(struct cloud_inventory *inv, const struct ferry_status *recs,
                                      size_t n, bool keep, struct cloud_ingest_out *out,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* The operator binds node to gateway: a first binding, or a move from the
 * gateway it was bound to (*previous, may be NULL, gets it; "" when none).
 * Records from the new gateway are accepted from now on, and those from the
 * old one refused (wrong-gateway). Logged in `events` with reason (may be
 * NULL). */
enum ferry_err cloud_inventory_bind(struct cloud_inventory *inv, const char *node,
                                    const char *gateway, const char *reason,
                                    char previous[FERRY_ID_MAX + 1],
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Which nodes to list; a NULL field matches every node. */
struct cloud_inventory_filter {
    const char *release;
    const char *gateway;
    const enum ferry_state *state;
};

/* Called once per node; a non-FERRY_OK return stops the walk and is passed
 * on. row is valid during the call only. */
typedef enum ferry_err (*cloud_inventory_row_cb)(void *arg, const struct ferry_inventory_row *row);

/* Walks the nodes table in node order, holding one row at a time, so a
 * large fleet costs no memory. FERRY_E_CORRUPT (naming the node) when a row
 * does not hold what ingestion writes. */
enum ferry_err cloud_inventory_each_node(struct cloud_inventory *inv,
                                         const struct cloud_inventory_filter *filter,
                                         cloud_inventory_row_cb cb, void *arg,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

/* The refused records matching filter (on the refused record's own
 * release, gateway and state), oldest first, as cloud_inventory_each_node()
 * walks nodes. */
typedef enum ferry_err (*cloud_inventory_refused_cb)(void *arg,
                                                     const struct ferry_refused_row *row);
enum ferry_err cloud_inventory_each_refused(struct cloud_inventory *inv,
                                            const struct cloud_inventory_filter *filter,
                                            cloud_inventory_refused_cb cb, void *arg,
                                            struct ferry_diag *d) FERRY_MUST_CHECK;

/* The event log, oldest first. */
typedef enum ferry_err (*cloud_inventory_event_cb)(void *arg, const struct ferry_event_row *row);
enum ferry_err cloud_inventory_each_event(struct cloud_inventory *inv, cloud_inventory_event_cb cb,
                                          void *arg, struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
