/* ferry-edge: parse settings, then run the edge daemon until SIGTERM. */
#include "edge_config.h"
#include "edge_daemon.h"

#include "ferry_log.h"
#include "ferry_loop.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    struct edge_config cfg = {0};
    struct ferry_diag d = {{0}};
    bool help = false;
    enum ferry_err err = edge_config_parse(&cfg, argc, argv, &help, &d);
    if (help) {
        edge_config_usage(stdout);
        edge_config_free(&cfg);
        return 0;
    }
    if (err != FERRY_OK) {
        fprintf(stderr, "ferry-edge: %s\n", ferry_diag_str(&d, err));
        edge_config_free(&cfg);
        return 2;
    }
    ferry_log_init("ferry-edge", cfg.log_level);
    if (cfg.nodecfg_damage[0])
        ferry_log_warn(
            "%s/node.cfg is damaged (%s): running on the flags given, the file left as it "
            "is for a restore",
            cfg.state_dir, cfg.nodecfg_damage);
    ferry_log_info("node %s, model %s%s%s, gateway %s, state in %s", cfg.id, cfg.hw_model,
                   cfg.hw_revision ? " revision " : "", cfg.hw_revision ? cfg.hw_revision : "",
                   cfg.gateway, cfg.state_dir);
    struct ferry_loop *loop = NULL;
    struct edge_daemon *dm = NULL;
    err = ferry_loop_new(&loop, &d);
    if (err == FERRY_OK)
        err = edge_daemon_new(loop, &cfg, &dm, &d);
    edge_config_free(&cfg);
    if (err != FERRY_OK) {
        ferry_log_err("%s", ferry_diag_str(&d, err));
        ferry_loop_free(loop);
        return 1;
    }
    ferry_log_info("running");
    int sig = ferry_loop_run(loop);
    ferry_log_info("stopping (signal %d)", sig);
    edge_daemon_free(dm);
    ferry_loop_free(loop);
    return 0;
}
