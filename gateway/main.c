/* ferry-gateway: parse settings, then hand over to the gateway library. */
#include "gw_config.h"
#include "gw_daemon.h"

#include "ferry_log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    bool restart = false;
    err = gw_daemon_run(&cfg, &restart, &d);
    if (err != FERRY_OK)
        ferry_log_err("%s", ferry_diag_str(&d, err));
    gw_config_free(&cfg);
    if (restart) {
        /* Its own update without a reboot command (the sim bootloader): the
         * same program starts again, same pid, same arguments; the image it
         * "runs" is the slot the boot step picks. */
        fflush(NULL);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "ferry-gateway: restarting itself failed: %s\n", strerror(errno));
        return 1;
    }
    return err == FERRY_OK ? 0 : 1;
}
