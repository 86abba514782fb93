#include "cloud_cli.h"

#include "cloud_keys.h"
#include "cloud_sign.h"
#include "cloud_subcmd.h"
#include "cloud_verify.h"
#include "ferry_cfgfile.h"
#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_opts.h"
#include "ferry_signed.h"
#include "ferry_trust.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Tolerance for a signer whose clock runs ahead of ours. */
#define VERIFY_CLOCK_SKEW 300
#define DEFAULT_LIFETIME  (30 * 86400)

static int usage_error(const struct cloud_subcmd *c, const char *msg)
{
    struct ferry_diag d = {{0}};
    return cloud_subcmd_report(c, &d, ferry_fail(&d, FERRY_E_INVALID_ARG, "%s", msg),
                               CLOUD_EXIT_USAGE);
}

/* ---- keygen ---- */

struct keygen_cfg {
    char *out_dir;
    char *role;
    enum ferry_log_level log_level;
};

static const struct ferry_opt keygen_opts[] = {
    CLOUD_OPT(keygen_cfg, "out-dir", FERRY_OPT_STR, out_dir, "DIR",
              "folder for <role>-<kid>.key (0600) and <role>-<kid>.pub", FERRY_OPT_REQUIRED),
    CLOUD_OPT(keygen_cfg, "role", FERRY_OPT_STR, role, "ROLE",
              "what the key will sign: release (default), root or timestamp", 0),
    CLOUD_OPT_LOG_LEVEL(keygen_cfg),
};

static const struct cloud_subcmd keygen_spec = {
    "keygen", "--out-dir DIR [--role release|root|timestamp]",
    "Generates an ECDSA P-256 signing key and prints its key id. A release\n"
    "key's .pub file is a one-key keyring for gateways and nodes (--trust);\n"
    "root and timestamp keys go into root documents ('ferry-cloud root init').",
    keygen_opts, sizeof(keygen_opts) / sizeof(keygen_opts[0])};

int cloud_cmd_keygen(int argc, char **argv)
{
    struct keygen_cfg cfg = {.log_level = FERRY_LOG_WARN};
    struct ferry_diag d = {{0}};
    struct cloud_key *k = NULL;
    int status = cloud_subcmd_parse(&keygen_spec, &cfg, &cfg.log_level, argc, argv);
    if (status >= 0)
        goto out;
    if (cfg.role && strcmp(cfg.role, "release") != 0 && strcmp(cfg.role, "root") != 0 &&
        strcmp(cfg.role, "timestamp") != 0) {
        status = usage_error(&keygen_spec, "--role: expected release, root or timestamp");
        goto out;
    }
    enum ferry_err err = cloud_key_generate(&k, &d);
    if (err == FERRY_OK)
        err = cloud_key_save_as(k, cfg.out_dir, cfg.role ? cfg.role : "release", &d);
    if (err != FERRY_OK) {
        status = cloud_subcmd_report(&keygen_spec, &d, err, CLOUD_EXIT_FAILED);
        goto out;
    }
    ferry_log_info("wrote %s/%s-%s.key and .pub", cfg.out_dir, cfg.role ? cfg.role : "release",
                   cloud_key_kid(k));
    printf("%s\n", cloud_key_kid(k));
    status = 0;
out:
    cloud_key_free(k);
    ferry_opts_free(keygen_opts, keygen_spec.nopts, &cfg);
    return status;
}

/* ---- sign ---- */

struct sign_cfg {
    char *key;
    char *artifact;
    char *version;
    uint64_t seq;
    struct ferry_strlist hw_models;
    struct ferry_strlist hw_revisions;
    char *product;
    char *component;
    char *media_type;
    struct ferry_strlist module_args;
    struct ferry_strlist nodes;
    int64_t expires;
    bool must_be_idle;
    uint64_t window_start;
    uint64_t window_end;
    int64_t max_deferral;
    char *release;
    char *out;
    enum ferry_log_level log_level;
};

static const struct ferry_opt sign_opts[] = {
    CLOUD_OPT(sign_cfg, "artifact", FERRY_OPT_STR, artifact, "FILE", "the image to release",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT_RELEASE(sign_cfg, FERRY_OPT_REQUIRED),
    CLOUD_OPT(sign_cfg, "out", FERRY_OPT_STR, out, "FILE", "where to write the signed envelope",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT_LOG_LEVEL(sign_cfg),
};

static const struct cloud_subcmd sign_spec = {
    "sign",
    "--key KEY --artifact FILE --version SEMVER --seq N\n"
    "                        --hw-model MODEL [--hw-model MODEL ...] --out FILE [options]",
    "Hashes the artifact, builds its manifest, signs it (ES256) and writes\n"
    "the signed envelope that gateways and nodes verify.",
    sign_opts, sizeof(sign_opts) / sizeof(sign_opts[0])};

static int sign_run(const struct sign_cfg *cfg)
{
    struct ferry_diag d = {{0}};
    struct cloud_key *k = NULL;
    struct ferry_manifest m;
    struct cloud_release rel = {
        .artifact = cfg->artifact,
        .version = cfg->version,
        .seq = cfg->seq,
        .hw_models = &cfg->hw_models,
        .hw_revisions = &cfg->hw_revisions,
        .product = cfg->product,
        .component = cfg->component,
        .media_type = cfg->media_type,
        .module_args = &cfg->module_args,
        .nodes = &cfg->nodes,
        .release_id = cfg->release,
        .issued_at = (int64_t)time(NULL),
        .lifetime = cfg->expires,
        .constraints = {.must_be_idle = cfg->must_be_idle,
                        .window_start = (int64_t)cfg->window_start,
                        .window_end = (int64_t)cfg->window_end,
                        .max_deferral = cfg->max_deferral},
    };
    enum ferry_err err = cloud_key_load(cfg->key, &k, &d);
    if (err == FERRY_OK)
        err = cloud_sign_release(&rel, k, cfg->out, &m, &d);
    cloud_key_free(k);
    if (err != FERRY_OK)
        return cloud_subcmd_report(&sign_spec, &d, err, CLOUD_EXIT_FAILED);
    printf("signed: release %s version %s seq %" PRIu64 " key %s -> %s\n", m.release_id, m.version,
           m.seq, m.key_id, cfg->out);
    return 0;
}

int cloud_cmd_sign(int argc, char **argv)
{
    struct sign_cfg cfg = {.expires = DEFAULT_LIFETIME, .log_level = FERRY_LOG_WARN};
    int status = cloud_subcmd_parse(&sign_spec, &cfg, &cfg.log_level, argc, argv);
    if (status >= 0)
        goto out;
    if (cfg.window_start > INT64_MAX || cfg.window_end > INT64_MAX)
        status = usage_error(&sign_spec, "--window-start/--window-end: out of range");
    else
        status = sign_run(&cfg);
out:
    ferry_opts_free(sign_opts, sign_spec.nopts, &cfg);
    return status;
}

/* ---- verify ---- */

struct verify_cfg {
    char *trust;
    char *manifest;
    char *artifact;
    char *hw_model;
    char *hw_revision;
    uint64_t min_seq;
    enum ferry_log_level log_level;
};

static const struct ferry_opt verify_opts[] = {
    CLOUD_OPT(verify_cfg, "trust", FERRY_OPT_STR, trust, "TRUST",
              "root document, or PEM public key or JSON keyring of trusted release keys",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(verify_cfg, "manifest", FERRY_OPT_STR, manifest, "FILE",
              "signed envelope written by 'ferry-cloud sign'", FERRY_OPT_REQUIRED),
    CLOUD_OPT(verify_cfg, "artifact", FERRY_OPT_STR, artifact, "FILE", "the artifact to check",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(verify_cfg, "hw-model", FERRY_OPT_STR, hw_model, "MODEL",
              "check the release is meant for this model", 0),
    CLOUD_OPT(verify_cfg, "hw-revision", FERRY_OPT_STR, hw_revision, "REV",
              "with --hw-model: the device's revision", 0),
    CLOUD_OPT(verify_cfg, "min-seq", FERRY_OPT_U64, min_seq, "N", "reject a sequence below N", 0),
    CLOUD_OPT_LOG_LEVEL(verify_cfg),
};

static const struct cloud_subcmd verify_spec = {
    "verify", "--trust TRUST --manifest FILE --artifact FILE [options]",
    "Checks a signed envelope as a device would (trusted key, signature,\n"
    "validity period, hardware, sequence) and that the artifact matches it.",
    verify_opts, sizeof(verify_opts) / sizeof(verify_opts[0])};

static int verify_run(const struct verify_cfg *cfg)
{
    struct ferry_diag d = {{0}};
    struct ferry_trust *t = NULL;
    struct ferry_manifest m;
    struct ferry_verify_policy pol = {
        .now = (int64_t)time(NULL),
        .clock_skew = VERIFY_CLOCK_SKEW,
        .hw_model = cfg->hw_model,
        .hw_revision = cfg->hw_revision,
        .min_seq = cfg->min_seq,
    };
    /* The root's policy applies as it would on a device; the devices' own
     * limits are theirs to set. */
    struct ferry_trust_limits none = {0}, lim;
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(cfg->trust, FERRY_SIGNED_MAX_BYTES, &buf, &len, &d);
    if (err == FERRY_OK)
        err = ferry_trust_new(buf, len, 1, &t, &d);
    free(buf);
    if (err != FERRY_OK) {
        ferry_diag_prefix(&d, cfg->trust);
    } else {
        ferry_trust_limits(t, &none, &lim);
        pol.max_lifetime = lim.max_manifest_lifetime;
        pol.max_seq_step = cfg->min_seq ? lim.max_seq_step : 0;
        pol.seq_base = cfg->min_seq ? cfg->min_seq - 1 : 0;
        err = cloud_verify_release(cfg->manifest, cfg->artifact, ferry_trust_release_keys(t), &pol,
                                   &m, &d);
    }
    ferry_trust_free(t);
    if (err != FERRY_OK)
        return cloud_subcmd_report(&verify_spec, &d, err, CLOUD_EXIT_FAILED);
    printf("ok: release %s version %s seq %" PRIu64 "\n", m.release_id, m.version, m.seq);
    return 0;
}

int cloud_cmd_verify(int argc, char **argv)
{
    struct verify_cfg cfg = {.log_level = FERRY_LOG_WARN};
    int status = cloud_subcmd_parse(&verify_spec, &cfg, &cfg.log_level, argc, argv);
    if (status >= 0)
        goto out;
    if (cfg.hw_revision && !cfg.hw_model)
        status = usage_error(&verify_spec, "--hw-revision needs --hw-model");
    else
        status = verify_run(&cfg);
out:
    ferry_opts_free(verify_opts, verify_spec.nopts, &cfg);
    return status;
}
