/* Inside cloud_db: what a driver implements (cloud_db_sqlite.c,
 * cloud_db_pg.c) and the SQL each one runs (cloud_sql_sqlite.c,
 * cloud_sql_pg.c). Only cloud_db*.c and cloud_sql_*.c include this. */
#ifndef FERRY_CLOUD_DB_DRIVER_H
#define FERRY_CLOUD_DB_DRIVER_H

#include "cloud_db.h"

struct cloud_db_ops {
    /* Connects to target and brings the schema in line (cloud_db_open()). */
    enum ferry_err (*open)(struct cloud_db *db, const char *target, bool create,
                           struct ferry_diag *d);
    void (*close)(struct cloud_db *db);
    enum ferry_err (*begin)(struct cloud_db *db, enum cloud_db_txn kind, struct ferry_diag *d);
    enum ferry_err (*commit)(struct cloud_db *db, struct ferry_diag *d);
    void (*rollback)(struct cloud_db *db);
    enum ferry_err (*run)(struct cloud_db *db, enum cloud_q q, unsigned flags,
                          const struct cloud_db_arg *args, size_t nargs, cloud_db_row_cb cb,
                          void *arg, uint64_t *changed, const char *doing, struct ferry_diag *d);
    int (*ncols)(const struct cloud_db_row *r);
    bool (*null)(const struct cloud_db_row *r, int col);
    bool (*get_int)(const struct cloud_db_row *r, int col, int64_t *out);
    bool (*get_text)(const struct cloud_db_row *r, int col, const char **s, size_t *len);
    bool (*get_blob)(const struct cloud_db_row *r, int col, const uint8_t **p, size_t *len);
};

struct cloud_db {
    const struct cloud_db_ops *ops;
    char *name;     /* for messages */
    bool in_txn;    /* between begin and commit/rollback */
    bool read_only; /* cloud_db_open_read() */
    void *impl;     /* the driver's */
};

/* A row as a driver hands it to callbacks. */
struct cloud_db_row {
    struct cloud_db *db;
    void *impl;
    int index;
};

extern const struct cloud_db_ops cloud_db_sqlite_ops;
extern const struct cloud_db_ops cloud_db_pg_ops;

/* Each driver's SQL: one statement per query, NULL where the driver has
 * nothing to run (its answer is then no rows); and its schema. */
extern const char *const cloud_sql_sqlite[CLOUD_Q__COUNT];
extern const char *const cloud_sql_pg[CLOUD_Q__COUNT];

/* SQLite: the base tables of schema version 1 and the upgrades to 2 and 3
 * (with PRAGMA user_version), then the rollout tables, made where missing on
 * every open. */
extern const char cloud_sql_sqlite_schema_v1[];
extern const char cloud_sql_sqlite_schema_v2[];
extern const char cloud_sql_sqlite_schema_v3[];
extern const char cloud_sql_sqlite_parts[];
#define CLOUD_SQLITE_SCHEMA_VERSION 3
#define CLOUD_SQLITE_NODE_COUNTS    1 /* node_counts' part version (cloud_sql_sqlite_parts) */

/* PostgreSQL: everything at once, versions in ferry_schema (the inventory
 * at CLOUD_SQLITE_SCHEMA_VERSION, the rollout tables below). */
extern const char cloud_sql_pg_schema[];
/* PostgreSQL's 'group_counts' part (indexes), made where missing. */
extern const char cloud_sql_pg_group_counts[];

/* The version the rollout tables are at, as both drivers record it. */
#define CLOUD_SCHEMA_ROLLOUTS 1
/* The 'group_counts' part's version, as both drivers record it: what
 * /gateways and /releases read (SQLite: gateway_counts and release_counts,
 * kept by triggers; PostgreSQL: indexes). */
#define CLOUD_SCHEMA_GROUP_COUNTS 1

/* "inventory <name>: <doing>: <why>" with err. */
enum ferry_err cloud_db_fail(const struct cloud_db *db, enum ferry_err err, const char *doing,
                             const char *why, struct ferry_diag *d);

#endif
