#include "cloud_root.h"

#include "cloud_publish.h"
#include "cloud_subcmd.h"
#include "ferry_fs.h"
#include "ferry_names.h"
#include "ferry_opts.h"
#include "ferry_root.h"
#include "ferry_signed.h"
#include "ferry_trust.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT_S 30
#define PUB_MAX           4096

static int usage_error(const struct cloud_subcmd *c, const char *msg)
{
    struct ferry_diag d = {{0}};
    return cloud_subcmd_report(c, &d, ferry_fail(&d, FERRY_E_INVALID_ARG, "%s", msg),
                               CLOUD_EXIT_USAGE);
}

/* ---- signing ---------------------------------------------------------------- */

/* The root document's bytes and the signatures it has so far. */
static enum ferry_err open_doc(const uint8_t *in, size_t len, uint8_t **body, size_t *body_len,
                               struct ferry_signature *sigs, size_t *nsigs, struct ferry_diag *d)
{
    struct ferry_signed *s = NULL;
    struct ferry_root r;
    bool is_signed = false;
    for (size_t i = 0; i + 12 <= len && !is_signed; i++)
        is_signed = memcmp(in + i, "\"signatures\"", 12) == 0;
    enum ferry_err err = FERRY_OK;
    if (is_signed) {
        err = ferry_signed_parse(in, len, FERRY_ROOT_MAX_BYTES, "root", &s, d);
        if (err != FERRY_OK)
            return err;
        *body = s->body;
        *body_len = s->body_len;
        s->body = NULL;
        *nsigs = s->nsigs;
        memcpy(sigs, s->sigs, s->nsigs * sizeof(sigs[0]));
        ferry_signed_free(s);
    } else {
        *body = malloc(len ? len : 1);
        if (!*body)
            return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
        memcpy(*body, in, len);
        *body_len = len;
        *nsigs = 0;
    }
    err = ferry_root_parse(*body, *body_len, &r, d);
    if (err != FERRY_OK) {
        free(*body);
        *body = NULL;
    }
    return err;
}

enum ferry_err cloud_root_sign(const uint8_t *in, size_t len, const struct cloud_key *k, char **out,
                               size_t *out_len, struct ferry_diag *d)
{
    struct ferry_signature sigs[FERRY_SIGNED_MAX_SIGS];
    uint8_t *body = NULL;
    size_t body_len = 0, n = 0;
    enum ferry_err err = open_doc(in, len, &body, &body_len, sigs, &n, d);
    if (err != FERRY_OK)
        return err;
    for (size_t i = 0; i < n && err == FERRY_OK; i++) {
        if (strcmp(sigs[i].kid, cloud_key_kid(k)) == 0)
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "key %s has signed it already",
                             cloud_key_kid(k));
    }
    if (err == FERRY_OK && n == FERRY_SIGNED_MAX_SIGS)
        err = ferry_fail(d, FERRY_E_TOO_LARGE, "it holds %d signatures already",
                         FERRY_SIGNED_MAX_SIGS);
    if (err == FERRY_OK) {
        snprintf(sigs[n].kid, sizeof(sigs[n].kid), "%s", cloud_key_kid(k));
        err = cloud_key_sign(k, body, body_len, sigs[n].sig, d);
    }
    if (err == FERRY_OK)
        err = ferry_signed_encode(body, body_len, sigs, n + 1, out, out_len, d);
    free(body);
    return err;
}

/* ---- init --------------------------------------------------------------------- */

struct init_cfg {
    char *out;
    uint64_t version;
    struct ferry_strlist root_keys, release_keys, timestamp_keys, revoke;
    uint64_t root_threshold, timestamp_threshold;
    uint64_t max_seq_step;
    int64_t max_manifest_lifetime;
    enum ferry_log_level log_level;
};

static const struct ferry_opt init_opts[] = {
    CLOUD_OPT(init_cfg, "out", FERRY_OPT_STR, out, "FILE", "where to write the root document",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(init_cfg, "version", FERRY_OPT_U64, version, "N",
              "version, above every earlier root's (default 1)", 0),
    CLOUD_OPT(init_cfg, "root-key", FERRY_OPT_STRLIST, root_keys, "PUB",
              "public key (PEM) that signs root documents (repeatable)", FERRY_OPT_REQUIRED),
    CLOUD_OPT(init_cfg, "root-threshold", FERRY_OPT_U64, root_threshold, "N",
              "root keys that must sign each new root (default 1)", 0),
    CLOUD_OPT(init_cfg, "release-key", FERRY_OPT_STRLIST, release_keys, "PUB",
              "public key (PEM) that signs releases (repeatable)", FERRY_OPT_REQUIRED),
    CLOUD_OPT(init_cfg, "timestamp-key", FERRY_OPT_STRLIST, timestamp_keys, "PUB",
              "public key (PEM) that signs timestamps (repeatable; none: no timestamp role)", 0),
    CLOUD_OPT(init_cfg, "timestamp-threshold", FERRY_OPT_U64, timestamp_threshold, "N",
              "timestamp keys that must sign each timestamp (default 1)", 0),
    CLOUD_OPT(init_cfg, "revoke", FERRY_OPT_STRLIST, revoke, "KID",
              "key id refused from now on, as revoked-key (repeatable)", 0),
    CLOUD_OPT(init_cfg, "max-seq-step", FERRY_OPT_U64, max_seq_step, "N",
              "fleet-wide: how far one release may move the anti-rollback counter", 0),
    CLOUD_OPT(init_cfg, "max-manifest-lifetime", FERRY_OPT_DURATION, max_manifest_lifetime,
              "DURATION", "fleet-wide: longest validity a manifest may have", 0),
    CLOUD_OPT_LOG_LEVEL(init_cfg),
};

static const struct cloud_subcmd init_spec = {
    "root init",
    "--out FILE --root-key PUB ... --release-key PUB ... [--timestamp-key PUB ...]\n"
    "                            [--version N] [--revoke KID ...] [options]",
    "Writes a root document: which keys sign roots, releases and timestamps,\n"
    "which key ids are revoked, and fleet-wide limits. It still needs signatures\n"
    "('ferry-cloud root sign'): a threshold of its own root keys and, from\n"
    "version 2 on (or when devices hold a keyring), of the root devices trust now.",
    init_opts, sizeof(init_opts) / sizeof(init_opts[0])};

static enum ferry_err add_role(struct ferry_root *r, enum ferry_role role,
                               const struct ferry_strlist *paths, uint64_t threshold,
                               struct ferry_diag *d)
{
    struct ferry_root_role *ro = &r->roles[role];
    if (paths->n == 0)
        return FERRY_OK;
    if (paths->n > FERRY_ROLE_MAX_KEYS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--%s-key: at most %d", ferry_role_name(role),
                          FERRY_ROLE_MAX_KEYS);
    ro->present = true;
    ro->threshold = threshold > FERRY_ROLE_MAX_KEYS ? FERRY_ROLE_MAX_KEYS + 1 : (unsigned)threshold;
    for (size_t i = 0; i < paths->n; i++) {
        uint8_t *pem = NULL;
        size_t len = 0;
        uint8_t point[FERRY_P256_POINT_LEN];
        char kid[FERRY_KID_LEN + 1];
        enum ferry_err err = ferry_read_file(paths->v[i], PUB_MAX, &pem, &len, d);
        if (err == FERRY_OK)
            err = ferry_pem_to_point(pem, len, paths->v[i], point, d);
        free(pem);
        if (err != FERRY_OK)
            return err;
        ferry_kid_of_point(point, kid);
        size_t k = 0;
        while (k < r->nkeys && strcmp(r->keys[k].kid, kid) != 0)
            k++;
        if (k == r->nkeys) {
            if (r->nkeys == FERRY_ROOT_MAX_KEYS)
                return ferry_fail(d, FERRY_E_INVALID_ARG, "more than %d distinct keys",
                                  FERRY_ROOT_MAX_KEYS);
            memcpy(r->keys[k].kid, kid, sizeof(kid));
            memcpy(r->keys[k].point, point, sizeof(point));
            r->nkeys++;
        }
        memcpy(ro->kids[ro->nkids++], kid, sizeof(kid));
    }
    return FERRY_OK;
}

static int init_run(const struct init_cfg *c)
{
    struct ferry_diag d = {{0}};
    struct ferry_root *r = calloc(1, sizeof(*r));
    char *text = NULL;
    size_t len = 0;
    enum ferry_err err = r ? FERRY_OK : ferry_fail(&d, FERRY_E_NOMEM, "out of memory");
    if (err == FERRY_OK) {
        r->version = c->version;
        r->issued_at = (int64_t)time(NULL);
        r->max_seq_step = c->max_seq_step;
        r->max_manifest_lifetime = c->max_manifest_lifetime;
        err = add_role(r, FERRY_ROLE_ROOT, &c->root_keys, c->root_threshold, &d);
    }
    if (err == FERRY_OK)
        err = add_role(r, FERRY_ROLE_RELEASE, &c->release_keys, 1, &d);
    if (err == FERRY_OK)
        err = add_role(r, FERRY_ROLE_TIMESTAMP, &c->timestamp_keys, c->timestamp_threshold, &d);
    if (err == FERRY_OK && c->revoke.n > FERRY_ROOT_MAX_KEYS)
        err = ferry_fail(&d, FERRY_E_INVALID_ARG, "--revoke: at most %d", FERRY_ROOT_MAX_KEYS);
    for (size_t i = 0; err == FERRY_OK && i < c->revoke.n; i++) {
        if (!ferry_kid_valid(c->revoke.v[i]))
            err = ferry_fail(&d, FERRY_E_INVALID_ARG,
                             "--revoke: '%s' is not a key id (16 lower-case hex digits)",
                             c->revoke.v[i]);
        else
            snprintf(r->revoked[r->nrevoked++], FERRY_KID_LEN + 1, "%s", c->revoke.v[i]);
    }
    if (err == FERRY_OK)
        err = ferry_root_encode(r, &text, &len, &d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(c->out, text, len, 0644, &d);
    if (err == FERRY_OK)
        printf("root version %" PRIu64 ": %zu keys, written to %s (unsigned)\n", r->version,
               r->nkeys, c->out);
    free(text);
    free(r);
    return err == FERRY_OK ? 0 : cloud_subcmd_report(&init_spec, &d, err, CLOUD_EXIT_FAILED);
}

static int cmd_init(int argc, char **argv)
{
    struct init_cfg cfg = {
        .version = 1, .root_threshold = 1, .timestamp_threshold = 1, .log_level = FERRY_LOG_WARN};
    int status = cloud_subcmd_parse(&init_spec, &cfg, &cfg.log_level, argc, argv);
    if (status < 0)
        status = init_run(&cfg);
    ferry_opts_free(init_opts, init_spec.nopts, &cfg);
    return status;
}

/* ---- sign --------------------------------------------------------------------- */

struct sign_cfg {
    char *key;
    char *in;
    char *out;
    enum ferry_log_level log_level;
};

static const struct ferry_opt sign_opts[] = {
    CLOUD_OPT(sign_cfg, "key", FERRY_OPT_STR, key, "KEY", "the signer's private key (PEM)",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(sign_cfg, "in", FERRY_OPT_STR, in, "FILE",
              "root document from 'root init', or one signed already", FERRY_OPT_REQUIRED),
    CLOUD_OPT(sign_cfg, "out", FERRY_OPT_STR, out, "FILE",
              "where to write the signed document (may be --in)", FERRY_OPT_REQUIRED),
    CLOUD_OPT_LOG_LEVEL(sign_cfg),
};

static const struct cloud_subcmd sign_spec = {
    "root sign", "--key KEY --in FILE --out FILE",
    "Adds the key's signature to a root document. Each holder of a root key\n"
    "(of the new root, and of the root devices trust now) signs in turn.",
    sign_opts, sizeof(sign_opts) / sizeof(sign_opts[0])};

static int cmd_sign(int argc, char **argv)
{
    struct sign_cfg cfg = {.log_level = FERRY_LOG_WARN};
    struct ferry_diag d = {{0}};
    struct cloud_key *k = NULL;
    uint8_t *in = NULL;
    char *out = NULL;
    size_t len = 0, out_len = 0;
    int status = cloud_subcmd_parse(&sign_spec, &cfg, &cfg.log_level, argc, argv);
    if (status >= 0)
        goto out;
    enum ferry_err err = cloud_key_load(cfg.key, &k, &d);
    if (err == FERRY_OK)
        err = ferry_read_file(cfg.in, FERRY_SIGNED_MAX_BYTES, &in, &len, &d);
    if (err == FERRY_OK) {
        err = cloud_root_sign(in, len, k, &out, &out_len, &d);
        if (err != FERRY_OK)
            ferry_diag_prefix(&d, cfg.in);
    }
    if (err == FERRY_OK)
        err = ferry_write_atomic(cfg.out, out, out_len, 0644, &d);
    if (err == FERRY_OK) {
        printf("signed by %s -> %s\n", cloud_key_kid(k), cfg.out);
        status = 0;
    } else {
        status = cloud_subcmd_report(&sign_spec, &d, err, CLOUD_EXIT_FAILED);
    }
out:
    cloud_key_free(k);
    free(in);
    free(out);
    ferry_opts_free(sign_opts, sign_spec.nopts, &cfg);
    return status;
}

/* ---- verify and publish --------------------------------------------------------- */

struct check_cfg {
    struct ferry_keeper_conf mqtt;
    char *fleet;
    char *root;
    char *trust;
    char *client_id;
    int64_t timeout;
    enum ferry_log_level log_level;
};

static const struct ferry_opt verify_opts[] = {
    CLOUD_OPT(check_cfg, "root", FERRY_OPT_STR, root, "FILE", "the signed root document",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(check_cfg, "trust", FERRY_OPT_STR, trust, "CURRENT",
              "the root (or keyring) devices trust now: check that the new one chains from it", 0),
    CLOUD_OPT_LOG_LEVEL(check_cfg),
};

static const struct ferry_opt publish_opts[] = {
    CLOUD_OPT_MQTT(check_cfg),
    CLOUD_OPT(check_cfg, "fleet", FERRY_OPT_STR, fleet, "ID", "fleet to publish to",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(check_cfg, "root", FERRY_OPT_STR, root, "FILE", "the signed root document",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(check_cfg, "trust", FERRY_OPT_STR, trust, "CURRENT",
              "the root (or keyring) devices trust now: refuse to publish unless it chains", 0),
    CLOUD_OPT(check_cfg, "client-id", FERRY_OPT_STR, client_id, "ID",
              "MQTT client id (default ferry-cloud-publish-<pid>)", 0),
    CLOUD_OPT(check_cfg, "timeout", FERRY_OPT_DURATION, timeout, "DURATION",
              "give up when the broker has not acknowledged by then (default 30s)", 0),
    CLOUD_OPT_LOG_LEVEL(check_cfg),
};

static const struct cloud_subcmd verify_spec = {
    "root verify", "--root FILE [--trust CURRENT]",
    "Checks a signed root document as a device would: a threshold of its own\n"
    "root keys and, with --trust, of the current root's (and a higher version).",
    verify_opts, sizeof(verify_opts) / sizeof(verify_opts[0])};

static const struct cloud_subcmd publish_spec = {
    "root publish", "--broker URL --fleet ID --root FILE [--trust CURRENT]",
    "Checks a signed root document as 'root verify' does and publishes it,\n"
    "retained, on ferry/v1/<fleet>/root/<version>. Gateways take it, and pass\n"
    "it to their nodes, only if it chains from the root they hold.",
    publish_opts, sizeof(publish_opts) / sizeof(publish_opts[0])};

static enum ferry_err trust_from_file(const char *path, struct ferry_trust **t,
                                      struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(path, FERRY_SIGNED_MAX_BYTES, &buf, &len, d);
    if (err == FERRY_OK)
        err = ferry_trust_new(buf, len, 1, t, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, path);
    free(buf);
    return err;
}

/* The checks of verify and publish; *doc gets the file's bytes. */
static enum ferry_err check_root(const struct check_cfg *c, uint8_t **doc, size_t *len,
                                 uint64_t *version, struct ferry_diag *d)
{
    struct ferry_trust *self = NULL, *cur = NULL;
    bool changed = false;
    enum ferry_err err = trust_from_file(c->root, &self, d);
    if (err == FERRY_OK)
        err = ferry_read_file(c->root, FERRY_SIGNED_MAX_BYTES, doc, len, d);
    if (err == FERRY_OK && c->trust) {
        err = trust_from_file(c->trust, &cur, d);
        if (err == FERRY_OK)
            err = ferry_trust_update_root(cur, *doc, *len, &changed, d);
        if (err == FERRY_OK && !changed)
            err =
                ferry_fail(d, FERRY_E_STALE, "%s is the root %s holds already", c->root, c->trust);
    }
    if (err == FERRY_OK)
        *version = ferry_trust_version(self);
    ferry_trust_free(self);
    ferry_trust_free(cur);
    return err;
}

static int cmd_check(const struct cloud_subcmd *spec, bool publish, int argc, char **argv)
{
    struct check_cfg cfg = {.timeout = DEFAULT_TIMEOUT_S, .log_level = FERRY_LOG_WARN};
    struct ferry_diag d = {{0}};
    uint8_t *doc = NULL;
    size_t len = 0;
    uint64_t version = 0;
    char topic[FERRY_TOPIC_MAX], level[24];
    int status = cloud_subcmd_parse(spec, &cfg, &cfg.log_level, argc, argv);
    if (status >= 0)
        goto out;
    if (publish) {
        enum ferry_err err = ferry_keeper_conf_check(&cfg.mqtt, &d);
        if (err == FERRY_OK && !ferry_id_valid(cfg.fleet))
            err =
                ferry_fail(&d, FERRY_E_INVALID_ARG, "--fleet '%.80s' is not a valid id", cfg.fleet);
        if (err != FERRY_OK) {
            status = cloud_subcmd_report(spec, &d, err, CLOUD_EXIT_USAGE);
            goto out;
        }
    }
    enum ferry_err err = check_root(&cfg, &doc, &len, &version, &d);
    if (err == FERRY_OK && publish) {
        snprintf(level, sizeof(level), "%" PRIu64, version);
        if (ferry_topic(topic, sizeof(topic), FERRY_TOPIC_META_ROOT, cfg.fleet, level, NULL) !=
            FERRY_OK)
            err = ferry_fail(&d, FERRY_E_INVALID_ARG, "no root topic for fleet '%s'", cfg.fleet);
        if (err == FERRY_OK)
            err =
                cloud_publish_retained(&cfg.mqtt, cfg.client_id, cfg.timeout, topic, doc, len, &d);
    }
    if (err != FERRY_OK) {
        status = cloud_subcmd_report(spec, &d, err, CLOUD_EXIT_FAILED);
        goto out;
    }
    printf("root version %" PRIu64 ": signed by its own root keys%s%s%s\n", version,
           cfg.trust ? "; chains from " : "", cfg.trust ? cfg.trust : "",
           publish ? "; published" : "");
    status = 0;
out:
    free(doc);
    ferry_opts_free(spec->opts, spec->nopts, &cfg);
    return status;
}

/* ---- dispatch ------------------------------------------------------------------- */

static const struct cloud_subcmd root_spec = {"root", "init|sign|verify|publish [options]", "",
                                              NULL, 0};

int cloud_cmd_root(int argc, char **argv)
{
    const char *action = argc >= 2 ? argv[1] : "";
    if (strcmp(action, "init") == 0)
        return cmd_init(argc - 1, argv + 1);
    if (strcmp(action, "sign") == 0)
        return cmd_sign(argc - 1, argv + 1);
    if (strcmp(action, "verify") == 0)
        return cmd_check(&verify_spec, false, argc - 1, argv + 1);
    if (strcmp(action, "publish") == 0)
        return cmd_check(&publish_spec, true, argc - 1, argv + 1);
    if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0) {
        printf("Usage: ferry-cloud root init|sign|verify|publish [options]\n\n"
               "Root documents: which keys a fleet trusts to sign roots, releases and\n"
               "timestamps. 'ferry-cloud root ACTION --help' describes each action.\n");
        return 0;
    }
    return usage_error(&root_spec, "expected an action: init, sign, verify or publish");
}
