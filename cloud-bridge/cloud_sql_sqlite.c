/* All of the cloud's SQL for SQLite: the schema and one statement per query
 * of cloud_db.h. cloud_sql_pg.c holds the same for PostgreSQL; keep them in
 * step (same tables, columns, keys, and the same answers in the same order). */
#include "cloud_db_driver.h"

/* The status columns, in the order the inventory binds ?1..?11; it binds
 * the time the record arrived as ?12 and its path's parents (`via`) as ?13. */
#define RECORD_COLUMNS                                                                             \
    "node, seq, gateway, release, version, state, bytes, total, error, message, ts"

#define ROLLOUT_COLUMNS                                                                            \
    "id, product, release, version, seq, envelope, revert_release, revert_seq,"                    \
    " revert_envelope, plan, state, open_waves, created_at, start_at, state_at, retry_at,"         \
    " revision, resume, promoted, created_by, reason"

#define FINAL_STATES "('success','failed','rolled-back','rejected')"

const char cloud_sql_sqlite_schema_v1[] =
    "CREATE TABLE records ("
    " node TEXT NOT NULL, seq INTEGER NOT NULL, gateway TEXT NOT NULL, release TEXT NOT NULL,"
    " version TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " total INTEGER NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL, ts INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL, PRIMARY KEY (node, seq)) WITHOUT ROWID;"
    "CREATE TABLE nodes ("
    " node TEXT PRIMARY KEY NOT NULL, gateway TEXT NOT NULL, release TEXT NOT NULL,"
    " version TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " total INTEGER NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL,"
    " seq INTEGER NOT NULL, ts INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX nodes_release ON nodes (release);"
    "CREATE INDEX nodes_gateway ON nodes (gateway);";

/* Version 2: bindings (each node, and later each child gateway of a
 * cascade, to its one parent), records refused for good, and the event
 * log. A version 1 file gets them, and every node is bound to the gateway
 * its latest record came through. */
const char cloud_sql_sqlite_schema_v2[] =
    "CREATE TABLE bindings ("
    " child TEXT PRIMARY KEY NOT NULL, parent TEXT NOT NULL, since INTEGER NOT NULL,"
    " how TEXT NOT NULL);"
    "CREATE TABLE refused ("
    " id INTEGER PRIMARY KEY, node TEXT NOT NULL, seq INTEGER NOT NULL, gateway TEXT NOT NULL,"
    " release TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " total INTEGER NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL, ts INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX refused_node ON refused (node, received_at);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, node TEXT NOT NULL,"
    " detail TEXT NOT NULL);"
    "INSERT INTO bindings (child, parent, since, how)"
    " SELECT node, gateway, updated_at, 'upgrade' FROM nodes WHERE gateway != '';"
    "PRAGMA user_version = 2;";

/* Version 3: the parents a record came through in a cascade (its `via`,
 * comma-separated, "" without one), on records, nodes and refused ones. A
 * version 2 file gets the column empty. */
const char cloud_sql_sqlite_schema_v3[] =
    "ALTER TABLE records ADD COLUMN via TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE nodes ADD COLUMN via TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE refused ADD COLUMN via TEXT NOT NULL DEFAULT '';"
    "PRAGMA user_version = 3;";

/* The rollout tables and the configuration reports, added since, created
 * where missing on every open; a row in inventory_parts says which version
 * of the rollout tables the file holds. The index on
 * nodes(updated_at) lets the rollout controller read only what changed. */
const char cloud_sql_sqlite_parts[] =
    "CREATE TABLE IF NOT EXISTS inventory_parts (part TEXT PRIMARY KEY NOT NULL,"
    " version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rollouts ("
    " id INTEGER PRIMARY KEY, product TEXT NOT NULL, release TEXT NOT NULL,"
    " version TEXT NOT NULL, seq INTEGER NOT NULL, envelope BLOB NOT NULL,"
    " revert_release TEXT NOT NULL, revert_seq INTEGER NOT NULL, revert_envelope BLOB,"
    " plan TEXT NOT NULL, state TEXT NOT NULL, open_waves INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, start_at INTEGER NOT NULL, state_at INTEGER NOT NULL,"
    " retry_at INTEGER NOT NULL, revision INTEGER NOT NULL, resume INTEGER NOT NULL,"
    " promoted INTEGER NOT NULL, created_by TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rollouts_state ON rollouts (state);"
    "CREATE TABLE IF NOT EXISTS rollout_waves (rollout INTEGER NOT NULL, wave INTEGER NOT NULL,"
    " opened_at INTEGER NOT NULL, PRIMARY KEY (rollout, wave)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rollout_targets ("
    " rollout INTEGER NOT NULL, node TEXT NOT NULL, gateway TEXT NOT NULL,"
    " wave INTEGER NOT NULL, win INTEGER NOT NULL, state TEXT NOT NULL, seq INTEGER NOT NULL,"
    " state_at INTEGER NOT NULL, final_at INTEGER NOT NULL, revert_state TEXT NOT NULL,"
    " revert_seq INTEGER NOT NULL, PRIMARY KEY (rollout, node)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollout_targets_gw ON rollout_targets (rollout, gateway);"
    "CREATE TABLE IF NOT EXISTS rollout_log (id INTEGER PRIMARY KEY, rollout INTEGER NOT NULL,"
    " at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rollout_log_rollout ON rollout_log (rollout, id);"
    "CREATE TABLE IF NOT EXISTS rollout_gw_halts (rollout INTEGER NOT NULL,"
    " gateway TEXT NOT NULL, resume INTEGER NOT NULL,"
    " PRIMARY KEY (rollout, gateway, resume)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS node_info (node TEXT PRIMARY KEY NOT NULL,"
    " gateway TEXT NOT NULL, product TEXT NOT NULL, doc TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS node_info_product ON node_info (product, updated_at);"
    "CREATE INDEX IF NOT EXISTS nodes_updated ON nodes (updated_at);"
    "INSERT OR IGNORE INTO inventory_parts (part, version) VALUES ('rollouts', 1);"
    "CREATE TABLE IF NOT EXISTS node_config ("
    " node TEXT PRIMARY KEY, gateway TEXT NOT NULL, path TEXT NOT NULL,"
    " properties TEXT NOT NULL, ts INTEGER NOT NULL, received_at INTEGER NOT NULL);"
    /* The nodes per (state, version), kept by triggers in the transaction
     * that writes the nodes table, so the console's summary reads a few rows
     * instead of counting the fleet (cloud_http_sql.c). Filled from the
     * nodes once, when the file first gets it (the 'node_counts' part). */
    "CREATE TABLE IF NOT EXISTS node_counts (state TEXT NOT NULL, version TEXT NOT NULL,"
    " nodes INTEGER NOT NULL, PRIMARY KEY (state, version)) WITHOUT ROWID;"
    "INSERT INTO node_counts (state, version, nodes) SELECT state, version, count(*) FROM nodes"
    " WHERE NOT EXISTS (SELECT 1 FROM inventory_parts WHERE part = 'node_counts')"
    " GROUP BY state, version;"
    "INSERT OR IGNORE INTO inventory_parts (part, version) VALUES ('node_counts', 1);"
    "CREATE TRIGGER IF NOT EXISTS node_counts_insert AFTER INSERT ON nodes BEGIN"
    " INSERT INTO node_counts (state, version, nodes) VALUES (new.state, new.version, 1)"
    " ON CONFLICT (state, version) DO UPDATE SET nodes = nodes + 1; END;"
    "CREATE TRIGGER IF NOT EXISTS node_counts_update AFTER UPDATE OF state, version ON nodes"
    " WHEN old.state IS NOT new.state OR old.version IS NOT new.version BEGIN"
    " UPDATE node_counts SET nodes = nodes - 1 WHERE state = old.state AND version = old.version;"
    " INSERT INTO node_counts (state, version, nodes) VALUES (new.state, new.version, 1)"
    " ON CONFLICT (state, version) DO UPDATE SET nodes = nodes + 1; END;"
    "CREATE TRIGGER IF NOT EXISTS node_counts_delete AFTER DELETE ON nodes BEGIN"
    " UPDATE node_counts SET nodes = nodes - 1 WHERE state = old.state AND version = old.version;"
    " END;"
    /* The same per (gateway, state) and per (release, state), for the
     * console's /gateways and /releases (the 'group_counts' part); a
     * gateway's newest record is the last entry of its nodes in
     * nodes_gateway_updated, which serves the gateway filter too and takes
     * the place of nodes_gateway. */
    "CREATE TABLE IF NOT EXISTS gateway_counts (gateway TEXT NOT NULL, state TEXT NOT NULL,"
    " nodes INTEGER NOT NULL, PRIMARY KEY (gateway, state)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS release_counts (release TEXT NOT NULL, state TEXT NOT NULL,"
    " nodes INTEGER NOT NULL, PRIMARY KEY (release, state)) WITHOUT ROWID;"
    "INSERT INTO gateway_counts (gateway, state, nodes) SELECT gateway, state, count(*) FROM nodes"
    " WHERE NOT EXISTS (SELECT 1 FROM inventory_parts WHERE part = 'group_counts')"
    " GROUP BY gateway, state;"
    "INSERT INTO release_counts (release, state, nodes) SELECT release, state, count(*) FROM nodes"
    " WHERE NOT EXISTS (SELECT 1 FROM inventory_parts WHERE part = 'group_counts')"
    " GROUP BY release, state;"
    "INSERT OR IGNORE INTO inventory_parts (part, version) VALUES ('group_counts', 1);"
    "CREATE INDEX IF NOT EXISTS nodes_gateway_updated ON nodes (gateway, updated_at);"
    "DROP INDEX IF EXISTS nodes_gateway;"
    "CREATE TRIGGER IF NOT EXISTS group_counts_insert AFTER INSERT ON nodes BEGIN"
    " INSERT INTO gateway_counts (gateway, state, nodes) VALUES (new.gateway, new.state, 1)"
    " ON CONFLICT (gateway, state) DO UPDATE SET nodes = nodes + 1;"
    " INSERT INTO release_counts (release, state, nodes) VALUES (new.release, new.state, 1)"
    " ON CONFLICT (release, state) DO UPDATE SET nodes = nodes + 1; END;"
    "CREATE TRIGGER IF NOT EXISTS gateway_counts_update AFTER UPDATE OF gateway, state ON nodes"
    " WHEN old.gateway IS NOT new.gateway OR old.state IS NOT new.state BEGIN"
    " UPDATE gateway_counts SET nodes = nodes - 1 WHERE gateway = old.gateway"
    " AND state = old.state;"
    " INSERT INTO gateway_counts (gateway, state, nodes) VALUES (new.gateway, new.state, 1)"
    " ON CONFLICT (gateway, state) DO UPDATE SET nodes = nodes + 1; END;"
    "CREATE TRIGGER IF NOT EXISTS release_counts_update AFTER UPDATE OF release, state ON nodes"
    " WHEN old.release IS NOT new.release OR old.state IS NOT new.state BEGIN"
    " UPDATE release_counts SET nodes = nodes - 1 WHERE release = old.release"
    " AND state = old.state;"
    " INSERT INTO release_counts (release, state, nodes) VALUES (new.release, new.state, 1)"
    " ON CONFLICT (release, state) DO UPDATE SET nodes = nodes + 1; END;"
    "CREATE TRIGGER IF NOT EXISTS group_counts_delete AFTER DELETE ON nodes BEGIN"
    " UPDATE gateway_counts SET nodes = nodes - 1 WHERE gateway = old.gateway"
    " AND state = old.state;"
    " UPDATE release_counts SET nodes = nodes - 1 WHERE release = old.release"
    " AND state = old.state; END;";

/* The console's node columns and filter (cloud_http_sql.c reads and binds
 * them in this order). */
#define HTTP_NODE_COLUMNS                                                                          \
    "n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error, n.message,"      \
    " n.seq, n.ts, n.updated_at,"                                                                  \
    " (SELECT count(*) FROM refused r WHERE r.node = n.node AND r.received_at >= n.updated_at),"   \
    " i.doc"
#define HTTP_NODE_FILTER                                                                           \
    " (?1 = 0 OR n.state IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12))"                      \
    " AND (?13 IS NULL OR n.gateway = ?13) AND (?14 IS NULL OR n.version = ?14)"                   \
    " AND (?15 IS NULL OR n.release = ?15)"                                                        \
    " AND (?16 IS NULL OR EXISTS (SELECT 1 FROM node_info t WHERE t.node = n.node"                 \
    " AND t.doc LIKE ?16 ESCAPE '\\'))"                                                            \
    " AND (?17 IS NULL OR n.node LIKE ?17 ESCAPE '\\')"                                            \
    " AND (?18 IS NULL OR EXISTS (SELECT 1 FROM rollout_targets g WHERE g.rollout = ?18"           \
    " AND g.node = n.node AND (?19 IS NULL OR g.wave = ?19)))"

const char *const cloud_sql_sqlite[CLOUD_Q__COUNT] = {
    /* The file lock already keeps every other writer out. */
    [CLOUD_Q_LOCK_NODE] = NULL,
    [CLOUD_Q_INSERT_RECORD] = "INSERT OR IGNORE INTO records (" RECORD_COLUMNS ", received_at, via)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [CLOUD_Q_UPSERT_NODE] =
        "INSERT INTO nodes (" RECORD_COLUMNS ", updated_at, via)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        " ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, gateway = excluded.gateway,"
        " via = excluded.via,"
        " release = excluded.release, version = excluded.version, state = excluded.state,"
        " bytes = excluded.bytes, total = excluded.total, error = excluded.error,"
        " message = excluded.message, ts = excluded.ts, updated_at = excluded.updated_at"
        " WHERE excluded.seq > nodes.seq",
    [CLOUD_Q_INSERT_REFUSED] =
        "INSERT INTO refused (" RECORD_COLUMNS ", received_at, via, reason, detail)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [CLOUD_Q_TRIM_REFUSED] = "DELETE FROM refused WHERE (node = ?1 AND id NOT IN"
                             " (SELECT id FROM refused WHERE node = ?1 ORDER BY id DESC LIMIT ?2))"
                             " OR id <= (SELECT max(id) FROM refused) - ?3",
    [CLOUD_Q_SELECT_SAME] =
        "SELECT gateway, release, version, state, bytes, total, error, message, ts FROM records"
        " WHERE node = ?1 AND seq = ?2",
    [CLOUD_Q_SELECT_LAST] = "SELECT seq FROM nodes WHERE node = ?1",
    [CLOUD_Q_SELECT_BINDING] = "SELECT parent FROM bindings WHERE child = ?1",
    [CLOUD_Q_UPSERT_BINDING] =
        "INSERT INTO bindings (child, parent, since, how) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (child) DO UPDATE SET parent = excluded.parent, since = excluded.since,"
        " how = excluded.how",
    [CLOUD_Q_INSERT_EVENT] = "INSERT INTO events (at, kind, node, detail) VALUES (?1, ?2, ?3, ?4)",
    /* refused: the node's records refused since its latest one was stored. */
    [CLOUD_Q_SELECT_NODES] =
        "SELECT n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error,"
        " n.message, n.seq, n.ts, n.updated_at,"
        " (SELECT count(*) FROM refused r WHERE r.node = n.node AND r.received_at >= n.updated_at),"
        " n.via FROM nodes n WHERE (?1 IS NULL OR n.release = ?1) AND (?2 IS NULL OR n.gateway = "
        "?2)"
        " AND (?3 IS NULL OR n.state = ?3) ORDER BY n.node",
    [CLOUD_Q_SELECT_REFUSED] =
        "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
        " received_at, reason, detail FROM refused WHERE (?1 IS NULL OR release = ?1)"
        " AND (?2 IS NULL OR gateway = ?2) AND (?3 IS NULL OR state = ?3) ORDER BY id",
    [CLOUD_Q_SELECT_EVENTS] = "SELECT at, kind, node, detail FROM events ORDER BY id",

    [CLOUD_Q_ROLLOUT_INSERT] =
        "INSERT INTO rollouts (product, release, version, seq, envelope, revert_release,"
        " revert_seq, revert_envelope, plan, state, open_waves, created_at, start_at,"
        " state_at, retry_at, revision, resume, promoted, created_by, reason)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
        " ?17, ?18, ?19, ?20) RETURNING id",
    [CLOUD_Q_ROLLOUT_LOAD] = "SELECT " ROLLOUT_COLUMNS " FROM rollouts WHERE id = ?1",
    [CLOUD_Q_ROLLOUT_SAVE] =
        "UPDATE rollouts SET state = ?2, open_waves = ?3, state_at = ?4, retry_at = ?5,"
        " revision = ?6, resume = ?7, promoted = ?8, reason = ?9 WHERE id = ?1",
    [CLOUD_Q_ROLLOUT_IDS] = "SELECT id FROM rollouts WHERE state NOT IN ('cancelled','completed')"
                            " OR state_at >= ?1 ORDER BY id",
    [CLOUD_Q_ROLLOUT_ACTIVE_FOR] = "SELECT id FROM rollouts WHERE product = ?1 AND state NOT IN"
                                   " ('cancelled','completed') ORDER BY id LIMIT 1",
    [CLOUD_Q_ROLLOUT_LOG] = "INSERT INTO rollout_log (rollout, at, actor, action, reason)"
                            " VALUES (?1, ?2, ?3, ?4, ?5)",
    [CLOUD_Q_ROLLOUT_EACH_LOG] = "SELECT at, actor, action, reason FROM rollout_log"
                                 " WHERE rollout = ?1 ORDER BY id",
    [CLOUD_Q_ROLLOUT_WAVE_OPENED] = "INSERT OR IGNORE INTO rollout_waves (rollout, wave, opened_at)"
                                    " VALUES (?1, ?2, ?3)",
    [CLOUD_Q_ROLLOUT_TALLY_TARGETS] =
        "SELECT wave, state, final_at FROM rollout_targets WHERE rollout = ?1",
    [CLOUD_Q_ROLLOUT_TALLY_WAVES] = "SELECT wave, opened_at FROM rollout_waves WHERE rollout = ?1",
    /* Described since, or reported since, and not a target under the same
     * gateway already: the two halves each read an index from `since` on
     * (CROSS JOIN fixes SQLite's join order: nodes first, by updated_at). */
    [CLOUD_Q_ROLLOUT_CANDIDATES] =
        "SELECT i.node, i.gateway, i.doc, COALESCE(n.version, ''), t.wave, t.gateway"
        " FROM node_info i LEFT JOIN nodes n ON n.node = i.node"
        " LEFT JOIN rollout_targets t ON t.rollout = ?1 AND t.node = i.node"
        " WHERE i.product = ?2 AND i.updated_at >= ?3 AND (t.node IS NULL OR t.gateway != "
        "i.gateway)"
        " UNION "
        "SELECT i.node, i.gateway, i.doc, n.version, t.wave, t.gateway"
        " FROM nodes n CROSS JOIN node_info i ON i.node = n.node"
        " LEFT JOIN rollout_targets t ON t.rollout = ?1 AND t.node = i.node"
        " WHERE n.updated_at >= ?3 AND i.product = ?2 AND (t.node IS NULL OR t.gateway != "
        "i.gateway)",
    [CLOUD_Q_ROLLOUT_TARGET_PUT] =
        "INSERT INTO rollout_targets (rollout, node, gateway, wave, win, state, seq,"
        " state_at, final_at, revert_state, revert_seq)"
        " VALUES (?1, ?2, ?3, ?4, ?5, '', 0, 0, 0, '', 0)"
        " ON CONFLICT (rollout, node) DO UPDATE SET gateway = excluded.gateway",
    /* The nodes that reported since ?2 (by the updated_at index: the unary
     * + keeps SQLite from preferring the release index, which holds every
     * node that ever reported on the release), then each target by its
     * key. */
    [CLOUD_Q_ROLLOUT_REFRESH] =
        "UPDATE rollout_targets SET (state, seq, state_at, final_at) ="
        " (SELECT n.state, n.seq, n.updated_at,"
        " CASE WHEN n.state IN " FINAL_STATES " THEN n.updated_at ELSE 0 END"
        " FROM nodes n WHERE n.node = rollout_targets.node)"
        " WHERE rollout = ?1 AND node IN (SELECT node FROM nodes WHERE updated_at >= ?2"
        " AND +release = ?3) AND seq < (SELECT seq FROM nodes n WHERE n.node = "
        "rollout_targets.node)",
    [CLOUD_Q_ROLLOUT_REFRESH_REVERT] =
        "UPDATE rollout_targets SET (revert_state, revert_seq) ="
        " (SELECT n.state, n.seq FROM nodes n WHERE n.node = rollout_targets.node)"
        " WHERE rollout = ?1 AND node IN (SELECT node FROM nodes"
        " WHERE updated_at >= ?2 AND +release = ?3) AND revert_seq <"
        " (SELECT seq FROM nodes n WHERE n.node = rollout_targets.node)",
    [CLOUD_Q_ROLLOUT_EACH_TARGET] = "SELECT node, gateway, wave, win, state, revert_state, state_at"
                                    " FROM rollout_targets WHERE rollout = ?1"
                                    " AND (?2 IS NULL OR gateway = ?2) ORDER BY gateway, node",
    [CLOUD_Q_ROLLOUT_EACH_NODE] =
        "SELECT n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error,"
        " n.message, n.seq, n.ts, n.updated_at FROM rollout_targets t"
        " JOIN nodes n ON n.node = t.node WHERE t.rollout = ?1 ORDER BY n.node",
    [CLOUD_Q_ROLLOUT_GW_HALT] = "INSERT OR IGNORE INTO rollout_gw_halts (rollout, gateway, resume)"
                                " VALUES (?1, ?2, ?3)",
    /* Unchanged descriptions keep their time: the controller reads only what
     * changed. */
    [CLOUD_Q_NODEINFO_PUT] =
        "INSERT INTO node_info (node, gateway, product, doc, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (node) DO UPDATE SET"
        " gateway = excluded.gateway, product = excluded.product, doc = excluded.doc,"
        " updated_at = excluded.updated_at WHERE node_info.gateway != excluded.gateway"
        " OR node_info.doc != excluded.doc",
    [CLOUD_Q_NODEINFO_GET] = "SELECT doc, gateway FROM node_info WHERE node = ?1",

    [CLOUD_Q_CONFIG_UPSERT] =
        "INSERT INTO node_config (node, gateway, path, properties, ts, received_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (node) DO UPDATE SET"
        " gateway = excluded.gateway, path = excluded.path, properties = excluded.properties,"
        " ts = excluded.ts, received_at = excluded.received_at WHERE excluded.ts >= "
        "node_config.ts",
    [CLOUD_Q_CONFIG_GET] = "SELECT gateway, path, properties, ts FROM node_config WHERE node = ?1",

    /* serve instances' leases (cloud_partition.h): made where missing by the
     * first instance that splits gateways; times in ms since the epoch. */
    [CLOUD_Q_LEASE_TABLE] = "CREATE TABLE IF NOT EXISTS serve_leases (fleet TEXT NOT NULL,"
                            " instance TEXT NOT NULL, expires_at INTEGER NOT NULL,"
                            " PRIMARY KEY (fleet, instance)) WITHOUT ROWID",
    [CLOUD_Q_LEASE_PUT] =
        "INSERT INTO serve_leases (fleet, instance, expires_at) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (fleet, instance) DO UPDATE SET expires_at = excluded.expires_at",
    [CLOUD_Q_LEASE_LIVE] = "SELECT instance FROM serve_leases WHERE fleet = ?1 AND expires_at > ?2"
                           " ORDER BY instance LIMIT ?3",
    [CLOUD_Q_LEASE_DROP] = "DELETE FROM serve_leases WHERE fleet = ?1 AND instance = ?2",
    [CLOUD_Q_LEASE_PURGE] = "DELETE FROM serve_leases WHERE fleet = ?1 AND expires_at < ?2",
    /* the console (cloud_http_sql.c): reads only, on a connection of its own.
     * NODE_COLUMNS in the order it reads them; NODE_FILTER's parameters
     * ?1..?19 as it binds them: ?1 states wanted (0/1), ?2..?12 the state
     * names, ?13 gateway, ?14 version, ?15 release, ?16 tag LIKE pattern,
     * ?17 prefix LIKE pattern, ?18 rollout, ?19 wave (0-based). */
    [CLOUD_Q_HTTP_NODES_AFTER] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE" HTTP_NODE_FILTER " AND n.node > ?20"
        " ORDER BY n.node LIMIT ?21",
    [CLOUD_Q_HTTP_NODES_BEFORE] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE" HTTP_NODE_FILTER " AND n.node < ?20"
        " ORDER BY n.node DESC LIMIT ?21",
    [CLOUD_Q_HTTP_COUNT_NODES] = "SELECT count(*) FROM nodes n WHERE" HTTP_NODE_FILTER,
    /* The same with a gateway named: the gateway's nodes by
     * nodes_gateway_updated, not every node tested in turn (SQLite plans a
     * statement once, and "?13 IS NULL OR" hides the index from it). */
    [CLOUD_Q_HTTP_GW_NODES_AFTER] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE n.gateway = ?13 AND" HTTP_NODE_FILTER " AND n.node > ?20"
        " ORDER BY n.node LIMIT ?21",
    [CLOUD_Q_HTTP_GW_NODES_BEFORE] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE n.gateway = ?13 AND" HTTP_NODE_FILTER " AND n.node < ?20"
        " ORDER BY n.node DESC LIMIT ?21",
    [CLOUD_Q_HTTP_GW_COUNT_NODES] =
        "SELECT count(*) FROM nodes n WHERE n.gateway = ?13 AND" HTTP_NODE_FILTER,
    [CLOUD_Q_HTTP_NODE] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE n.node = ?1",
    [CLOUD_Q_HTTP_CHANGED] =
        "SELECT " HTTP_NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
        " WHERE n.updated_at >= ?1 AND n.updated_at < ?2"
        " ORDER BY n.updated_at LIMIT ?3",
    [CLOUD_Q_HTTP_BINDING] = "SELECT parent, since, how FROM bindings WHERE child = ?1",
    [CLOUD_Q_HTTP_HISTORY] =
        "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
        " received_at FROM records WHERE node = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    [CLOUD_Q_HTTP_REFUSED] =
        "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
        " received_at, reason, detail FROM refused WHERE node = ?1 ORDER BY id DESC LIMIT ?2",
    /* gateway_counts and release_counts, kept like node_counts: a few rows
     * per gateway or release whatever the fleet's size; a gateway's newest
     * record is one step down nodes_gateway_updated. */
    [CLOUD_Q_HTTP_RELEASE_STATES] =
        "SELECT release, state, nodes FROM release_counts"
        " WHERE release != '' AND nodes > 0 ORDER BY nodes DESC LIMIT ?1",
    [CLOUD_Q_HTTP_GATEWAYS] =
        "SELECT c.gateway, sum(c.nodes),"
        " sum(CASE WHEN c.state IN ('downloading','verifying','installing','pending-reboot')"
        " THEN c.nodes ELSE 0 END),"
        " sum(CASE WHEN c.state IN ('failed','rolled-back') THEN c.nodes ELSE 0 END),"
        " (SELECT max(n.updated_at) FROM nodes n WHERE n.gateway = c.gateway)"
        " FROM gateway_counts c WHERE c.gateway != '' AND c.nodes > 0"
        " GROUP BY c.gateway ORDER BY c.gateway LIMIT ?1",
    [CLOUD_Q_HTTP_ROLLOUT_IDS] = "SELECT id FROM rollouts ORDER BY id DESC LIMIT ?1",
    [CLOUD_Q_HTTP_ROLLOUT] =
        "SELECT id, product, release, version, seq, revert_release, revert_seq, plan, state,"
        " open_waves, created_at, start_at, state_at, retry_at, revision, resume, promoted,"
        " created_by, reason FROM rollouts WHERE id = ?1",
    /* per wave and state: the targets, the newest success, and the final
     * states (and failures among them) since the last retry (?2) */
    [CLOUD_Q_HTTP_TALLY] =
        "SELECT wave, state, count(*),"
        " max(CASE WHEN state = 'success' THEN final_at ELSE 0 END),"
        " sum(CASE WHEN final_at > 0 AND final_at >= ?2 THEN 1 ELSE 0 END),"
        " sum(CASE WHEN final_at > 0 AND final_at >= ?2 AND state IN ('failed','rolled-back')"
        " THEN 1 ELSE 0 END)"
        " FROM rollout_targets WHERE rollout = ?1 GROUP BY wave, state",
    [CLOUD_Q_HTTP_WAVES] = "SELECT wave, opened_at FROM rollout_waves WHERE rollout = ?1",
    [CLOUD_Q_HTTP_LOG] = "SELECT id, at, actor, action, reason FROM rollout_log"
                         " WHERE rollout = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    [CLOUD_Q_HTTP_MARKS] = "SELECT (SELECT max(updated_at) FROM nodes),"
                           " (SELECT max(id) FROM rollout_log),"
                           " (SELECT sum(revision) FROM rollouts),"
                           " (SELECT count(*) FROM rollouts"
                           " WHERE state NOT IN ('cancelled','completed'))",
    /* node_counts, kept by ingestion's triggers (cloud_sql_sqlite_parts):
     * the fleet's figures, and a list's total filtered by state or version
     * alone, are a few rows' sum whatever the fleet's size. ?1..?12 as in
     * NODE_FILTER, ?13 the version. */
    [CLOUD_Q_HTTP_COUNT_ALL] = "SELECT coalesce(sum(nodes), 0) FROM node_counts",
    [CLOUD_Q_HTTP_COUNT_GROUPS] =
        "SELECT coalesce(sum(nodes), 0) FROM node_counts n"
        " WHERE (?1 = 0 OR n.state IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12))"
        " AND (?13 IS NULL OR n.version = ?13)",
    [CLOUD_Q_HTTP_STATE_VERSIONS] = "SELECT state, version, nodes FROM node_counts WHERE nodes > 0"
                                    " ORDER BY nodes DESC LIMIT ?1",
};
