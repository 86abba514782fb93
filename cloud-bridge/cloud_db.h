/* The cloud's database: one interface, two drivers.
 *
 *   --db /var/lib/ferry-cloud/inventory.db        SQLite, a file on this host (the default)
 *   --db 'postgresql://ferry@db.example/ferry?sslmode=verify-full'
 *                                                 PostgreSQL, shared by instances on several hosts
 *
 * The inventory (cloud_inventory.h), the rollout tables
 * (cloud_inventory_rollout.h), the configuration reports
 * (cloud_config.h) and the console's reads (cloud_http_sql.h) speak to
 * the database only through this
 * interface, and only by naming a query (enum cloud_q). Each driver holds
 * all of its SQL in one place, a table from query to statement plus its
 * schema: cloud_sql_sqlite.c and cloud_sql_pg.c. Adding a query is one line
 * in CLOUD_DB_QUERIES below and one statement in each of those two files;
 * nothing above this interface knows which database it runs on.
 *
 * Both drivers hold the same schema (tables, columns, keys) and give the
 * same answers; the unit tests of the inventory and the rollout tables run
 * against both (tests/unit/db_fixture.h: unit.<test> on SQLite,
 * unit.<test>.pg on a PostgreSQL server the test starts). What differs, and
 * why:
 *   - SQLite: one file, WAL, synchronous=FULL (a commit survives a power cut
 *     when it returns); writers take turns on the file lock (BEGIN
 *     IMMEDIATE, with a busy timeout), so every write transaction excludes
 *     every other, across the processes of one host.
 *   - PostgreSQL: libpq; a commit is durable by the server's settings
 *     (synchronous_commit, replication). Instances on several hosts write at
 *     once: a CLOUD_DB_WRITE transaction (status ingestion) takes a shared
 *     advisory lock and then locks each node it touches (CLOUD_Q_LOCK_NODE),
 *     so two batches about one node are judged one after the other, exactly
 *     as on SQLite; a CLOUD_DB_EXCLUSIVE transaction (a rollout decision)
 *     takes that advisory lock exclusively, so decisions stay single across
 *     hosts and see no ingestion half done. A broken connection (a server
 *     restart, a managed database failing over) is re-established at the
 *     next call; the call that found it broken fails (FERRY_E_BUSY) and its
 *     caller retries as for any failed write (an unacknowledged batch comes
 *     again).
 *
 * Arguments are bound by position (?1 / $1 in the SQL), as struct
 * cloud_db_arg values; rows come to a callback one at a time (a query marked
 * WALK streams: PostgreSQL reads it through a cursor in batches, so a walk
 * over a million nodes holds a batch, not the fleet). A callback may run
 * other queries on the same connection.
 *
 * A password never goes in the URL (it would show in `ps` and in logs):
 * libpq reads it from a password file (`passfile=` in the URL, PGPASSFILE,
 * or ~/.pgpass). A URL with a password is refused.
 *
 * One struct cloud_db belongs to one thread. */
#ifndef FERRY_CLOUD_DB_H
#define FERRY_CLOUD_DB_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_DB_WALK 1u /* the query may return many rows: stream them */

/* Every query any module runs: X(name, flags). */
#define CLOUD_DB_QUERIES(X)                                                                        \
    /* records, nodes, bindings, refusals, events (cloud_inventory.c) */                           \
    X(LOCK_NODE, 0)                                                                                \
    X(INSERT_RECORD, 0)                                                                            \
    X(UPSERT_NODE, 0)                                                                              \
    X(INSERT_REFUSED, 0)                                                                           \
    X(TRIM_REFUSED, 0)                                                                             \
    X(SELECT_SAME, 0)                                                                              \
    X(SELECT_LAST, 0)                                                                              \
    X(SELECT_BINDING, 0)                                                                           \
    X(UPSERT_BINDING, 0)                                                                           \
    X(INSERT_EVENT, 0)                                                                             \
    X(SELECT_NODES, CLOUD_DB_WALK)                                                                 \
    X(SELECT_REFUSED, CLOUD_DB_WALK)                                                               \
    X(SELECT_EVENTS, CLOUD_DB_WALK)                                                                \
    /* rollouts (cloud_inventory_rollout.c) */                                                     \
    X(ROLLOUT_INSERT, 0)                                                                           \
    X(ROLLOUT_LOAD, 0)                                                                             \
    X(ROLLOUT_SAVE, 0)                                                                             \
    X(ROLLOUT_IDS, 0)                                                                              \
    X(ROLLOUT_ACTIVE_FOR, 0)                                                                       \
    X(ROLLOUT_LOG, 0)                                                                              \
    X(ROLLOUT_EACH_LOG, CLOUD_DB_WALK)                                                             \
    X(ROLLOUT_WAVE_OPENED, 0)                                                                      \
    X(ROLLOUT_TALLY_TARGETS, CLOUD_DB_WALK)                                                        \
    X(ROLLOUT_TALLY_WAVES, 0)                                                                      \
    X(ROLLOUT_CANDIDATES, CLOUD_DB_WALK)                                                           \
    X(ROLLOUT_TARGET_PUT, 0)                                                                       \
    X(ROLLOUT_REFRESH, 0)                                                                          \
    X(ROLLOUT_REFRESH_REVERT, 0)                                                                   \
    X(ROLLOUT_EACH_TARGET, CLOUD_DB_WALK)                                                          \
    X(ROLLOUT_EACH_NODE, CLOUD_DB_WALK)                                                            \
    X(ROLLOUT_GW_HALT, 0)                                                                          \
    X(NODEINFO_PUT, 0)                                                                             \
    X(NODEINFO_GET, 0)                                                                             \
    /* configuration reports (cloud_config.c) */                                                   \
    X(CONFIG_UPSERT, 0)                                                                            \
    X(CONFIG_GET, 0)                                                                               \
    /* serve instances' leases, when they split gateways (cloud_partition.h) */                    \
    X(LEASE_TABLE, 0)                                                                              \
    X(LEASE_PUT, 0)                                                                                \
    X(LEASE_LIVE, 0)                                                                               \
    X(LEASE_DROP, 0)                                                                               \
    X(LEASE_PURGE, 0)                                                                              \
    /* the console's reads (cloud_http_sql.c) */                                                   \
    X(HTTP_NODES_AFTER, 0)                                                                         \
    X(HTTP_NODES_BEFORE, 0)                                                                        \
    X(HTTP_COUNT_NODES, 0)                                                                         \
    X(HTTP_GW_NODES_AFTER, 0)                                                                      \
    X(HTTP_GW_NODES_BEFORE, 0)                                                                     \
    X(HTTP_GW_COUNT_NODES, 0)                                                                      \
    X(HTTP_COUNT_ALL, 0)                                                                           \
    X(HTTP_COUNT_GROUPS, 0)                                                                        \
    X(HTTP_NODE, 0)                                                                                \
    X(HTTP_CHANGED, 0)                                                                             \
    X(HTTP_BINDING, 0)                                                                             \
    X(HTTP_HISTORY, 0)                                                                             \
    X(HTTP_REFUSED, 0)                                                                             \
    X(HTTP_STATE_VERSIONS, 0)                                                                      \
    X(HTTP_RELEASE_STATES, 0)                                                                      \
    X(HTTP_GATEWAYS, 0)                                                                            \
    X(HTTP_ROLLOUT_IDS, 0)                                                                         \
    X(HTTP_ROLLOUT, 0)                                                                             \
    X(HTTP_TALLY, 0)                                                                               \
    X(HTTP_WAVES, 0)                                                                               \
    X(HTTP_LOG, 0)                                                                                 \
    X(HTTP_MARKS, 0)

enum cloud_q {
#define CLOUD_Q_ENUM(name, flags) CLOUD_Q_##name,
    CLOUD_DB_QUERIES(CLOUD_Q_ENUM)
#undef CLOUD_Q_ENUM
        CLOUD_Q__COUNT
};

/* A transaction's kind: what its caller needs from the database. */
enum cloud_db_txn {
    CLOUD_DB_WRITE,     /* status ingestion: no other writer changes the nodes it touches */
    CLOUD_DB_EXCLUSIVE, /* a rollout decision: alone, across every process and host */
    CLOUD_DB_READ,      /* reads only, from one snapshot (a connection of cloud_db_open_read()) */
};

/* One argument of a query. */
struct cloud_db_arg {
    enum { CLOUD_DB_NULL, CLOUD_DB_INT, CLOUD_DB_TEXT, CLOUD_DB_BLOB } type;
    int64_t i;
    const void *p; /* TEXT: NUL-terminated; BLOB: len bytes */
    size_t len;
};
#define DB_NULL            ((struct cloud_db_arg){CLOUD_DB_NULL, 0, NULL, 0})
#define DB_INT(v)          ((struct cloud_db_arg){CLOUD_DB_INT, (int64_t)(v), NULL, 0})
#define DB_TEXT(s)         ((struct cloud_db_arg){CLOUD_DB_TEXT, 0, (s), 0})
#define DB_BLOB(b, n)      ((struct cloud_db_arg){CLOUD_DB_BLOB, 0, (b), (n)})
#define DB_TEXT_OR_NULL(s) ((s) ? DB_TEXT(s) : DB_NULL)
#define DB_ARGS(...)                                                                               \
    ((const struct cloud_db_arg[]){__VA_ARGS__}),                                                  \
        (sizeof((const struct cloud_db_arg[]){__VA_ARGS__}) / sizeof(struct cloud_db_arg))

struct cloud_db;
struct cloud_db_row; /* valid during the callback only */

typedef enum ferry_err (*cloud_db_row_cb)(void *arg, const struct cloud_db_row *row);

/* An SQLite result code as Ferry's error: FERRY_E_BUSY for a lock held
 * elsewhere, _CORRUPT, _NOSPACE, _NOMEM, _NOT_FOUND (cannot open), else
 * FERRY_E_IO (the SQLite driver's). */
enum ferry_err cloud_db_sqlite_err(int rc);

/* Whether target names a PostgreSQL database (postgresql:// or
 * postgres://) rather than an SQLite file. */
bool cloud_db_is_url(const char *target);

/* Opens the database and makes sure it holds this Ferry's schema: created
 * with create (an SQLite file is created if missing; a PostgreSQL database
 * must exist, its tables are created), else FERRY_E_NOT_FOUND for a missing
 * file and FERRY_E_CORRUPT for a database without Ferry's schema. A schema
 * of a newer Ferry is FERRY_E_CORRUPT; an older one is upgraded. A server
 * that cannot be reached is FERRY_E_IO; a URL holding a password is
 * FERRY_E_INVALID_ARG. */
enum ferry_err cloud_db_open(const char *target, bool create, struct cloud_db **out,
                             struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_db_close(struct cloud_db *db); /* NULL is fine */

/* Opens an existing database for reading only (the console's connections,
 * cloud_http_sql.h): nothing is created or upgraded, a schema other than
 * this Ferry's is FERRY_E_CORRUPT, a missing file FERRY_E_NOT_FOUND. SQLite
 * opens the file read-only, with LIKE case-sensitive as PostgreSQL has it;
 * PostgreSQL's sessions are read-only (default_transaction_read_only). Its
 * transactions are CLOUD_DB_READ: SQLite's a deferred BEGIN (a WAL reader
 * that never delays the writer), PostgreSQL's REPEATABLE READ READ ONLY. */
enum ferry_err cloud_db_open_read(const char *target, struct cloud_db **out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* For messages: the file, or the URL (it holds no password). */
const char *cloud_db_name(const struct cloud_db *db);

/* Transactions; one at a time per connection. Outside one, each query
 * commits by itself. */
enum ferry_err cloud_db_begin(struct cloud_db *db, enum cloud_db_txn kind,
                              struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_db_commit(struct cloud_db *db, struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_db_rollback(struct cloud_db *db);
bool cloud_db_in_txn(const struct cloud_db *db);

/* Runs query q with args; each row goes to cb (may be NULL: rows are
 * ignored); a non-FERRY_OK return from cb stops the query and is returned.
 * *changed (may be NULL): rows the statement inserted, updated or deleted.
 * Errors: "inventory <name>: <doing>: <the database's reason>", mapped to
 * FERRY_E_BUSY (locked, deadlock, connection lost), FERRY_E_NOSPACE (disk
 * full), FERRY_E_NOMEM, FERRY_E_CORRUPT, FERRY_E_IO (anything else). */
enum ferry_err cloud_db_run(struct cloud_db *db, enum cloud_q q, const struct cloud_db_arg *args,
                            size_t nargs, cloud_db_row_cb cb, void *arg, uint64_t *changed,
                            const char *doing, struct ferry_diag *d) FERRY_MUST_CHECK;

/* A row's columns, counted from 0. */
int cloud_db_ncols(const struct cloud_db_row *r);
bool cloud_db_null(const struct cloud_db_row *r, int col);
/* false when the value is NULL or not an integer */
bool cloud_db_int(const struct cloud_db_row *r, int col, int64_t *out);
/* false when NULL; *s is NUL-terminated, len its length */
bool cloud_db_text(const struct cloud_db_row *r, int col, const char **s, size_t *len);
/* false when NULL or undecodable; valid during the callback */
bool cloud_db_blob(const struct cloud_db_row *r, int col, const uint8_t **p, size_t *len);

/* Copies a text column into out (cap bytes with its NUL); false when NULL,
 * too long or holding a NUL. */
bool cloud_db_text_copy(const struct cloud_db_row *r, int col, char *out, size_t cap);

#endif
