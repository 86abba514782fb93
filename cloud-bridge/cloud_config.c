#include "cloud_config.h"

#include "cloud_db.h"
#include "cloud_publish.h"
#include "cloud_subcmd.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_module.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cloud_config {
    struct cloud_db *db;
};

/* The reports live beside the inventory, in the same database (cloud_db.h):
 * the table is part of both drivers' schema, its SQL is theirs. */
enum ferry_err cloud_config_open(const char *path, bool create, struct cloud_config **out,
                                 struct ferry_diag *d)
{
    struct cloud_config *c = calloc(1, sizeof(*c));
    if (!c)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", path);
    enum ferry_err err = cloud_db_open(path, create, &c->db, d);
    if (err != FERRY_OK) {
        free(c);
        return err;
    }
    *out = c;
    return FERRY_OK;
}

void cloud_config_close(struct cloud_config *c)
{
    if (!c)
        return;
    cloud_db_close(c->db);
    free(c);
}

enum ferry_err cloud_config_ingest(struct cloud_config *c, const struct ferry_config_report *r,
                                   bool *kept, struct ferry_diag *d)
{
    *kept = false;
    if (!r->healthy)
        return FERRY_OK;
    uint64_t n = 0;
    enum ferry_err err =
        cloud_db_run(c->db, CLOUD_Q_CONFIG_UPSERT,
                     DB_ARGS(DB_TEXT(r->node), DB_TEXT(r->gateway), DB_TEXT(r->path),
                             DB_TEXT(r->properties), DB_INT(r->ts), DB_INT(time(NULL))),
                     NULL, NULL, &n, "storing a configuration report", d);
    *kept = err == FERRY_OK && n > 0;
    return err;
}

/* A text column into out, "" when NULL, cut to fit. */
static void copy_column(const struct cloud_db_row *r, int col, char *out, size_t cap)
{
    const char *v = NULL;
    size_t len = 0;
    if (!cloud_db_text(r, col, &v, &len))
        len = 0;
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), v ? v : "");
}

struct config_read {
    struct ferry_config_report *out;
    bool found;
};

static enum ferry_err on_config(void *arg, const struct cloud_db_row *r)
{
    struct config_read *x = arg;
    struct ferry_config_report *out = x->out;
    x->found = true;
    copy_column(r, 0, out->gateway, sizeof(out->gateway));
    copy_column(r, 1, out->path, sizeof(out->path));
    copy_column(r, 2, out->properties, sizeof(out->properties));
    int64_t ts = 0;
    out->ts = cloud_db_int(r, 3, &ts) ? ts : 0;
    out->healthy = true;
    return FERRY_OK;
}

enum ferry_err cloud_config_get(struct cloud_config *c, const char *node,
                                struct ferry_config_report *out, struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->node, sizeof(out->node), "%s", node);
    struct config_read x = {out, false};
    enum ferry_err err = cloud_db_run(c->db, CLOUD_Q_CONFIG_GET, DB_ARGS(DB_TEXT(node)), on_config,
                                      &x, NULL, "reading a configuration", d);
    if (err == FERRY_OK && !x.found)
        err = ferry_fail(d, FERRY_E_NOT_FOUND,
                         "inventory %s: node '%s' never reported its configuration while healthy",
                         cloud_db_name(c->db), node);
    return err;
}

/* ---- ferry-cloud config -------------------------------------------------------- */

struct config_cfg {
    char *db;
    char *node;
    enum ferry_log_level log_level;
};

static const struct ferry_opt config_opts[] = {
    CLOUD_OPT(config_cfg, "db", FERRY_OPT_STR, db, "DB", "the fleet inventory", FERRY_OPT_REQUIRED),
    CLOUD_OPT(config_cfg, "node", FERRY_OPT_STR, node, "NODE", "the node", FERRY_OPT_REQUIRED),
    CLOUD_OPT_LOG_LEVEL(config_cfg),
};

static const struct cloud_subcmd config_cmd = {
    .name = "config",
    .synopsis = "--db DB --node NODE",
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
    fprintf(out,
            "Usage: ferry-cloud restore-config --db DB --node NODE [--path PATH] PUBLISH-FLAGS\n\n"
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
