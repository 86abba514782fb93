#include "edge_config.h"

#include "ferry_cfgfile.h"

#include <stddef.h>

#define OPT(n, t, f, mv, h, fl)                                                                    \
    {                                                                                              \
        n, t, offsetof(struct edge_config, f), mv, h, fl                                           \
    }

static const struct ferry_opt edge_opts[] = {
    OPT("gateway", FERRY_OPT_STR, gateway, "URI", "the gateway, coap://HOST:PORT",
        FERRY_OPT_REQUIRED),
    OPT("id", FERRY_OPT_STR, id, "NODE", "this node's id", FERRY_OPT_REQUIRED),
    OPT("hw-model", FERRY_OPT_STR, hw_model, "MODEL", "this node's hardware model",
        FERRY_OPT_REQUIRED),
    OPT("hw-revision", FERRY_OPT_STR, hw_revision, "REV", "this node's hardware revision", 0),
    OPT("state-dir", FERRY_OPT_STR, state_dir, "DIR", "slots, boot state and status journal",
        FERRY_OPT_REQUIRED),
    OPT("trust", FERRY_OPT_STR, trust, "KEYRING", "PEM public key or JSON keyring of release keys",
        FERRY_OPT_REQUIRED),
    OPT("health-cmd", FERRY_OPT_STR, health_cmd, "CMD", "health check after a trial boot; 0 = ok",
        0),
    OPT("busy-cmd", FERRY_OPT_STR, busy_cmd, "CMD", "asked before installing; exit 0 = busy", 0),
    OPT("max-image-mb", FERRY_OPT_U64, max_image_mb, "MB",
        "largest image the slot takes (default 64)", 0),
    OPT("poll-interval", FERRY_OPT_DURATION, poll_interval, "DURATION",
        "manifest poll period, jittered (default 60s)", 0),
    OPT("log-level", FERRY_OPT_LOGLEVEL, log_level, "LEVEL", "error, warn, info or debug", 0),
};
#define N_OPTS (sizeof(edge_opts) / sizeof(edge_opts[0]))

enum ferry_err edge_config_parse(struct edge_config *cfg, int argc, char **argv, bool *help,
                                 struct ferry_diag *d)
{
    cfg->max_image_mb = 64;
    cfg->poll_interval = 60;
    cfg->log_level = FERRY_LOG_INFO;
    return ferry_opts_parse(edge_opts, N_OPTS, cfg, argc, argv, 1, ferry_cfgfile_load, help, d);
}

void edge_config_free(struct edge_config *cfg)
{
    ferry_opts_free(edge_opts, N_OPTS, cfg);
}

void edge_config_usage(FILE *out)
{
    fprintf(out, "Usage: ferry-edge --gateway coap://HOST:PORT --id NODE --hw-model M\n"
                 "                  --state-dir DIR --trust KEYRING [options]\n\n"
                 "Verifies, installs and confirms releases into A/B slots.\n\n"
                 "Options:\n");
    ferry_opts_usage(out, edge_opts, N_OPTS);
}
