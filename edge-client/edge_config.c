#include "edge_config.h"

#include "edge_boot.h"
#include "edge_coap.h"
#include "edge_nodecfg.h"
#include "ferry_blockwin.h"
#include "inst_bootloader.h"
#include "ferry_cfgfile.h"
#include "ferry_fs.h"
#include "ferry_manifest.h"
#include "ferry_names.h"
#include "ferry_trust.h"

#include <stddef.h>
#include <string.h>

#define OPT(n, t, f, mv, h, fl)                                                                    \
    {                                                                                              \
        n, t, offsetof(struct edge_config, f), mv, h, fl                                           \
    }

static const struct ferry_opt edge_opts[] = {
    OPT("gateway", FERRY_OPT_STR, gateway, "URI",
        "the gateway, coap://HOST:PORT (required unless in node.cfg)", 0),
    OPT("id", FERRY_OPT_STR, id, "NODE", "this node's id (required unless in node.cfg)", 0),
    OPT("product", FERRY_OPT_STR, product, "NAME",
        "the product line whose releases this node follows (default " FERRY_DEFAULT_PRODUCT ")", 0),
    OPT("hw-model", FERRY_OPT_STR, hw_model, "MODEL",
        "this node's hardware model (required unless in node.cfg)", 0),
    OPT("hw-revision", FERRY_OPT_STR, hw_revision, "REV", "this node's hardware revision", 0),
    OPT("state-dir", FERRY_OPT_STR, state_dir, "DIR", "slots, boot state and status journal",
        FERRY_OPT_REQUIRED),
    OPT("trust", FERRY_OPT_STR, trust, "TRUST",
        "initial trust: a root document, or a PEM key or JSON keyring of release keys "
        "(required unless in node.cfg)",
        0),
    OPT("health-cmd", FERRY_OPT_STR, health_cmd, "CMD",
        "health check of a trial boot; exit 0 = healthy (none: always healthy)", 0),
    OPT("busy-cmd", FERRY_OPT_STR, busy_cmd, "CMD",
        "asked before installing, not before downloading; exit 0 = busy (none: never)", 0),
    OPT("busy-retry", FERRY_OPT_DURATION, busy_retry, "DURATION",
        "ask a busy device again after this, +-20% (default 5s)", 0),
    OPT("cmd-timeout", FERRY_OPT_DURATION, cmd_timeout, "DURATION",
        "longest run of --busy-cmd (then busy) or --health-cmd (then unhealthy); default 30s", 0),
    OPT("trial-attempts", FERRY_OPT_U64, trial_attempts, "N",
        "boots a new image may take before it is confirmed (1..16, default 1)", 0),
    OPT("max-image-mb", FERRY_OPT_U64, max_image_mb, "MB",
        "slot capacity and largest image accepted (default 64)", 0),
    OPT("block-size", FERRY_OPT_U64, block_size, "BYTES",
        "Block2 size asked for: 16..1024, a power of two (default 1024)", 0),
    OPT("poll-interval", FERRY_OPT_DURATION, poll_interval, "DURATION",
        "manifest poll period besides Observe, +-20% (default 60s)", 0),
    OPT("max-window", FERRY_OPT_U64, max_window, "N",
        "artifact block requests in flight at most, 1..32 (default 32); the window adapts below",
        0),
    OPT("request-timeout", FERRY_OPT_DURATION, request_timeout, "DURATION",
        "longest wait for an answer to a manifest or status request (default 60s)", 0),
    OPT("ack-timeout-ms", FERRY_OPT_U64, ack_timeout_ms, "MS",
        "CoAP ACK_TIMEOUT of manifest and status requests (blocks time themselves): first "
        "retransmission after this, doubling; 1000..60000 (default 2000)",
        0),
    OPT("psk-file", FERRY_OPT_STR, psk_file, "FILE",
        "for coaps://: the node's pre-shared key in hex (identity = --id)", 0),
    OPT("max-seq-step", FERRY_OPT_U64, max_seq_step, "N",
        "refuse a release whose seq is more than N above the installed one, unless the root's "
        "policy says otherwise (default 1000000)",
        0),
    OPT("max-manifest-lifetime", FERRY_OPT_DURATION, max_manifest_lifetime, "DURATION",
        "refuse a manifest valid for longer, unless the root's policy says otherwise "
        "(default 30d)",
        0),
    OPT("slot-a", FERRY_OPT_STR, slot_a, "PATH",
        "slot A: a block device (/dev/mmcblk0p2) or a file (default STATE/slot-a.img)", 0),
    OPT("slot-b", FERRY_OPT_STR, slot_b, "PATH", "slot B, as --slot-a; give both or neither", 0),
    OPT("bootloader", FERRY_OPT_STR, bootloader, "NAME",
        "who decides what boots: uboot, grub, custom, or sim (default: simulated in STATE)", 0),
    OPT("uboot-env-config", FERRY_OPT_STR, uboot_env_config, "FILE",
        "uboot: where the environment lives, as fw_printenv reads it (default /etc/fw_env.config)",
        0),
    OPT("grub-env", FERRY_OPT_STR, grub_env, "FILE",
        "grub: the environment block (default /boot/grub/grubenv)", 0),
    OPT("bootloader-cmd", FERRY_OPT_STR, bootloader_cmd, "PATH",
        "custom: the executable answering the bootloader verbs (README, board integration)", 0),
    OPT("reboot-cmd", FERRY_OPT_STR, reboot_cmd, "CMD",
        "reboots the device into a new image, e.g. 'systemctl reboot' (required unless sim)", 0),
    OPT("mountinfo", FERRY_OPT_STR, mountinfo, "FILE",
        "mount table read before a device is written (default /proc/self/mountinfo; for tests)", 0),
    OPT("kernel-cmdline", FERRY_OPT_STR, kernel_cmdline, "FILE",
        "where ferry.slot= says which slot booted (default /proc/cmdline; for tests)", 0),
    OPT("module-dir", FERRY_OPT_STR, module_dir, "DIR",
        "update modules: DIR/NAME installs releases of media type "
        "application/vnd.ferry.module.NAME (README)",
        0),
    OPT("module-timeout", FERRY_OPT_DURATION, module_timeout, "DURATION",
        "longest run of one update module verb (default 5m)", 0),
    OPT("tag", FERRY_OPT_STRLIST, tag, "KEY=VALUE",
        "a tag rollouts may select this node by (e.g. ring=canary), kept in node.cfg; "
        "repeat; KEY= removes one",
        0),
    OPT("log-level", FERRY_OPT_LOGLEVEL, log_level, "LEVEL", "error, warn, info or debug", 0),
};
#define N_OPTS (sizeof(edge_opts) / sizeof(edge_opts[0]))

/* Largest --max-image-mb: FERRY_ARTIFACT_MAX_SIZE in MiB. */
#define MAX_IMAGE_MB (FERRY_ARTIFACT_MAX_SIZE >> 20)

static bool in_range(int64_t v, int64_t lo, int64_t hi)
{
    return v >= lo && v <= hi;
}

static enum ferry_err check(const struct edge_config *cfg, struct ferry_diag *d);

/* Takes from node.cfg what no flag gave: a flag never loses to the file. */
static enum ferry_err take(char **field, const char *from_file)
{
    if (*field || !from_file[0])
        return FERRY_OK;
    *field = strdup(from_file);
    return *field ? FERRY_OK : FERRY_E_NOMEM;
}

/* --tag on top of node.cfg's tags: a flag sets or (with an empty value)
 * removes one tag, the others stay. */
static enum ferry_err apply_tags(struct edge_config *cfg, struct edge_nodecfg *nc,
                                 struct ferry_diag *d)
{
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    memcpy(ni.tags, nc->tags, sizeof(ni.tags));
    ni.ntags = nc->ntags;
    for (size_t i = 0; i < cfg->tag.n; i++) {
        struct ferry_tag t;
        enum ferry_err err = ferry_tag_parse(cfg->tag.v[i], &t, d);
        if (err == FERRY_OK)
            err = ferry_nodeinfo_set_tag(&ni, t.key, t.value, d);
        if (err != FERRY_OK) {
            ferry_diag_prefix(d, "--tag");
            return err;
        }
    }
    memcpy(nc->tags, ni.tags, sizeof(nc->tags));
    nc->ntags = ni.ntags;
    memcpy(cfg->tags, ni.tags, sizeof(cfg->tags));
    cfg->ntags = ni.ntags;
    return FERRY_OK;
}

/* The node's identity file (edge_nodecfg.h): read it for what the flags
 * leave out, then write back the merged identity, so that every version the
 * node boots, older or newer, finds who it is and where its gateway is. */
static enum ferry_err merge_nodecfg(struct edge_config *cfg, struct ferry_diag *d)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/node.cfg", cfg->state_dir) >= (int)sizeof(path))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--state-dir: path too long");
    struct edge_nodecfg *nc = NULL;
    enum ferry_err err = edge_nodecfg_load(path, &nc, d);
    bool damaged = err == FERRY_E_CORRUPT || err == FERRY_E_MALFORMED || err == FERRY_E_TOO_LARGE;
    if (damaged)
        snprintf(cfg->nodecfg_damage, sizeof(cfg->nodecfg_damage), "%s", d ? d->msg : "damaged");
    if (err == FERRY_E_NOT_FOUND || damaged) {
        /* Damaged: the flags stand in, and the file stays as it is until a
         * restore (README, "Configuration kept upstream") replaces it. */
        nc = edge_nodecfg_new();
        err = nc ? FERRY_OK : ferry_fail(d, FERRY_E_NOMEM, "node.cfg: out of memory");
    } else if (err != FERRY_OK) {
        ferry_diag_prefix(d, path);
        return err;
    }
    if (err == FERRY_OK &&
        (take(&cfg->id, nc->id) != FERRY_OK || take(&cfg->product, nc->product) != FERRY_OK ||
         take(&cfg->product, FERRY_DEFAULT_PRODUCT) != FERRY_OK ||
         take(&cfg->hw_model, nc->hw_model) != FERRY_OK ||
         take(&cfg->hw_revision, nc->hw_revision) != FERRY_OK ||
         take(&cfg->gateway, nc->gateway) != FERRY_OK || take(&cfg->trust, nc->trust) != FERRY_OK))
        err = ferry_fail(d, FERRY_E_NOMEM, "node.cfg: out of memory");
    const struct {
        const char *flag;
        const char *value;
    } need[] = {{"--id", cfg->id},
                {"--hw-model", cfg->hw_model},
                {"--gateway", cfg->gateway},
                {"--trust", cfg->trust}};
    for (size_t i = 0; err == FERRY_OK && i < sizeof(need) / sizeof(need[0]); i++) {
        if (!need[i].value && damaged)
            err = ferry_fail(d, FERRY_E_CORRUPT,
                             "%s is damaged (%.100s) and %s was not given: give the node's flags "
                             "or restore the file",
                             path, cfg->nodecfg_damage, need[i].flag);
        else if (!need[i].value)
            err = ferry_fail(d, FERRY_E_INVALID_ARG,
                             "missing required option %s (not in %s either)", need[i].flag, path);
    }
    if (err == FERRY_OK)
        err = check(cfg, d);
    if (err == FERRY_OK) {
        snprintf(nc->id, sizeof(nc->id), "%s", cfg->id);
        snprintf(nc->product, sizeof(nc->product), "%s", cfg->product);
        snprintf(nc->hw_model, sizeof(nc->hw_model), "%s", cfg->hw_model);
        snprintf(nc->hw_revision, sizeof(nc->hw_revision), "%s",
                 cfg->hw_revision ? cfg->hw_revision : "");
        snprintf(nc->gateway, sizeof(nc->gateway), "%s", cfg->gateway);
        snprintf(nc->trust, sizeof(nc->trust), "%s", cfg->trust);
        err = apply_tags(cfg, nc, d);
    }
    if (err == FERRY_OK && !damaged)
        err = ferry_mkdir_p(cfg->state_dir, 0700, d);
    if (err == FERRY_OK && !damaged)
        err = edge_nodecfg_save(nc, path, d);
    edge_nodecfg_free(nc);
    return err;
}

static enum ferry_err check(const struct edge_config *cfg, struct ferry_diag *d)
{
    if (!ferry_id_valid(cfg->id))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--id: '%s' is not an identifier", cfg->id);
    if (!ferry_id_valid(cfg->product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--product: '%s' is not an identifier",
                          cfg->product);
    if (!ferry_id_valid(cfg->hw_model))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--hw-model: '%s' is not an identifier",
                          cfg->hw_model);
    if (cfg->hw_revision && (!cfg->hw_revision[0] || strlen(cfg->hw_revision) > FERRY_REVISION_MAX))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--hw-revision: must be 1..%d bytes",
                          FERRY_REVISION_MAX);
    if (strncmp(cfg->gateway, "coap://", 7) != 0 && strncmp(cfg->gateway, "coaps://", 8) != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--gateway: expected coap://HOST:PORT, got '%s'",
                          cfg->gateway);
    if (strncmp(cfg->gateway, "coaps://", 8) == 0 && !cfg->psk_file)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--gateway: coaps:// needs --psk-file");
    if (cfg->block_size < 16 || cfg->block_size > 1024 || (cfg->block_size & (cfg->block_size - 1)))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--block-size: must be a power of two in 16..1024, got %llu",
                          (unsigned long long)cfg->block_size);
    if (cfg->max_window < 1 || cfg->max_window > FERRY_BLOCKWIN_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-window: must be 1..%d, got %llu",
                          FERRY_BLOCKWIN_MAX, (unsigned long long)cfg->max_window);
    if (cfg->trial_attempts < 1 || cfg->trial_attempts > EDGE_BOOT_MAX_ATTEMPTS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--trial-attempts: must be 1..%d",
                          EDGE_BOOT_MAX_ATTEMPTS);
    if (cfg->max_image_mb < 1 || cfg->max_image_mb > MAX_IMAGE_MB)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-image-mb: must be 1..%llu",
                          (unsigned long long)MAX_IMAGE_MB);
    if (cfg->ack_timeout_ms < EDGE_COAP_MIN_ACK_TIMEOUT_MS ||
        cfg->ack_timeout_ms > EDGE_COAP_MAX_ACK_TIMEOUT_MS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--ack-timeout-ms: must be %d..%d, got %llu",
                          EDGE_COAP_MIN_ACK_TIMEOUT_MS, EDGE_COAP_MAX_ACK_TIMEOUT_MS,
                          (unsigned long long)cfg->ack_timeout_ms);
    if (!cfg->slot_a != !cfg->slot_b)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--slot-a and --slot-b: give both or neither");
    enum inst_bootloader_kind kind = INST_BOOTLOADER_SIM;
    if (cfg->bootloader && inst_bootloader_kind_parse(cfg->bootloader, &kind) != FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--bootloader: expected uboot, grub, custom or sim, got '%s'",
                          cfg->bootloader);
    if (kind == INST_BOOTLOADER_CUSTOM && !cfg->bootloader_cmd)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--bootloader custom needs --bootloader-cmd");
    /* U-Boot's setexpr counts in hex: the script's decimal tests agree below 10. */
    if (kind == INST_BOOTLOADER_UBOOT && cfg->trial_attempts > 9)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--trial-attempts: at most 9 with --bootloader uboot (its boot script "
                          "counts with setexpr, in hex)");
    if (kind != INST_BOOTLOADER_SIM && !cfg->reboot_cmd)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--bootloader %s needs --reboot-cmd (e.g. 'systemctl reboot')",
                          cfg->bootloader);
    if (kind != INST_BOOTLOADER_SIM && !cfg->slot_a)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--bootloader %s needs --slot-a and --slot-b (the partitions it boots)",
                          cfg->bootloader);
    /* A day is far beyond any sensible value and keeps milliseconds small. */
    if (cfg->max_seq_step < 1 || cfg->max_seq_step > (UINT64_C(1) << 53))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-seq-step: must be 1..2^53, got %llu",
                          (unsigned long long)cfg->max_seq_step);
    if (cfg->max_manifest_lifetime < 1)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-manifest-lifetime: at least 1s");
    if (!in_range(cfg->poll_interval, 1, 86400) || !in_range(cfg->busy_retry, 1, 86400) ||
        !in_range(cfg->cmd_timeout, 1, 86400) || !in_range(cfg->request_timeout, 1, 86400) ||
        !in_range(cfg->module_timeout, 1, 86400))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--poll-interval, --busy-retry, --cmd-timeout, --request-timeout and "
                          "--module-timeout must be 1s..1d");
    return FERRY_OK;
}

enum ferry_err edge_config_parse(struct edge_config *cfg, int argc, char **argv, bool *help,
                                 struct ferry_diag *d)
{
    cfg->max_image_mb = 64;
    cfg->poll_interval = 60;
    cfg->busy_retry = 5;
    cfg->cmd_timeout = 30;
    cfg->request_timeout = 60;
    cfg->ack_timeout_ms = EDGE_COAP_DEFAULT_ACK_TIMEOUT_MS;
    cfg->block_size = 1024;
    cfg->max_window = FERRY_BLOCKWIN_MAX;
    cfg->trial_attempts = 1;
    cfg->max_seq_step = FERRY_TRUST_DEFAULT_MAX_SEQ_STEP;
    cfg->max_manifest_lifetime = FERRY_TRUST_DEFAULT_MAX_LIFETIME;
    cfg->module_timeout = 300;
    cfg->log_level = FERRY_LOG_INFO;
    enum ferry_err err =
        ferry_opts_parse(edge_opts, N_OPTS, cfg, argc, argv, 1, ferry_cfgfile_load, help, d);
    if (err != FERRY_OK || *help)
        return err;
    return merge_nodecfg(cfg, d);
}

void edge_config_free(struct edge_config *cfg)
{
    ferry_opts_free(edge_opts, N_OPTS, cfg);
}

void edge_config_usage(FILE *out)
{
    fprintf(out, "Usage: ferry-edge --gateway coap://HOST:PORT --id NODE --hw-model M\n"
                 "                  --state-dir DIR --trust KEYRING [options]\n\n"
                 "Learns of releases from the gateway (Observe and polling), verifies them\n"
                 "with its own keyring, downloads them block by block into the inactive\n"
                 "A/B slot, installs them on trial, runs the health check and confirms or\n"
                 "rolls back, reporting every step to the gateway.\n\n"
                 "Options:\n");
    ferry_opts_usage(out, edge_opts, N_OPTS);
    fprintf(out, "\nState folder: boot.* (the A/B boot state), slot-a.img and slot-b.img (the\n"
                 "slots unless --slot-a/--slot-b name partitions), bootenv (the simulated\n"
                 "bootloader's environment), job.rec (the release under way),\n"
                 "status.journal and status.seq (status records not yet stored by the\n"
                 "gateway), trust/ (the newest root and timestamp learned from the\n"
                 "gateway). The commands run with /bin/sh -c and get FERRY_NODE,\n"
                 "FERRY_VERSION and FERRY_SLOT (the slot's path) in their environment.\n"
                 "Boot scripts for U-Boot and GRUB, and the custom bootloader's verbs, are\n"
                 "in deploy/ and README (board integration). SIGTERM or SIGINT stop it\n"
                 "cleanly.\n");
}
