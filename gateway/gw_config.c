#include "gw_config.h"

#include "ferry_cfgfile.h"
#include "gw_budget.h"
#include "gw_nodes.h"
#include "ferry_trust.h"
#include "gw_outbox.h"
#include "gw_pacer.h"
#include "gw_relay.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define OPT(n, t, f, mv, h, fl)                                                                    \
    {                                                                                              \
        n, t, offsetof(struct gw_config, f), mv, h, fl                                             \
    }

static const struct ferry_opt gw_opts[] = {
    FERRY_KEEPER_OPTS_FLAGS(gw_config, mqtt, 0),
    OPT("upstream", FERRY_OPT_STR, upstream, "URL",
        "a parent gateway instead of the broker (a cascade), coap://HOST:PORT or "
        "coaps://HOST:PORT; this gateway is a client of it named by --id",
        0),
    OPT("upstream-psk-file", FERRY_OPT_STR, upstream_psk_file, "FILE",
        "for a coaps:// --upstream: this gateway's pre-shared key in hex (identity = --id)", 0),
    OPT("upstream-poll", FERRY_OPT_DURATION, upstream_poll, "DURATION",
        "how often the parent is asked again for each product line's manifest and metadata "
        "(Observe re-registration; default 60s)",
        0),
    OPT("upstream-product", FERRY_OPT_STRLIST, upstream_products, "PRODUCT",
        "a product line to follow from the parent from the start (repeatable); the lines its "
        "nodes ask for and the releases it holds are followed anyway",
        0),
    OPT("fleet", FERRY_OPT_STR, fleet, "FLEET", "fleet whose releases this gateway serves",
        FERRY_OPT_REQUIRED),
    OPT("id", FERRY_OPT_STR, id, "GW", "this gateway's id", FERRY_OPT_REQUIRED),
    OPT("cache-dir", FERRY_OPT_STR, cache_dir, "DIR", "content-addressed artifact cache",
        FERRY_OPT_REQUIRED),
    OPT("state-dir", FERRY_OPT_STR, state_dir, "DIR", "durable state (outbox, releases)",
        FERRY_OPT_REQUIRED),
    OPT("trust", FERRY_OPT_STR, trust, "TRUST",
        "initial trust: a root document, or a PEM key or JSON keyring of release keys",
        FERRY_OPT_REQUIRED),
    OPT("coap-port", FERRY_OPT_U64, coap_port, "PORT", "UDP port for nodes (default 5683)", 0),
    OPT("coap-addr", FERRY_OPT_STR, coap_addr, "ADDR",
        "numeric address to serve CoAP on (default ::)", 0),
    OPT("cache-quota-mb", FERRY_OPT_U64, cache_quota_mb, "MB",
        "cache quota in MiB, 1..16777216 (default 1024)", 0),
    OPT("max-downloads", FERRY_OPT_U64, max_downloads, "N",
        "nodes served at once, 1..1024; others get 5.03 (default 8)", 0),
    OPT("busy-max-age", FERRY_OPT_U64, busy_max_age, "SECONDS",
        "Max-Age of the 5.03 a node gets beyond --max-downloads, jittered (default 10)", 0),
    OPT("psk-file", FERRY_OPT_STR, psk_file, "FILE",
        "serve nodes over DTLS with these per-node keys ('<node> <hex key>' lines)", 0),
    OPT("chunk-size", FERRY_OPT_U64, chunk_size, "BYTES",
        "MQTT stream chunk, 16384..65536 (default 65536)", 0),
    OPT("outbox-max-records", FERRY_OPT_U64, outbox_max_records, "N",
        "status records held while the uplink is down, shared evenly by --max-nodes "
        "(default 100000)",
        0),
    OPT("outbox-max-mb", FERRY_OPT_U64, outbox_max_mb, "MB",
        "disk the status outbox may use, 1..64 (default 64)", 0),
    OPT("link-rate", FERRY_OPT_U64, link_rate, "BYTES/S",
        "bytes per second the gateway may send to its nodes in all, shared fairly; "
        "0 = no limit (default 0)",
        0),
    OPT("node-rate", FERRY_OPT_U64, node_rate, "BYTES/S",
        "at most this many bytes per second to any one node (default: its fair share of "
        "--link-rate)",
        0),
    OPT("max-nodes", FERRY_OPT_U64, max_nodes, "N",
        "nodes whose status is relayed at once, each with an equal share of the outbox "
        "(default 1000)",
        0),
    OPT("max-seq-step", FERRY_OPT_U64, max_seq_step, "N",
        "refuse a release whose seq is more than N above the product's held one, unless the "
        "root's policy says otherwise (default 1000000)",
        0),
    OPT("max-manifest-lifetime", FERRY_OPT_DURATION, max_manifest_lifetime, "DURATION",
        "refuse a manifest valid for longer, unless the root's policy says otherwise "
        "(default 30d)",
        0),
    OPT("log-level", FERRY_OPT_LOGLEVEL, log_level, "LEVEL", "error, warn, info or debug", 0),
    OPT("self-product", FERRY_OPT_STR, self_product, "PRODUCT",
        "update this gateway itself from that product line (after its nodes: README, "
        "\"Gateway self-update\"); needs --self-hw-model",
        0),
    OPT("self-hw-model", FERRY_OPT_STR, self_hw_model, "MODEL",
        "this gateway's hardware model, as its releases list it", 0),
    OPT("self-hw-revision", FERRY_OPT_STR, self_hw_revision, "REV",
        "this gateway's hardware revision", 0),
    OPT("self-bootloader", FERRY_OPT_STR, self_bootloader, "KIND",
        "sim (default: slots are files in STATE/self, the gateway restarts itself), uboot, grub "
        "or custom, as ferry-edge's --bootloader",
        0),
    OPT("self-slot-a", FERRY_OPT_STR, self_slot_a, "PATH",
        "slot A of this gateway's own image (a block device or file; with --self-slot-b)", 0),
    OPT("self-slot-b", FERRY_OPT_STR, self_slot_b, "PATH", "slot B", 0),
    OPT("self-max-image-mb", FERRY_OPT_U64, self_max_image_mb, "MB",
        "capacity of a file slot (default 256)", 0),
    OPT("self-uboot-env-config", FERRY_OPT_STR, self_uboot_env_config, "FILE",
        "uboot: the fw_env.config naming the environment (default /etc/fw_env.config)", 0),
    OPT("self-grub-env", FERRY_OPT_STR, self_grub_env, "FILE",
        "grub: the grubenv file (default /boot/grub/grubenv)", 0),
    OPT("self-bootloader-cmd", FERRY_OPT_STR, self_bootloader_cmd, "PROGRAM",
        "custom: the bootloader program (deploy/custom)", 0),
    OPT("self-health-cmd", FERRY_OPT_STR, self_health_cmd, "CMD",
        "after booting a new version of itself, once its upstream is up: a shell command that "
        "exits 0 when healthy (FERRY_VERSION, FERRY_SLOT, FERRY_SLOT_PATH set); without it the "
        "upstream coming up is the check",
        0),
    OPT("self-health-timeout", FERRY_OPT_DURATION, self_health_timeout, "DURATION",
        "how long a new version of itself has to bring its upstream up and pass its check "
        "(default 5m)",
        0),
    OPT("self-reboot-cmd", FERRY_OPT_STR, self_reboot_cmd, "CMD",
        "how to boot the other slot (e.g. 'systemctl reboot'); without it the gateway restarts "
        "its own process (the sim bootloader only)",
        0),
};
#define N_OPTS (sizeof(gw_opts) / sizeof(gw_opts[0]))

enum ferry_err gw_config_parse(struct gw_config *cfg, int argc, char **argv, bool *help,
                               struct ferry_diag *d)
{
    cfg->coap_port = 5683;
    cfg->cache_quota_mb = 1024;
    cfg->max_downloads = 8;
    cfg->busy_max_age = 10;
    cfg->chunk_size = 65536;
    cfg->outbox_max_records = 100000;
    cfg->outbox_max_mb = 64;
    cfg->max_nodes = GW_NODES_DEFAULT_MAX;
    cfg->max_seq_step = FERRY_TRUST_DEFAULT_MAX_SEQ_STEP;
    cfg->max_manifest_lifetime = FERRY_TRUST_DEFAULT_MAX_LIFETIME;
    cfg->log_level = FERRY_LOG_INFO;
    enum ferry_err err =
        ferry_opts_parse(gw_opts, N_OPTS, cfg, argc, argv, 1, ferry_cfgfile_load, help, d);
    if (err != FERRY_OK || *help)
        return err;
    if (!cfg->mqtt.brokers.n == !cfg->upstream)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "give either --broker (the cloud) or --upstream (a parent gateway)");
    if (cfg->upstream && (cfg->mqtt.ca_file || cfg->mqtt.cert_file || cfg->mqtt.key_file ||
                          cfg->mqtt.username || cfg->mqtt.password_file))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--ca-file, --cert-file, --key-file and the --mqtt-* settings are for "
                          "--broker; a parent over coaps:// takes --upstream-psk-file");
    if (cfg->mqtt.brokers.n) {
        err = ferry_keeper_conf_check(&cfg->mqtt, d);
        if (err != FERRY_OK)
            return err;
    }
    if (cfg->upstream_psk_file && !cfg->upstream)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--upstream-psk-file: needs --upstream");
    if (!cfg->upstream_poll)
        cfg->upstream_poll = 60;
    if (cfg->upstream_poll < 1 || cfg->upstream_poll > 3600)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--upstream-poll: expected 1s..1h, got %lld s",
                          (long long)cfg->upstream_poll);
    for (size_t i = 0; i < cfg->upstream_products.n; i++)
        if (!ferry_id_valid(cfg->upstream_products.v[i]))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "--upstream-product: '%.64s' is not a product id",
                              cfg->upstream_products.v[i]);
    if (cfg->self_product && (!ferry_id_valid(cfg->self_product) || !cfg->self_hw_model))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--self-product: needs a product id and --self-hw-model");
    if (!cfg->self_product &&
        (cfg->self_hw_model || cfg->self_hw_revision || cfg->self_bootloader || cfg->self_slot_a ||
         cfg->self_slot_b || cfg->self_uboot_env_config || cfg->self_grub_env ||
         cfg->self_bootloader_cmd || cfg->self_health_cmd || cfg->self_reboot_cmd))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "the --self-* settings need --self-product");
    if (!cfg->self_max_image_mb)
        cfg->self_max_image_mb = 256;
    if (cfg->self_max_image_mb > GW_CONFIG_CACHE_QUOTA_MB_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--self-max-image-mb: at most %llu",
                          (unsigned long long)GW_CONFIG_CACHE_QUOTA_MB_MAX);
    if (!cfg->self_health_timeout)
        cfg->self_health_timeout = 300;
    if (cfg->self_health_timeout < 1)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--self-health-timeout: at least 1s");
    if (cfg->coap_port == 0 || cfg->coap_port > 65535)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--coap-port: expected 1..65535, got %llu",
                          (unsigned long long)cfg->coap_port);
    if (cfg->chunk_size < 16384 || cfg->chunk_size > 65536)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--chunk-size: expected 16384..65536, got %llu",
                          (unsigned long long)cfg->chunk_size);
    if (cfg->outbox_max_records == 0 || cfg->outbox_max_records > GW_OUTBOX_RECORDS_LIMIT)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--outbox-max-records: expected 1..%d, got %llu",
                          GW_OUTBOX_RECORDS_LIMIT, (unsigned long long)cfg->outbox_max_records);
    if (cfg->outbox_max_mb == 0 || cfg->outbox_max_mb > (GW_OUTBOX_BYTES_LIMIT >> 20))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--outbox-max-mb: expected 1..%llu, got %llu",
                          (unsigned long long)(GW_OUTBOX_BYTES_LIMIT >> 20),
                          (unsigned long long)cfg->outbox_max_mb);
    if (cfg->max_nodes == 0 || cfg->max_nodes > GW_NODES_LIMIT)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-nodes: expected 1..%d, got %llu",
                          GW_NODES_LIMIT, (unsigned long long)cfg->max_nodes);
    if (!gw_relay_share_ok((size_t)cfg->max_nodes, (size_t)cfg->outbox_max_records,
                           cfg->outbox_max_mb << 20))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--max-nodes %llu leaves a node less than one record of the outbox "
                          "(%llu records, %llu MiB): lower it or raise --outbox-max-records and "
                          "--outbox-max-mb",
                          (unsigned long long)cfg->max_nodes,
                          (unsigned long long)cfg->outbox_max_records,
                          (unsigned long long)cfg->outbox_max_mb);
    if (cfg->busy_max_age == 0 || cfg->busy_max_age > 3600)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--busy-max-age: expected 1..3600, got %llu",
                          (unsigned long long)cfg->busy_max_age);
    if (cfg->link_rate &&
        (cfg->link_rate < GW_BUDGET_MIN_RATE || cfg->link_rate > GW_BUDGET_MAX_RATE))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--link-rate: expected 0 or %d..%llu, got %llu",
                          GW_BUDGET_MIN_RATE, (unsigned long long)GW_BUDGET_MAX_RATE,
                          (unsigned long long)cfg->link_rate);
    if (cfg->node_rate && !cfg->link_rate)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--node-rate: needs --link-rate");
    if (cfg->node_rate && (cfg->node_rate < GW_BUDGET_MIN_RATE || cfg->node_rate > cfg->link_rate))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--node-rate: expected %d..%llu (the --link-rate), got %llu",
                          GW_BUDGET_MIN_RATE, (unsigned long long)cfg->link_rate,
                          (unsigned long long)cfg->node_rate);
    /* Both are converted later (MiB to bytes, and to the CoAP server's
     * 32-bit count): a value past these bounds would wrap, not fail. */
    if (cfg->cache_quota_mb == 0 || cfg->cache_quota_mb > GW_CONFIG_CACHE_QUOTA_MB_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--cache-quota-mb: expected 1..%llu, got %llu",
                          (unsigned long long)GW_CONFIG_CACHE_QUOTA_MB_MAX,
                          (unsigned long long)cfg->cache_quota_mb);
    if (cfg->max_downloads == 0 || cfg->max_downloads > GW_PACER_MAX_TRANSFERS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-downloads: expected 1..%d, got %llu",
                          GW_PACER_MAX_TRANSFERS, (unsigned long long)cfg->max_downloads);
    if (cfg->max_seq_step < 1 || cfg->max_seq_step > (UINT64_C(1) << 53))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-seq-step: expected 1..2^53, got %llu",
                          (unsigned long long)cfg->max_seq_step);
    if (cfg->max_manifest_lifetime < 1)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-manifest-lifetime: at least 1s");
    return FERRY_OK;
}

void gw_config_free(struct gw_config *cfg)
{
    ferry_opts_free(gw_opts, N_OPTS, cfg);
}

void gw_config_usage(FILE *out)
{
    fprintf(out,
            "Usage: ferry-gateway (--broker URL | --upstream URL) --fleet F --id GW\n"
            "                     --cache-dir DIR --state-dir DIR --trust KEYRING [options]\n\n"
            "Relays signed releases from the cloud (MQTT), or from a parent gateway (CoAP),\n"
            "to edge nodes and child gateways (CoAP).\n\n"
            "Options:\n");
    ferry_opts_usage(out, gw_opts, N_OPTS);
}
