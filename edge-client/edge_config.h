/* ferry-edge's settings: one typed struct, filled from flags and an optional
 * JSON config file through the option table in edge_config.c. */
#ifndef FERRY_EDGE_CONFIG_H
#define FERRY_EDGE_CONFIG_H

#include "ferry_err.h"
#include "ferry_log.h"
#include "ferry_nodeinfo.h"
#include "ferry_opts.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct edge_config {
    char *gateway; /* coap://HOST:PORT */
    char *id;
    char *product; /* FERRY_DEFAULT_PRODUCT unless set here or in node.cfg */
    char *hw_model;
    char *hw_revision;
    char *state_dir;
    char *trust;
    char *health_cmd; /* exit 0 = healthy */
    char *busy_cmd;   /* exit 0 = busy */
    char *psk_file;   /* coaps:// only: the node's pre-shared key, hex */
    char *slot_a;     /* NULL: STATE/slot-a.img (with slot_b) */
    char *slot_b;
    char *bootloader; /* sim, uboot, grub, custom (checked) */
    char *uboot_env_config;
    char *grub_env;
    char *bootloader_cmd;
    char *reboot_cmd; /* NULL: a simulated, in-process reboot (sim only) */
    char *mountinfo;  /* for tests and benches */
    char *kernel_cmdline;
    char *module_dir;       /* update modules; NULL: none */
    int64_t module_timeout; /* seconds per module verb */
    uint64_t max_image_mb;
    int64_t poll_interval;   /* seconds */
    int64_t busy_retry;      /* seconds */
    int64_t cmd_timeout;     /* seconds, for --busy-cmd and --health-cmd */
    int64_t request_timeout; /* seconds per CoAP request */
    uint64_t ack_timeout_ms; /* CoAP ACK_TIMEOUT */
    uint64_t block_size;     /* Block2 size in bytes */
    uint64_t max_window;     /* block requests in flight at most */
    uint64_t trial_attempts;
    uint64_t max_seq_step;         /* how far one release may move the installed seq */
    int64_t max_manifest_lifetime; /* seconds a manifest may be valid, at most */
    enum ferry_log_level log_level;
    /* STATE/node.cfg was damaged: what was wrong ("" when it was fine). The
     * flags stood in for it and it was left as it is, for a restore. */
    char nodecfg_damage[FERRY_DIAG_MAX];
    struct ferry_strlist tag; /* --tag k=v as given; k= removes k */
    /* After parsing: node.cfg's tags with --tag applied, sorted by key. */
    struct ferry_tag tags[FERRY_NODE_MAX_TAGS];
    size_t ntags;
};

/* Parses argv into cfg (zero it first) and checks the values (ids are
 * identifiers, the gateway a coap:// or coaps:// URI, sizes and durations
 * in range), naming the flag at fault. *help is set for --help. Strings
 * are owned by cfg: release them with edge_config_free(). */
enum ferry_err edge_config_parse(struct edge_config *cfg, int argc, char **argv, bool *help,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_config_free(struct edge_config *cfg);
void edge_config_usage(FILE *out);

#endif
