/* Inside the inventory: what its table groups in other files share with
 * cloud_inventory.c (the same database connection and its row reader).
 * Only cloud_inventory*.c include this. */
#ifndef FERRY_CLOUD_INVENTORY_PRIV_H
#define FERRY_CLOUD_INVENTORY_PRIV_H

#include "cloud_db.h"
#include "cloud_inventory.h"

struct cloud_db *cloud_inventory_db(struct cloud_inventory *inv);

/* Reads a row of the nodes table selected as
 * node, gateway, release, version, state, bytes, total, error, message, seq, ts, updated_at
 * and, optionally, the count of the node's refused records. */
enum ferry_err cloud_inventory_read_node(struct cloud_inventory *inv, const struct cloud_db_row *r,
                                         struct ferry_inventory_row *row,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
