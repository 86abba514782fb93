/* The fleet inventory: every status record the cloud has accepted, and each
 * node's latest one, in an SQLite file (`--db FILE`).
 *
 * Two tables:
 *   records  every record, PRIMARY KEY (node, seq): a record that arrives
 *            twice (a gateway resends after a lost ack) is stored once;
 *   nodes    one row per node, replaced only by a record with a greater seq,
 *            so records that arrive out of order never move a node back.
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

/* Stores n records (n >= 1) in one transaction, as described above, stamped
 * with the cloud's clock. On FERRY_OK every record is durably stored and
 * stored[0..*nstored) (capacity n) lists their (node, seq) once each, in
 * first-seen order, including those that were already present: exactly
 * what an ack may name. On failure nothing is stored (the transaction is
 * rolled back) and stored is untouched. FERRY_E_INVALID_ARG when a record's
 * node, gateway, seq, state or error is out of range, FERRY_E_NOSPACE when
 * the disk is full, FERRY_E_BUSY when another process held the lock too
 * long. */
enum ferry_err cloud_inventory_ingest(struct cloud_inventory *inv, const struct ferry_status *recs,
                                      size_t n, struct ferry_record_id *stored, size_t *nstored,
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

#endif
