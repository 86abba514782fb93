/* The HTTP API's window on the fleet inventory (cloud_inventory.h): its own
 * read-only connection (cloud_db_open_read(): an SQLite file or a
 * PostgreSQL database) and every query the API and its event stream run.
 * The queries are named in cloud_db.h (CLOUD_Q_HTTP_*), their SQL is in
 * cloud_sql_sqlite.c and cloud_sql_pg.c, SELECTs only. The API's actions
 * do not come through here: they are the rollout commands' own
 * transactions (cloud_rollout_ops.h) on a connection of their own.
 *
 * The fleet's figures (nodes per state and version, the total of a list
 * filtered by state or version alone): on SQLite the node_counts table,
 * kept by triggers in ingestion's own transaction, so they cost a few rows
 * whatever the fleet's size; on PostgreSQL a count over nodes (no such
 * table: its rows would be written by every ingesting transaction, and
 * serve instances on several hosts would queue on them, which the per-node
 * locks exist to avoid).
 *
 * Why a connection of its own: `serve` ingests status records on its event
 * loop through its own connection. On SQLite the inventory runs in WAL
 * mode, where readers neither wait for that writer nor make it wait (on
 * PostgreSQL a reader takes no lock and sees one snapshot), so a page of nodes
 * read here never delays an acknowledgement. To keep it so, nothing here
 * holds a read transaction beyond one call of cloud_http_db_read_begin() ..
 * _end() (a long-lived reader would keep the WAL from being checkpointed),
 * and every list is bounded by the caller's limit.
 *
 * Nodes are the nodes table's rows (a node is there once it reported a
 * status record), with the description its gateway last reported
 * (node_info) where there is one. Their order is the node id's (byte
 * order), which is what the page cursors follow: "after" and "before" are
 * node ids, so a page stays put when nodes are added or change state.
 *
 * The tag filter matches the description's canonical JSON
 * (ferry_nodeinfo_to_json: tags last, keys and values identifiers) with a
 * LIKE pattern, case-sensitively; tests/integration/test_console_api.sh checks that
 * form.
 *
 * One struct cloud_http_db belongs to one thread at a time. */
#ifndef FERRY_CLOUD_HTTP_SQL_H
#define FERRY_CLOUD_HTTP_SQL_H

#include "cloud_inventory_rollout.h"
#include "cloud_rollout_calc.h"
#include "ferry_batch.h"
#include "ferry_err.h"
#include "ferry_nodeinfo.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_HTTP_PAGE_MAX 1000 /* rows one call returns at most */

struct cloud_http_db;

/* Opens target (a file or a postgresql:// URL, as --db) read-only;
 * FERRY_E_NOT_FOUND when there is no such file, FERRY_E_CORRUPT when it is
 * not an inventory of the schema this Ferry reads, FERRY_E_IO when the
 * server cannot be reached. */
enum ferry_err cloud_http_db_open(const char *target, struct cloud_http_db **out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_http_db_close(struct cloud_http_db *db); /* NULL is fine */

/* One snapshot for several queries (a page and its total). Every begin is
 * followed by an end, also after an error. */
enum ferry_err cloud_http_db_read_begin(struct cloud_http_db *db,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_http_db_read_end(struct cloud_http_db *db);

/* ---- nodes ------------------------------------------------------------------------ */

/* Which nodes; every field left zero or NULL matches all. */
struct cloud_http_node_filter {
    uint32_t states; /* bit (1 << enum ferry_state) per state wanted */
    const char *gateway, *version, *release;
    const char *tag_key, *tag_value; /* both or neither */
    const char *prefix;              /* node id starts with this */
    int64_t rollout;                 /* targets of this rollout */
    unsigned wave;                   /* 1-based wave of that rollout */
};

struct cloud_http_node {
    struct ferry_inventory_row row; /* the latest record, as `status --json` shows it */
    bool described;
    struct ferry_nodeinfo info; /* when described */
};

/* n is valid during the call only; a non-FERRY_OK return stops the walk and
 * is passed on. */
typedef enum ferry_err (*cloud_http_node_cb)(void *arg, const struct cloud_http_node *n);

/* Up to limit (1..CLOUD_HTTP_PAGE_MAX) nodes matching f, in node order:
 * those after `after` (NULL: from the first), or, with `before`, the last
 * limit nodes before it (still delivered in ascending order). *more: nodes
 * lie beyond the page in the direction walked. Rows that do not hold what
 * ingestion writes are FERRY_E_CORRUPT, naming the node. */
enum ferry_err cloud_http_db_nodes(struct cloud_http_db *db, const struct cloud_http_node_filter *f,
                                   const char *after, const char *before, unsigned limit,
                                   cloud_http_node_cb cb, void *arg, bool *more,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_db_count_nodes(struct cloud_http_db *db,
                                         const struct cloud_http_node_filter *f, uint64_t *count,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

/* One node; FERRY_E_NOT_FOUND when it never reported. */
enum ferry_err cloud_http_db_node(struct cloud_http_db *db, const char *node,
                                  struct cloud_http_node *out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

struct cloud_http_binding {
    char gateway[FERRY_ID_MAX + 1]; /* "" when the node is bound to none */
    int64_t since;
    char how[16]; /* "first-record", "operator", "upgrade" */
};
enum ferry_err cloud_http_db_binding(struct cloud_http_db *db, const char *node,
                                     struct cloud_http_binding *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* The node's stored records, newest first, with seq below before_seq (0:
 * from the newest), at most limit. */
struct cloud_http_record {
    struct ferry_status st;
    int64_t received_at;
};
typedef enum ferry_err (*cloud_http_record_cb)(void *arg, const struct cloud_http_record *r);
enum ferry_err cloud_http_db_history(struct cloud_http_db *db, const char *node,
                                     uint64_t before_seq, unsigned limit, cloud_http_record_cb cb,
                                     void *arg, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The node's refused records, newest first, at most limit. */
typedef enum ferry_err (*cloud_http_refused_cb)(void *arg, const struct ferry_refused_row *r);
enum ferry_err cloud_http_db_refused(struct cloud_http_db *db, const char *node, unsigned limit,
                                     cloud_http_refused_cb cb, void *arg,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* Nodes whose latest record was stored in [since, until) (unix seconds,
 * the cloud's clock), in that order, at most limit: what the event stream
 * sends. */
enum ferry_err cloud_http_db_changed(struct cloud_http_db *db, int64_t since, int64_t until,
                                     unsigned limit, cloud_http_node_cb cb, void *arg,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- the fleet in figures ------------------------------------------------------------- */

/* Node counts by (state, version), at most limit groups, largest first. */
typedef enum ferry_err (*cloud_http_group_cb)(void *arg, const char *a, const char *b,
                                              uint64_t count);
enum ferry_err cloud_http_db_state_versions(struct cloud_http_db *db, unsigned limit,
                                            cloud_http_group_cb cb, void *arg,
                                            struct ferry_diag *d) FERRY_MUST_CHECK;

/* Node counts by (release, state) for releases nodes reported on. */
enum ferry_err cloud_http_db_release_states(struct cloud_http_db *db, unsigned limit,
                                            cloud_http_group_cb cb, void *arg,
                                            struct ferry_diag *d) FERRY_MUST_CHECK;

/* Gateways as their nodes' latest records name them, in id order. */
struct cloud_http_gateway_row {
    char gateway[FERRY_ID_MAX + 1];
    uint64_t nodes;      /* whose latest record came through it */
    uint64_t busy;       /* of those: downloading, verifying, installing, pending-reboot */
    uint64_t failed;     /* of those: failed or rolled-back */
    int64_t last_record; /* when the newest of those records was stored */
};
typedef enum ferry_err (*cloud_http_gateway_cb)(void *arg, const struct cloud_http_gateway_row *g);
enum ferry_err cloud_http_db_gateways(struct cloud_http_db *db, unsigned limit,
                                      cloud_http_gateway_cb cb, void *arg,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- rollouts ----------------------------------------------------------------------- */

/* The ids of the newest limit rollouts, newest first. */
typedef enum ferry_err (*cloud_http_id_cb)(void *arg, int64_t id);
enum ferry_err cloud_http_db_rollout_ids(struct cloud_http_db *db, unsigned limit,
                                         cloud_http_id_cb cb, void *arg,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

/* A rollout without its envelopes (out->envelope and revert_envelope stay
 * NULL: a view has no use for them). FERRY_E_NOT_FOUND. */
enum ferry_err cloud_http_db_rollout(struct cloud_http_db *db, int64_t id,
                                     struct cloud_rollout *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* The counts cloud_rollout_tally() makes, with one GROUP BY. */
enum ferry_err cloud_http_db_rollout_tally(struct cloud_http_db *db, const struct cloud_rollout *r,
                                           struct cloud_wave_tally *waves,
                                           struct cloud_halt_tally *halt,
                                           struct ferry_diag *d) FERRY_MUST_CHECK;

/* The decision log, newest first, entries with an id below before_id (0:
 * from the newest), at most limit. */
typedef enum ferry_err (*cloud_http_log_cb)(void *arg, int64_t entry_id,
                                            const struct cloud_rollout_log_entry *e);
enum ferry_err cloud_http_db_rollout_log(struct cloud_http_db *db, int64_t id, int64_t before_id,
                                         unsigned limit, cloud_http_log_cb cb, void *arg,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- what changed ------------------------------------------------------------------------ */

struct cloud_http_marks {
    int64_t nodes_at;   /* newest nodes.updated_at */
    int64_t log_id;     /* newest rollout log entry */
    uint64_t revisions; /* sum of the rollouts' revisions */
    uint64_t active;    /* rollouts neither cancelled nor completed */
    uint64_t nodes;     /* how many nodes */
};
enum ferry_err cloud_http_db_marks(struct cloud_http_db *db, struct cloud_http_marks *out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
