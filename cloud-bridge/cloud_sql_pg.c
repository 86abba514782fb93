/* All of the cloud's SQL for PostgreSQL: the schema and one statement per
 * query of cloud_db.h, the same tables, columns, keys and answers as
 * cloud_sql_sqlite.c. What differs from SQLite, statement by statement:
 * $n for ?n, ON CONFLICT DO NOTHING for INSERT OR IGNORE, BIGINT for every
 * integer (seq reaches 2^53), BYTEA for blobs, BIGSERIAL for row ids, an
 * explicit type on parameters that are compared with NULL, JOIN for SQLite's
 * planner hint CROSS JOIN, and identifiers in the "C" collation so every
 * ORDER BY sorts as SQLite's binary collation does, whatever the
 * database's locale. */
#include "cloud_db_driver.h"

#define RECORD_COLUMNS                                                                             \
    "node, seq, gateway, release, version, state, bytes, total, error, message, ts"

#define ROLLOUT_COLUMNS                                                                            \
    "id, product, release, version, seq, envelope, revert_release, revert_seq,"                    \
    " revert_envelope, plan, state, open_waves, created_at, start_at, state_at, retry_at,"         \
    " revision, resume, promoted, created_by, reason"

#define FINAL_STATES "('success','failed','rolled-back','rejected')"

#define ID "TEXT COLLATE \"C\" NOT NULL"

const char cloud_sql_pg_schema[] =
    "CREATE TABLE records ("
    " node " ID ", seq BIGINT NOT NULL, gateway " ID ", release " ID ","
    " version TEXT NOT NULL, state TEXT NOT NULL, bytes BIGINT NOT NULL,"
    " total BIGINT NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL, ts BIGINT NOT NULL,"
    " received_at BIGINT NOT NULL, via TEXT NOT NULL DEFAULT '', PRIMARY KEY (node, seq));"
    "CREATE TABLE nodes ("
    " node " ID " PRIMARY KEY, gateway " ID ", release " ID ","
    " version TEXT NOT NULL, state TEXT NOT NULL, bytes BIGINT NOT NULL,"
    " total BIGINT NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL,"
    " seq BIGINT NOT NULL, ts BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " via TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX nodes_release ON nodes (release);"
    "CREATE INDEX nodes_gateway ON nodes (gateway);"
    "CREATE INDEX nodes_updated ON nodes (updated_at);"
    "CREATE TABLE bindings ("
    " child " ID " PRIMARY KEY, parent " ID ", since BIGINT NOT NULL, how TEXT NOT NULL);"
    "CREATE TABLE refused ("
    " id BIGSERIAL PRIMARY KEY, node " ID ", seq BIGINT NOT NULL, gateway " ID ","
    " release " ID ", version TEXT NOT NULL, state TEXT NOT NULL, bytes BIGINT NOT NULL,"
    " total BIGINT NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL, ts BIGINT NOT NULL,"
    " received_at BIGINT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,"
    " via TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX refused_node ON refused (node, received_at);"
    "CREATE TABLE events ("
    " id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, kind TEXT NOT NULL, node " ID ","
    " detail TEXT NOT NULL);"
    "CREATE TABLE rollouts ("
    " id BIGSERIAL PRIMARY KEY, product " ID ", release " ID ","
    " version TEXT NOT NULL, seq BIGINT NOT NULL, envelope BYTEA NOT NULL,"
    " revert_release " ID ", revert_seq BIGINT NOT NULL, revert_envelope BYTEA,"
    " plan TEXT NOT NULL, state TEXT NOT NULL, open_waves BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL, start_at BIGINT NOT NULL, state_at BIGINT NOT NULL,"
    " retry_at BIGINT NOT NULL, revision BIGINT NOT NULL, resume BIGINT NOT NULL,"
    " promoted BIGINT NOT NULL, created_by TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX rollouts_state ON rollouts (state);"
    "CREATE TABLE rollout_waves (rollout BIGINT NOT NULL, wave BIGINT NOT NULL,"
    " opened_at BIGINT NOT NULL, PRIMARY KEY (rollout, wave));"
    "CREATE TABLE rollout_targets ("
    " rollout BIGINT NOT NULL, node " ID ", gateway " ID ","
    " wave BIGINT NOT NULL, win BIGINT NOT NULL, state TEXT NOT NULL, seq BIGINT NOT NULL,"
    " state_at BIGINT NOT NULL, final_at BIGINT NOT NULL, revert_state TEXT NOT NULL,"
    " revert_seq BIGINT NOT NULL, PRIMARY KEY (rollout, node));"
    "CREATE INDEX rollout_targets_gw ON rollout_targets (rollout, gateway);"
    "CREATE TABLE rollout_log (id BIGSERIAL PRIMARY KEY, rollout BIGINT NOT NULL,"
    " at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX rollout_log_rollout ON rollout_log (rollout, id);"
    "CREATE TABLE rollout_gw_halts (rollout BIGINT NOT NULL, gateway " ID ","
    " resume BIGINT NOT NULL, PRIMARY KEY (rollout, gateway, resume));"
    "CREATE TABLE node_info (node " ID " PRIMARY KEY, gateway " ID ", product " ID ","
    " doc TEXT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE INDEX node_info_product ON node_info (product, updated_at);"
    "CREATE TABLE node_config ("
    " node " ID " PRIMARY KEY, gateway TEXT NOT NULL, path TEXT NOT NULL,"
    " properties TEXT NOT NULL, ts BIGINT NOT NULL, received_at BIGINT NOT NULL);"
    "INSERT INTO ferry_schema (part, version) VALUES ('inventory', 3), ('rollouts', 1);";

/* The 'group_counts' part (SQLite's name: there it is tables kept by
 * triggers): here, indexes the console's groupings read instead of the
 * table (GROUP BY gateway, release, state and version by an index-only
 * scan, with no sort), taking the place of the single-column ones; run on a
 * database that lacks the part, new or older. */
const char cloud_sql_pg_group_counts[] =
    "CREATE INDEX IF NOT EXISTS nodes_gateway_state ON nodes (gateway, state, updated_at);"
    "CREATE INDEX IF NOT EXISTS nodes_release_state ON nodes (release, state);"
    "CREATE INDEX IF NOT EXISTS nodes_state_version ON nodes (state, version);"
    "DROP INDEX IF EXISTS nodes_gateway;"
    "DROP INDEX IF EXISTS nodes_release;"
    "INSERT INTO ferry_schema (part, version) VALUES ('group_counts', 1);";

/* The console's node columns and filter (cloud_http_sql.c reads and binds
 * them in this order). */
#define HTTP_NODE_COLUMNS                                                                          \
    "n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error, n.message,"      \
    " n.seq, n.ts, n.updated_at,"                                                                  \
    " (SELECT count(*) FROM refused r WHERE r.node = n.node AND r.received_at >= n.updated_at),"   \
    " i.doc"
/* A parameter tested for NULL is cast first: PostgreSQL infers no type from IS NULL. */
#define HTTP_NODE_FILTER                                                                           \
    " ($1 = 0 OR n.state IN ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12))"                      \
    " AND ($13::text IS NULL OR n.gateway = $13) AND ($14::text IS NULL OR n.version = $14)"       \
    " AND ($15::text IS NULL OR n.release = $15)"                                                  \
    " AND ($16::text IS NULL OR EXISTS (SELECT 1 FROM node_info t WHERE t.node = n.node"           \
    " AND t.doc LIKE $16 ESCAPE '\\'))"                                                            \
    " AND ($17::text IS NULL OR n.node LIKE $17 ESCAPE '\\')"                                      \
    " AND ($18::bigint IS NULL OR EXISTS (SELECT 1 FROM rollout_targets g WHERE g.rollout = $18"   \
    " AND g.node = n.node AND ($19::bigint IS NULL OR g.wave = $19)))"

const char *const cloud_sql_pg[CLOUD_Q__COUNT] = {
    /* Two batches about one node, from instances on two hosts, are judged
     * one after the other: the lock lasts until the transaction ends. */
    [CLOUD_Q_LOCK_NODE] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
    [CLOUD_Q_INSERT_RECORD] = "INSERT INTO records (" RECORD_COLUMNS ", received_at, via)"
                              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                              " ON CONFLICT DO NOTHING",
    [CLOUD_Q_UPSERT_NODE] =
        "INSERT INTO nodes (" RECORD_COLUMNS ", updated_at, via)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, gateway = excluded.gateway,"
        " via = excluded.via,"
        " release = excluded.release, version = excluded.version, state = excluded.state,"
        " bytes = excluded.bytes, total = excluded.total, error = excluded.error,"
        " message = excluded.message, ts = excluded.ts, updated_at = excluded.updated_at"
        " WHERE excluded.seq > nodes.seq",
    [CLOUD_Q_INSERT_REFUSED] =
        "INSERT INTO refused (" RECORD_COLUMNS ", received_at, via, reason, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    [CLOUD_Q_TRIM_REFUSED] = "DELETE FROM refused WHERE (node = $1 AND id NOT IN"
                             " (SELECT id FROM refused WHERE node = $1 ORDER BY id DESC LIMIT $2))"
                             " OR id <= (SELECT max(id) FROM refused) - $3",
    [CLOUD_Q_SELECT_SAME] =
        "SELECT gateway, release, version, state, bytes, total, error, message, ts FROM records"
        " WHERE node = $1 AND seq = $2",
    [CLOUD_Q_SELECT_LAST] = "SELECT seq FROM nodes WHERE node = $1",
    [CLOUD_Q_SELECT_BINDING] = "SELECT parent FROM bindings WHERE child = $1",
    [CLOUD_Q_UPSERT_BINDING] =
        "INSERT INTO bindings (child, parent, since, how) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (child) DO UPDATE SET parent = excluded.parent, since = excluded.since,"
        " how = excluded.how",
    [CLOUD_Q_INSERT_EVENT] = "INSERT INTO events (at, kind, node, detail) VALUES ($1, $2, $3, $4)",
    [CLOUD_Q_SELECT_NODES] =
        "SELECT n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error,"
        " n.message, n.seq, n.ts, n.updated_at,"
        " (SELECT count(*) FROM refused r WHERE r.node = n.node AND r.received_at >= n.updated_at),"
        " n.via FROM nodes n WHERE ($1::text IS NULL OR n.release = $1::text)"
        " AND ($2::text IS NULL OR n.gateway = $2::text)"
        " AND ($3::text IS NULL OR n.state = $3::text) ORDER BY n.node",
    [CLOUD_Q_SELECT_REFUSED] =
        "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
        " received_at, reason, detail FROM refused WHERE ($1::text IS NULL OR release = $1::text)"
        " AND ($2::text IS NULL OR gateway = $2::text) AND ($3::text IS NULL OR state = $3::text)"
        " ORDER BY id",
    [CLOUD_Q_SELECT_EVENTS] = "SELECT at, kind, node, detail FROM events ORDER BY id",

    [CLOUD_Q_ROLLOUT_INSERT] =
        "INSERT INTO rollouts (product, release, version, seq, envelope, revert_release,"
        " revert_seq, revert_envelope, plan, state, open_waves, created_at, start_at,"
        " state_at, retry_at, revision, resume, promoted, created_by, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
        " $17, $18, $19, $20) RETURNING id",
    [CLOUD_Q_ROLLOUT_LOAD] = "SELECT " ROLLOUT_COLUMNS " FROM rollouts WHERE id = $1",
    [CLOUD_Q_ROLLOUT_SAVE] =
        "UPDATE rollouts SET state = $2, open_waves = $3, state_at = $4, retry_at = $5,"
        " revision = $6, resume = $7, promoted = $8, reason = $9 WHERE id = $1",
    [CLOUD_Q_ROLLOUT_IDS] = "SELECT id FROM rollouts WHERE state NOT IN ('cancelled','completed')"
                            " OR state_at >= $1 ORDER BY id",
    [CLOUD_Q_ROLLOUT_ACTIVE_FOR] = "SELECT id FROM rollouts WHERE product = $1 AND state NOT IN"
                                   " ('cancelled','completed') ORDER BY id LIMIT 1",
    [CLOUD_Q_ROLLOUT_LOG] = "INSERT INTO rollout_log (rollout, at, actor, action, reason)"
                            " VALUES ($1, $2, $3, $4, $5)",
    [CLOUD_Q_ROLLOUT_EACH_LOG] = "SELECT at, actor, action, reason FROM rollout_log"
                                 " WHERE rollout = $1 ORDER BY id",
    [CLOUD_Q_ROLLOUT_WAVE_OPENED] = "INSERT INTO rollout_waves (rollout, wave, opened_at)"
                                    " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    [CLOUD_Q_ROLLOUT_TALLY_TARGETS] =
        "SELECT wave, state, final_at FROM rollout_targets WHERE rollout = $1",
    [CLOUD_Q_ROLLOUT_TALLY_WAVES] = "SELECT wave, opened_at FROM rollout_waves WHERE rollout = $1",
    [CLOUD_Q_ROLLOUT_CANDIDATES] =
        "SELECT i.node, i.gateway, i.doc, COALESCE(n.version, ''), t.wave, t.gateway"
        " FROM node_info i LEFT JOIN nodes n ON n.node = i.node"
        " LEFT JOIN rollout_targets t ON t.rollout = $1 AND t.node = i.node"
        " WHERE i.product = $2 AND i.updated_at >= $3 AND (t.node IS NULL OR t.gateway != "
        "i.gateway)"
        " UNION "
        "SELECT i.node, i.gateway, i.doc, n.version, t.wave, t.gateway"
        " FROM nodes n JOIN node_info i ON i.node = n.node"
        " LEFT JOIN rollout_targets t ON t.rollout = $1 AND t.node = i.node"
        " WHERE n.updated_at >= $3 AND i.product = $2 AND (t.node IS NULL OR t.gateway != "
        "i.gateway)",
    [CLOUD_Q_ROLLOUT_TARGET_PUT] =
        "INSERT INTO rollout_targets (rollout, node, gateway, wave, win, state, seq,"
        " state_at, final_at, revert_state, revert_seq)"
        " VALUES ($1, $2, $3, $4, $5, '', 0, 0, 0, '', 0)"
        " ON CONFLICT (rollout, node) DO UPDATE SET gateway = excluded.gateway",
    [CLOUD_Q_ROLLOUT_REFRESH] =
        "UPDATE rollout_targets SET (state, seq, state_at, final_at) ="
        " (SELECT n.state, n.seq, n.updated_at,"
        " CASE WHEN n.state IN " FINAL_STATES " THEN n.updated_at ELSE 0 END"
        " FROM nodes n WHERE n.node = rollout_targets.node)"
        " WHERE rollout = $1 AND node IN (SELECT node FROM nodes WHERE updated_at >= $2"
        " AND release = $3) AND seq < (SELECT seq FROM nodes n WHERE n.node = "
        "rollout_targets.node)",
    [CLOUD_Q_ROLLOUT_REFRESH_REVERT] =
        "UPDATE rollout_targets SET (revert_state, revert_seq) ="
        " (SELECT n.state, n.seq FROM nodes n WHERE n.node = rollout_targets.node)"
        " WHERE rollout = $1 AND node IN (SELECT node FROM nodes"
        " WHERE updated_at >= $2 AND release = $3) AND revert_seq <"
        " (SELECT seq FROM nodes n WHERE n.node = rollout_targets.node)",
    [CLOUD_Q_ROLLOUT_EACH_TARGET] =
        "SELECT node, gateway, wave, win, state, revert_state, state_at"
        " FROM rollout_targets WHERE rollout = $1"
        " AND ($2::text IS NULL OR gateway = $2::text) ORDER BY gateway, node",
    [CLOUD_Q_ROLLOUT_EACH_NODE] =
        "SELECT n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error,"
        " n.message, n.seq, n.ts, n.updated_at FROM rollout_targets t"
        " JOIN nodes n ON n.node = t.node WHERE t.rollout = $1 ORDER BY n.node",
    [CLOUD_Q_ROLLOUT_GW_HALT] = "INSERT INTO rollout_gw_halts (rollout, gateway, resume)"
                                " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    [CLOUD_Q_NODEINFO_PUT] =
        "INSERT INTO node_info (node, gateway, product, doc, updated_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node) DO UPDATE SET"
        " gateway = excluded.gateway, product = excluded.product, doc = excluded.doc,"
        " updated_at = excluded.updated_at WHERE node_info.gateway != excluded.gateway"
        " OR node_info.doc != excluded.doc",
    [CLOUD_Q_NODEINFO_GET] = "SELECT doc, gateway FROM node_info WHERE node = $1",

    [CLOUD_Q_CONFIG_UPSERT] =
        "INSERT INTO node_config (node, gateway, path, properties, ts, received_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (node) DO UPDATE SET"
        " gateway = excluded.gateway, path = excluded.path, properties = excluded.properties,"
        " ts = excluded.ts, received_at = excluded.received_at WHERE excluded.ts >= "
        "node_config.ts",
    [CLOUD_Q_CONFIG_GET] = "SELECT gateway, path, properties, ts FROM node_config WHERE node = $1",

    /* serve instances' leases (cloud_partition.h): made where missing by the
     * first instance that splits gateways; times in ms since the epoch. */
    [CLOUD_Q_LEASE_TABLE] = "CREATE TABLE IF NOT EXISTS serve_leases (fleet " ID ","
                            " instance " ID ", expires_at BIGINT NOT NULL,"
                            " PRIMARY KEY (fleet, instance))",
    [CLOUD_Q_LEASE_PUT] =
        "INSERT INTO serve_leases (fleet, instance, expires_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (fleet, instance) DO UPDATE SET expires_at = excluded.expires_at",
    [CLOUD_Q_LEASE_LIVE] = "SELECT instance FROM serve_leases WHERE fleet = $1 AND expires_at > $2"
                           " ORDER BY instance LIMIT $3",
    [CLOUD_Q_LEASE_DROP] = "DELETE FROM serve_leases WHERE fleet = $1 AND instance = $2",
    [CLOUD_Q_LEASE_PURGE] = "DELETE FROM serve_leases WHERE fleet = $1 AND expires_at < $2",
    /* the console (cloud_http_sql.c): reads only, on a connection of its own.
     * NODE_COLUMNS in the order it reads them; NODE_FILTER's parameters
     * $1..$19 as it binds them: $1 states wanted (0/1), $2..$12 the state
     * names, $13 gateway, $14 version, $15 release, $16 tag LIKE pattern,
     * $17 prefix LIKE pattern, $18 rollout, $19 wave (0-based). */
    /* The cursor is repeated in the join: PostgreSQL carries a WHERE on
     * nodes over to the inner side of a join but not to the outer side of a
     * LEFT JOIN, and merged the two tables from node_info's first row, so a
     * page deep in the list read every description before it (100 ms at
     * the middle of 100,000 nodes, against 1 ms). */
    [CLOUD_Q_HTTP_NODES_AFTER] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " AND i.node > $20 WHERE" HTTP_NODE_FILTER " AND n.node > $20"
        " ORDER BY n.node LIMIT $21",
    [CLOUD_Q_HTTP_NODES_BEFORE] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " AND i.node < $20 WHERE" HTTP_NODE_FILTER " AND n.node < $20"
        " ORDER BY n.node DESC LIMIT $21",
    [CLOUD_Q_HTTP_COUNT_NODES] = "SELECT count(*) FROM nodes n WHERE" HTTP_NODE_FILTER,
    /* The same with a gateway named: the gateway's nodes by
     * nodes_gateway_state, whatever plan the prepared statement keeps. */
    [CLOUD_Q_HTTP_GW_NODES_AFTER] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " AND i.node > $20 WHERE n.gateway = $13 AND" HTTP_NODE_FILTER " AND n.node > $20"
        " ORDER BY n.node LIMIT $21",
    [CLOUD_Q_HTTP_GW_NODES_BEFORE] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " AND i.node < $20 WHERE n.gateway = $13 AND" HTTP_NODE_FILTER " AND n.node < $20"
        " ORDER BY n.node DESC LIMIT $21",
    [CLOUD_Q_HTTP_GW_COUNT_NODES] =
        "SELECT count(*) FROM nodes n WHERE n.gateway = $13 AND" HTTP_NODE_FILTER,
    [CLOUD_Q_HTTP_NODE] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE n.node = $1",
    [CLOUD_Q_HTTP_CHANGED] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE n.updated_at >= $1 AND n.updated_at < $2"
        " ORDER BY n.updated_at LIMIT $3",
    [CLOUD_Q_HTTP_BINDING] = "SELECT parent, since, how FROM bindings WHERE child = $1",
    [CLOUD_Q_HTTP_HISTORY] =
        "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
        " received_at FROM records WHERE node = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
    [CLOUD_Q_HTTP_REFUSED] =
        "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
        " received_at, reason, detail FROM refused WHERE node = $1 ORDER BY id DESC LIMIT $2",
    [CLOUD_Q_HTTP_RELEASE_STATES] =
        "SELECT release, state, count(*) AS c FROM nodes WHERE release != ''"
        " GROUP BY release, state ORDER BY c DESC LIMIT $1",
    [CLOUD_Q_HTTP_GATEWAYS] =
        "SELECT gateway, count(*),"
        " sum(CASE WHEN state IN ('downloading','verifying','installing','pending-reboot')"
        " THEN 1 ELSE 0 END),"
        " sum(CASE WHEN state IN ('failed','rolled-back') THEN 1 ELSE 0 END), max(updated_at)"
        " FROM nodes WHERE gateway != '' GROUP BY gateway ORDER BY gateway LIMIT $1",
    [CLOUD_Q_HTTP_ROLLOUT_IDS] = "SELECT id FROM rollouts ORDER BY id DESC LIMIT $1",
    [CLOUD_Q_HTTP_ROLLOUT] =
        "SELECT id, product, release, version, seq, revert_release, revert_seq, plan, state,"
        " open_waves, created_at, start_at, state_at, retry_at, revision, resume, promoted,"
        " created_by, reason FROM rollouts WHERE id = $1",
    /* per wave and state: the targets, the newest success, and the final
     * states (and failures among them) since the last retry ($2) */
    [CLOUD_Q_HTTP_TALLY] =
        "SELECT wave, state, count(*),"
        " max(CASE WHEN state = 'success' THEN final_at ELSE 0 END),"
        " sum(CASE WHEN final_at > 0 AND final_at >= $2 THEN 1 ELSE 0 END),"
        " sum(CASE WHEN final_at > 0 AND final_at >= $2 AND state IN ('failed','rolled-back')"
        " THEN 1 ELSE 0 END)"
        " FROM rollout_targets WHERE rollout = $1 GROUP BY wave, state",
    [CLOUD_Q_HTTP_WAVES] = "SELECT wave, opened_at FROM rollout_waves WHERE rollout = $1",
    [CLOUD_Q_HTTP_LOG] = "SELECT id, at, actor, action, reason FROM rollout_log"
                         " WHERE rollout = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    [CLOUD_Q_HTTP_MARKS] = "SELECT (SELECT max(updated_at) FROM nodes),"
                           " (SELECT max(id) FROM rollout_log),"
                           " (SELECT sum(revision) FROM rollouts),"
                           " (SELECT count(*) FROM rollouts"
                           " WHERE state NOT IN ('cancelled','completed'))",
    /* No node_counts table here: the figures are counted from nodes. Kept
     * by triggers, its few rows would be written by every ingesting
     * transaction, and instances on several hosts would queue on them,
     * which the per-node locks (LOCK_NODE) exist to avoid; a count is an
     * index-only scan (nodes_state_version, cloud_sql_pg_group_counts) the
     * console runs once per page or event tick. $1..$12 as in NODE_FILTER,
     * $13 the version. */
    [CLOUD_Q_HTTP_COUNT_ALL] = "SELECT count(*) FROM nodes",
    [CLOUD_Q_HTTP_COUNT_GROUPS] =
        "SELECT count(*) FROM nodes n"
        " WHERE ($1 = 0 OR n.state IN ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12))"
        " AND ($13::text IS NULL OR n.version = $13)",
    [CLOUD_Q_HTTP_STATE_VERSIONS] = "SELECT state, version, count(*) AS c FROM nodes"
                                    " GROUP BY state, version ORDER BY c DESC LIMIT $1",
};
