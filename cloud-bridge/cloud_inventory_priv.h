/* Inside the inventory: what its table groups in other files share with
 * cloud_inventory.c (the same SQLite connection, its error form, its row
 * reader). Only cloud_inventory*.c include this. */
#ifndef FERRY_CLOUD_INVENTORY_PRIV_H
#define FERRY_CLOUD_INVENTORY_PRIV_H

#include "cloud_inventory.h"

#include <sqlite3.h>

sqlite3 *cloud_inventory_sqlite(struct cloud_inventory *inv);

/* "inventory <path>: <doing>: <SQLite's reason>", with the error mapped. */
enum ferry_err cloud_inventory_fail(const struct cloud_inventory *inv, int rc, const char *doing,
                                    struct ferry_diag *d);

/* Reads a row of the nodes table selected as
 * node, gateway, release, version, state, bytes, total, error, message, seq, ts, updated_at
 * and, optionally, the count of the node's refused records. */
enum ferry_err cloud_inventory_read_node(const struct cloud_inventory *inv, sqlite3_stmt *s,
                                         struct ferry_inventory_row *row,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

/* Creates the rollout tables where missing (cloud_inventory_rollout.c);
 * called on every open, after the base schema is checked. */
enum ferry_err cloud_inventory_rollout_schema(struct cloud_inventory *inv,
                                              struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
