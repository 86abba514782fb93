/* ferry-gateway: parse settings, then hand over to the gateway library. */
#include "gw_config.h"

#include "ferry_log.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    struct gw_config cfg = {0};
    struct ferry_diag d = {{0}};
    bool help = false;
    enum ferry_err err = gw_config_parse(&cfg, argc, argv, &help, &d);
    if (help) {
        gw_config_usage(stdout);
        gw_config_free(&cfg);
        return 0;
    }
    if (err != FERRY_OK) {
        fprintf(stderr, "ferry-gateway: %s\n", ferry_diag_str(&d, err));
        gw_config_free(&cfg);
        return 2;
    }
    ferry_log_init("ferry-gateway", cfg.log_level);
    LOG_ERR("the relay is not built yet (issue: cloud to gateway over MQTT)");
    gw_config_free(&cfg);
    return 1;
}
