#include "cloud_config.h"

#include "cloud_publish.h"
#include "cloud_subcmd.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_module.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000

struct cloud_config {
    sqlite3 *db;
    char *path;
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS node_config ("
    " node TEXT PRIMARY KEY, gateway TEXT NOT NULL, path TEXT NOT NULL,"
    " properties TEXT NOT NULL, ts INTEGER NOT NULL, received_at INTEGER NOT NULL)";

static const char upsert_sql[] =
    "INSERT INTO node_config (node, gateway, path, properties, ts, received_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (node) DO UPDATE SET"
    " gateway = excluded.gateway, path = excluded.path, properties = excluded.properties,"
    " ts = excluded.ts, received_at = excluded.received_at WHERE excluded.ts >= node_config.ts";

static const char select_sql[] =
    "SELECT gateway, path, properties, ts FROM node_config WHERE node = ?1";

static enum ferry_err db_fail(const struct cloud_config *c, int rc, const char *doing,
                              struct ferry_diag *d)
{
    return ferry_fail(d, rc == SQLITE_BUSY ? FERRY_E_BUSY : FERRY_E_IO, "inventory %s: %s: %s",
                      c->path, doing, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
}

enum ferry_err cloud_config_open(const char *path, bool create, struct cloud_config **out,
                                 struct ferry_diag *d)
{
    struct stat st;
    if (!create && stat(path, &st) != 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "inventory %s: no such file", path);
    struct cloud_config *c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", path);
    }
    int rc = sqlite3_open_v2(path, &c->db,
                             SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
        rc = sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        enum ferry_err err = db_fail(c, rc, "opening the configuration table", d);
        cloud_config_close(c);
        return err;
    }
    *out = c;
    return FERRY_OK;
}

void cloud_config_close(struct cloud_config *c)
{
    if (!c)
        return;
    sqlite3_close(c->db);
    free(c->path);
    free(c);
}

enum ferry_err cloud_config_ingest(struct cloud_config *c, const struct ferry_config_report *r,
                                   bool *kept, struct ferry_diag *d)
{
    *kept = false;
    if (!r->healthy)
        return FERRY_OK;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, upsert_sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, r->node, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, r->gateway, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, r->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, r->properties, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, r->ts);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)time(NULL));
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return db_fail(c, rc, "storing a configuration report", d);
    *kept = sqlite3_changes(c->db) > 0;
    return FERRY_OK;
}

static void copy_column(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    snprintf(out, cap, "%s", v ? (const char *)v : "");
}

enum ferry_err cloud_config_get(struct cloud_config *c, const char *node,
                                struct ferry_config_report *out, struct ferry_diag *d)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, select_sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, node, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
    }
    enum ferry_err err = FERRY_OK;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        snprintf(out->node, sizeof(out->node), "%s", node);
        copy_column(s, 0, out->gateway, sizeof(out->gateway));
        copy_column(s, 1, out->path, sizeof(out->path));
        copy_column(s, 2, out->properties, sizeof(out->properties));
        out->ts = sqlite3_column_int64(s, 3);
        out->healthy = true;
    } else if (rc == SQLITE_DONE) {
        err = ferry_fail(d, FERRY_E_NOT_FOUND,
                         "inventory %s: node '%s' never reported its configuration while healthy",
                         c->path, node);
    } else {
        err = db_fail(c, rc, "reading a configuration", d);
    }
    sqlite3_finalize(s);
    return err;
}

/* ---- ferry-cloud config -------------------------------------------------------- */

struct config_cfg {
    char *db;
    char *node;
    enum ferry_log_level log_level;
};

static const struct ferry_opt config_opts[] = {
    CLOUD_OPT(config_cfg, "db", FERRY_OPT_STR, db, "FILE", "the fleet inventory",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(config_cfg, "node", FERRY_OPT_STR, node, "NODE", "the node", FERRY_OPT_REQUIRED),
    CLOUD_OPT_LOG_LEVEL(config_cfg),
};

static const struct cloud_subcmd config_cmd = {
    .name = "config",
    .synopsis = "--db FILE --node NODE",
    .about = "Prints the properties file the node last reported while healthy (its node.cfg),\n"
             "with a comment line saying when, through which gateway, and from which path.",
    .opts = config_opts,
    .nopts = sizeof(config_opts) / sizeof(config_opts[0]),
};

static enum ferry_err load(const char *db, const char *node, struct ferry_config_report *out,
                           struct ferry_diag *d)
{
    struct cloud_config *c = NULL;
    enum ferry_err err = cloud_config_open(db, false, &c, d);
    if (err == FERRY_OK)
        err = cloud_config_get(c, node, out, d);
    cloud_config_close(c);
    return err;
}

int cloud_cmd_config(int argc, char **argv)
{
    struct config_cfg cfg = {.log_level = FERRY_LOG_WARN};
    int rc = cloud_subcmd_parse(&config_cmd, &cfg, &cfg.log_level, argc, argv);
    if (rc < 0) {
        struct ferry_config_report r;
        struct ferry_diag d = {{0}};
        enum ferry_err err = load(cfg.db, cfg.node, &r, &d);
        if (err == FERRY_OK) {
            printf("# %s, reported %lld through %s from %s\n%s", r.node, (long long)r.ts,
                   r.gateway[0] ? r.gateway : "-", r.path, r.properties);
            rc = 0;
        } else {
            rc = cloud_subcmd_report(&config_cmd, &d, err, CLOUD_EXIT_FAILED);
        }
    }
    ferry_opts_free(config_opts, config_cmd.nopts, &cfg);
    return rc;
}

/* ---- ferry-cloud restore-config ------------------------------------------------- */

static void restore_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: ferry-cloud restore-config --db FILE --node NODE [--path PATH] PUBLISH-FLAGS\n\n"
        "Publishes the properties file NODE last reported while healthy back to that node,\n"
        "as a release for the `file` update module that replaces PATH (default: the path\n"
        "the node reported) on NODE alone (the manifest names it in `nodes`). The node\n"
        "needs --module-dir with the file module. PUBLISH-FLAGS are those of 'ferry-cloud\n"
        "publish' (--broker, --fleet, --store, --key, --version, --seq, --hw-model,\n"
        "--product...; see its --help); --artifact, --media-type, --module-arg and --node\n"
        "are set here. The release becomes the current one of its product line: publish\n"
        "the line's image release again once the node has taken it.\n");
}

/* Takes "--name value" or "--name=value" at argv[*i]; true when it did. */
static bool take_flag(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return false;
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return true;
    }
    if (argv[*i][n] != '\0' || *i + 1 >= argc)
        return false;
    *out = argv[++*i];
    return true;
}

int cloud_cmd_restore_config(int argc, char **argv)
{
    const char *db = NULL, *node = NULL, *path = NULL;
    char **pub = calloc((size_t)argc + 12, sizeof(*pub));
    int np = 0;
    if (!pub) {
        fprintf(stderr, "ferry-cloud restore-config: out of memory\n");
        return CLOUD_EXIT_FAILED;
    }
    static char publish[] = "publish";
    pub[np++] = publish;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            restore_usage(stdout);
            free(pub);
            return 0;
        }
        if (!take_flag(argc, argv, &i, "--db", &db) &&
            !take_flag(argc, argv, &i, "--node", &node) &&
            !take_flag(argc, argv, &i, "--path", &path))
            pub[np++] = argv[i];
    }
    if (!db || !node) {
        fprintf(stderr, "ferry-cloud restore-config: --db and --node are required\n");
        restore_usage(stderr);
        free(pub);
        return CLOUD_EXIT_USAGE;
    }
    struct ferry_config_report r;
    struct ferry_diag d = {{0}};
    enum ferry_err err = load(db, node, &r, &d);
    char artifact[] = "/tmp/ferry-restore-XXXXXX";
    int fd = err == FERRY_OK ? mkstemp(artifact) : -1;
    if (err == FERRY_OK && fd < 0)
        err = ferry_fail(&d, FERRY_E_IO, "%s: %s", artifact, strerror(errno));
    if (err == FERRY_OK && ferry_write_all(fd, r.properties, strlen(r.properties)) != FERRY_OK)
        err = ferry_fail(&d, FERRY_E_IO, "%s: cannot write the properties", artifact);
    if (fd >= 0)
        close(fd);
    if (err != FERRY_OK) {
        fprintf(stderr, "ferry-cloud restore-config: %s\n", ferry_diag_str(&d, err));
        if (fd >= 0)
            unlink(artifact);
        free(pub);
        return CLOUD_EXIT_FAILED;
    }
    /* What publish gets besides the operator's flags. */
    char extra[10][FERRY_CONFIG_PATH_MAX + 32];
    const char *const words[10] = {
        "--artifact",   artifact, "--media-type", FERRY_MODULE_MEDIA_PREFIX "file",
        "--module-arg", "path=",  "--module-arg", "mode=0644",
        "--node",       node};
    for (size_t i = 0; i < 10; i++) {
        snprintf(extra[i], sizeof(extra[i]), "%s%s", words[i],
                 i == 5 ? (path ? path : r.path) : "");
        pub[np++] = extra[i];
    }
    pub[np] = NULL;
    fprintf(stderr, "ferry-cloud restore-config: %s's properties of %lld (%zu bytes) to %s\n", node,
            (long long)r.ts, strlen(r.properties), path ? path : r.path);
    int rc = cloud_cmd_publish(np, pub);
    unlink(artifact);
    free(pub);
    return rc;
}
