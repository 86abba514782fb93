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

enum ferry_err cloud_mqtt_cfg_check(const struct cloud_mqtt_cfg *m, struct ferry_diag *d)
{
    bool tls = strncmp(m->broker, "mqtts://", 8) == 0;
    if (!tls && strncmp(m->broker, "mqtt://", 7) != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--broker must start with mqtt:// or mqtts://, got '%.200s'", m->broker);
    if (tls && !m->ca_file)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--broker %.200s is mqtts:// and needs --ca-file to check the broker",
                          m->broker);
    if (!tls && (m->ca_file || m->cert_file || m->key_file))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--ca-file, --cert-file and --key-file need an mqtts:// --broker");
    if (!m->cert_file != !m->key_file)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--cert-file and --key-file go together");
    return FERRY_OK;
}

void cloud_mqtt_cfg_apply(const struct cloud_mqtt_cfg *m, const char *client_id,
                          struct ferry_mqtt_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->url = m->broker;
    o->client_id = client_id;
    o->ca_file = m->ca_file;
    o->cert_file = m->cert_file;
    o->key_file = m->key_file;
    o->clean_start = true;
}
