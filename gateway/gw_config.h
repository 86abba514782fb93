/* ferry-gateway's settings: one typed struct, filled from flags and an
 * optional JSON config file through the option table in gw_config.c. */
#ifndef FERRY_GW_CONFIG_H
#define FERRY_GW_CONFIG_H

#include "ferry_err.h"
#include "ferry_keeper.h"
#include "ferry_log.h"
#include "ferry_opts.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* 16 TiB: far above any cache, far below where MiB -> bytes overflows. */
#define GW_CONFIG_CACHE_QUOTA_MB_MAX (UINT64_C(1) << 24)

struct gw_config {
    struct ferry_keeper_conf mqtt; /* brokers, TLS files, credentials */
    /* or, instead of brokers: */
    char *upstream; /* coap://host:port or coaps://host:port: a parent gateway */
    char *upstream_psk_file;
    int64_t upstream_poll;                  /* seconds between asks of the parent */
    struct ferry_strlist upstream_products; /* followed from the start */
    char *fleet;
    char *id;
    char *cache_dir;
    char *state_dir;
    char *trust; /* PEM public key or JSON keyring */
    uint64_t coap_port;
    char *coap_addr;
    uint64_t cache_quota_mb;
    uint64_t max_downloads;      /* concurrent CoAP artifact transfers */
    char *psk_file;              /* per-node DTLS keys; NULL: plain CoAP */
    uint64_t busy_max_age;       /* seconds a node refused by the cap waits (jittered) */
    uint64_t chunk_size;         /* bytes per MQTT stream chunk */
    uint64_t outbox_max_records; /* pending status records kept while the uplink is down */
    uint64_t outbox_max_mb;
    uint64_t link_rate; /* bytes/s to all nodes together; 0: no budget */
    uint64_t node_rate; /* bytes/s to one node at most; 0: its fair share */
    uint64_t max_nodes; /* nodes whose status is relayed at once; each gets an equal outbox share */
    uint64_t max_seq_step;         /* how far one release may move a product's seq */
    int64_t max_manifest_lifetime; /* seconds a manifest may be valid, at most */
    enum ferry_log_level log_level;
    /* Self-update (gw_self.h): the gateway's own product line and device. */
    char *self_product;
    char *self_hw_model;
    char *self_hw_revision;
    char *self_bootloader; /* sim (default), uboot, grub, custom */
    char *self_slot_a, *self_slot_b;
    uint64_t self_max_image_mb;
    char *self_uboot_env_config;
    char *self_grub_env;
    char *self_bootloader_cmd;
    char *self_health_cmd;
    int64_t self_health_timeout;
    char *self_reboot_cmd;
};

/* Parses argv into cfg (zero it first). *help is set for --help. Strings are
 * owned by cfg: release them with gw_config_free(). Defaults for unset
 * optional settings are applied here, and every number is checked against
 * the range its later conversion can hold (FERRY_E_INVALID_ARG naming the
 * flag). */
enum ferry_err gw_config_parse(struct gw_config *cfg, int argc, char **argv, bool *help,
                               struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_config_free(struct gw_config *cfg);
void gw_config_usage(FILE *out);

#endif
