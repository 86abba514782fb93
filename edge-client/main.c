/* ferry-edge: parse settings, then hand over to the edge library. */
#include "edge_config.h"

#include "ferry_log.h"

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
    LOG_ERR("the update client is not built yet (issue: edge client)");
    edge_config_free(&cfg);
    return 1;
}
