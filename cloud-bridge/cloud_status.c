#include "cloud_status.h"

#include "cloud_inventory.h"
#include "cloud_subcmd.h"
#include "ferry_batch.h"
#include "ferry_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct status_cfg {
    char *db;
    bool json;
    char *release;
    char *gateway;
    char *state;
    enum ferry_log_level log_level;
};

static const struct ferry_opt status_opts[] = {
    CLOUD_OPT(status_cfg, "db", FERRY_OPT_STR, db, "FILE",
              "inventory written by 'ferry-cloud serve'", FERRY_OPT_REQUIRED),
    CLOUD_OPT(status_cfg, "json", FERRY_OPT_BOOL, json, NULL,
              "print a JSON array of objects instead of a table", 0),
    CLOUD_OPT(status_cfg, "release", FERRY_OPT_STR, release, "ID",
              "only nodes whose latest record names this release", 0),
    CLOUD_OPT(status_cfg, "gateway", FERRY_OPT_STR, gateway, "ID",
              "only nodes last heard through this gateway", 0),
    CLOUD_OPT(status_cfg, "state", FERRY_OPT_STR, state, "STATE",
              "only nodes in this state (idle, downloading, success, failed, ...)", 0),
    CLOUD_OPT_LOG_LEVEL(status_cfg),
};

static const struct cloud_subcmd status_cmd = {
    "status", "--db FILE [--json] [--release ID] [--gateway ID] [--state STATE]",
    "Lists every node's latest reported state from the fleet inventory.", status_opts,
    sizeof(status_opts) / sizeof(status_opts[0])};

struct printer {
    bool json;
    size_t rows;
    struct ferry_diag *d;
};

static enum ferry_err print_json_row(struct printer *p, const struct ferry_inventory_row *row)
{
    char *text = NULL;
    size_t len;
    enum ferry_err err = ferry_inventory_row_json(row, &text, &len, p->d);
    if (err != FERRY_OK)
        return err;
    printf("%s%s", p->rows ? ",\n" : "\n", text);
    free(text);
    return FERRY_OK;
}

/* The last column is separated only when present: no trailing blanks. */
#define TABLE_FMT "%-20s %-14s %-28s %-10s %-14s %23s %6s  %-20s%s%s\n"

static void print_table_row(const struct ferry_inventory_row *row)
{
    const struct ferry_status *st = &row->st;
    char progress[48] = "-", updated[32] = "?", error[FERRY_STATUS_MESSAGE_MAX + 64] = "";
    if (st->total > 0)
        snprintf(progress, sizeof(progress), "%llu/%llu", (unsigned long long)st->bytes,
                 (unsigned long long)st->total);
    time_t t = (time_t)row->updated_at;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(updated, sizeof(updated), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (st->error != FERRY_OK || st->message[0])
        snprintf(error, sizeof(error), "%s%s%s", st->error ? ferry_err_name(st->error) : "",
                 st->error && st->message[0] ? ": " : "", st->message);
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)st->seq);
    printf(TABLE_FMT, st->node, st->gateway[0] ? st->gateway : "-",
           st->release_id[0] ? st->release_id : "-", st->version[0] ? st->version : "-",
           ferry_state_name(st->state), progress, seq, updated, error[0] ? " " : "", error);
}

static enum ferry_err print_row(void *arg, const struct ferry_inventory_row *row)
{
    struct printer *p = arg;
    enum ferry_err err = FERRY_OK;
    if (p->json)
        err = print_json_row(p, row);
    else
        print_table_row(row);
    if (err == FERRY_OK)
        p->rows++;
    return err;
}

/* A filter value that cannot match anything is a typo: say so. */
static int check_filters(const struct status_cfg *cfg, enum ferry_state *state)
{
    struct ferry_diag d = {{0}};
    enum ferry_err err = FERRY_E_INVALID_ARG;
    if (cfg->release && !ferry_id_valid(cfg->release))
        ferry_fail(&d, err, "--release '%.80s' is not a valid release id", cfg->release);
    else if (cfg->gateway && !ferry_id_valid(cfg->gateway))
        ferry_fail(&d, err, "--gateway '%.80s' is not a valid gateway id", cfg->gateway);
    else if (cfg->state && ferry_state_from_name(cfg->state, state) != FERRY_OK)
        ferry_fail(&d, err,
                   "--state '%.40s' is not a state (idle, available, deferred, downloading, "
                   "verifying, installing, pending-reboot, success, failed, rolled-back, rejected)",
                   cfg->state);
    else
        return -1;
    return cloud_subcmd_report(&status_cmd, &d, err, CLOUD_EXIT_USAGE);
}

static int status_run(const struct status_cfg *cfg, const enum ferry_state *state)
{
    struct ferry_diag d = {{0}};
    struct cloud_inventory *inv = NULL;
    struct cloud_inventory_filter filter = {cfg->release, cfg->gateway, state};
    struct printer p = {cfg->json, 0, &d};
    enum ferry_err err = cloud_inventory_open(cfg->db, false, &inv, &d);
    if (err != FERRY_OK)
        return cloud_subcmd_report(&status_cmd, &d, err, CLOUD_EXIT_FAILED);
    if (cfg->json)
        printf("[");
    else
        printf(TABLE_FMT, "NODE", "GATEWAY", "RELEASE", "VERSION", "STATE", "BYTES", "SEQ",
               "UPDATED", " ", "ERROR");
    err = cloud_inventory_each_node(inv, &filter, print_row, &p, &d);
    cloud_inventory_close(inv);
    if (cfg->json)
        printf("%s]\n", p.rows ? "\n" : "");
    if (err == FERRY_OK && (fflush(stdout) != 0 || ferror(stdout)))
        err = ferry_fail(&d, FERRY_E_IO, "writing to stdout failed");
    if (err != FERRY_OK)
        return cloud_subcmd_report(&status_cmd, &d, err, CLOUD_EXIT_FAILED);
    LOG_INFO("%zu node(s) listed", p.rows);
    return 0;
}

int cloud_cmd_status(int argc, char **argv)
{
    struct status_cfg cfg = {.log_level = FERRY_LOG_WARN};
    enum ferry_state state;
    int status = cloud_subcmd_parse(&status_cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0)
        status = check_filters(&cfg, &state);
    if (status < 0)
        status = status_run(&cfg, cfg.state ? &state : NULL);
    ferry_opts_free(status_opts, status_cmd.nopts, &cfg);
    return status;
}
