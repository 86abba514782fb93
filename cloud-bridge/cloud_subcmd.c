#include "cloud_subcmd.h"

#include "ferry_cfgfile.h"

#include <stdio.h>
#include <string.h>

int cloud_subcmd_report(const struct cloud_subcmd *c, const struct ferry_diag *d,
                        enum ferry_err err, int status)
{
    if (status == CLOUD_EXIT_USAGE)
        fprintf(stderr, "ferry-cloud %s: %s (see 'ferry-cloud %s --help')\n", c->name,
                ferry_diag_str(d, err), c->name);
    else
        fprintf(stderr, "ferry-cloud %s: %s\n", c->name, ferry_diag_str(d, err));
    return status;
}

int cloud_subcmd_parse(const struct cloud_subcmd *c, void *cfg, const enum ferry_log_level *level,
                       int argc, char **argv)
{
    struct ferry_diag d = {{0}};
    bool help = false;
    enum ferry_err err =
        ferry_opts_parse(c->opts, c->nopts, cfg, argc, argv, 1, ferry_cfgfile_load, &help, &d);
    if (help) {
        printf("Usage: ferry-cloud %s %s\n\n%s\n\nOptions:\n", c->name, c->synopsis, c->about);
        ferry_opts_usage(stdout, c->opts, c->nopts);
        return 0;
    }
    if (err != FERRY_OK)
        return cloud_subcmd_report(c, &d, err, CLOUD_EXIT_USAGE);
    ferry_log_init("ferry-cloud", *level);
    return -1;
}
