/* ferry-edge's settings: one typed struct, filled from flags and an optional
 * JSON config file through the option table in edge_config.c. */
#ifndef FERRY_EDGE_CONFIG_H
#define FERRY_EDGE_CONFIG_H

#include "ferry_err.h"
#include "ferry_log.h"
#include "ferry_opts.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct edge_config {
    char *gateway; /* coap://HOST:PORT */
    char *id;
    char *hw_model;
    char *hw_revision;
    char *state_dir;
    char *trust;
    char *health_cmd; /* exit 0 = healthy */
    char *busy_cmd;   /* exit 0 = busy */
    uint64_t max_image_mb;
    int64_t poll_interval;
    enum ferry_log_level log_level;
};

/* Parses argv into cfg (zero it first). *help is set for --help. Strings are
 * owned by cfg: release them with edge_config_free(). */
enum ferry_err edge_config_parse(struct edge_config *cfg, int argc, char **argv, bool *help,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_config_free(struct edge_config *cfg);
void edge_config_usage(FILE *out);

#endif
