#include "cloud_bind.h"

#include "cloud_inventory.h"
#include "cloud_subcmd.h"
#include "ferry_names.h"

#include <stdio.h>
#include <string.h>

#define REASON_MAX 160

struct bind_cfg {
    char *db;
    char *node;
    char *gateway;
    char *reason;
    enum ferry_log_level log_level;
};

static const struct ferry_opt bind_opts[] = {
    CLOUD_OPT(bind_cfg, "db", FERRY_OPT_STR, db, "DB", "inventory written by 'ferry-cloud serve'",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(bind_cfg, "node", FERRY_OPT_STR, node, "ID", "the node to bind", FERRY_OPT_REQUIRED),
    CLOUD_OPT(bind_cfg, "gateway", FERRY_OPT_STR, gateway, "ID",
              "the gateway that serves it from now on", FERRY_OPT_REQUIRED),
    CLOUD_OPT(bind_cfg, "reason", FERRY_OPT_STR, reason, "TEXT",
              "why, for the event log (at most 160 bytes)", 0),
    CLOUD_OPT_LOG_LEVEL(bind_cfg),
};

static const struct cloud_subcmd bind_cmd = {
    "bind", "--db DB --node ID --gateway ID [--reason TEXT]",
    "Binds a node to the gateway that serves it, or moves it there from another.\n"
    "A node is bound by its first record to the gateway that relayed it; records\n"
    "of it through any other gateway are refused and kept aside (status --refused).\n"
    "This is the only way a node changes gateway: records through the new one are\n"
    "accepted from now on, those through the old one refused. Each binding and move\n"
    "goes to the inventory's event log (status --events).",
    bind_opts, sizeof(bind_opts) / sizeof(bind_opts[0])};

static int bind_run(const struct bind_cfg *cfg)
{
    struct ferry_diag d = {{0}};
    if (!ferry_id_valid(cfg->node) || !ferry_id_valid(cfg->gateway)) {
        ferry_fail(&d, FERRY_E_INVALID_ARG, "--%s '%.80s' is not a valid id",
                   ferry_id_valid(cfg->node) ? "gateway" : "node",
                   ferry_id_valid(cfg->node) ? cfg->gateway : cfg->node);
        return cloud_subcmd_report(&bind_cmd, &d, FERRY_E_INVALID_ARG, CLOUD_EXIT_USAGE);
    }
    if (cfg->reason && strlen(cfg->reason) > REASON_MAX) {
        ferry_fail(&d, FERRY_E_INVALID_ARG, "--reason is longer than %d bytes", REASON_MAX);
        return cloud_subcmd_report(&bind_cmd, &d, FERRY_E_INVALID_ARG, CLOUD_EXIT_USAGE);
    }
    struct cloud_inventory *inv = NULL;
    char was[FERRY_ID_MAX + 1] = "";
    enum ferry_err err = cloud_inventory_open(cfg->db, false, &inv, &d);
    if (err == FERRY_OK)
        err = cloud_inventory_bind(inv, cfg->node, cfg->gateway, cfg->reason, was, &d);
    cloud_inventory_close(inv);
    if (err != FERRY_OK)
        return cloud_subcmd_report(&bind_cmd, &d, err, CLOUD_EXIT_FAILED);
    if (!was[0])
        printf("node %s: bound to gateway %s\n", cfg->node, cfg->gateway);
    else if (strcmp(was, cfg->gateway) == 0)
        printf("node %s: bound to gateway %s already (logged again)\n", cfg->node, cfg->gateway);
    else
        printf("node %s: moved from gateway %s to %s\n", cfg->node, was, cfg->gateway);
    return 0;
}

int cloud_cmd_bind(int argc, char **argv)
{
    struct bind_cfg cfg = {.log_level = FERRY_LOG_WARN};
    int status = cloud_subcmd_parse(&bind_cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0)
        status = bind_run(&cfg);
    ferry_opts_free(bind_opts, bind_cmd.nopts, &cfg);
    return status;
}
