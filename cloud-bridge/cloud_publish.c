#include "cloud_publish.h"

#include "cloud_keys.h"
#include "cloud_sign.h"
#include "cloud_store.h"
#include "cloud_subcmd.h"
#include "cloud_timestamp.h"
#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_loop.h"
#include "ferry_manifest.h"
#include "ferry_names.h"
#include "ferry_random.h"
#include "ferry_signed.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LIFETIME  (30 * 86400)
#define DEFAULT_TIMEOUT_S 30
#define SEQ_UNSET         UINT64_MAX
/* Files at least this big report their import every 10 %. */
#define PROGRESS_MIN_BYTES (8u << 20)
#define RETRY_MIN_MS       250
#define RETRY_MAX_MS       5000

struct publish_cfg {
    struct ferry_keeper_conf mqtt;
    char *fleet;
    char *store;
    char *artifact;
    char *manifest;
    char *client_id;
    int64_t timeout;
    char *out;
    bool stage;
    /* The sign options, as `ferry-cloud sign` takes them. */
    char *key;
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
    struct ferry_strlist timestamp_keys;
    int64_t timestamp_expires;
    enum ferry_log_level log_level;
};

static const struct ferry_opt publish_opts[] = {
    CLOUD_OPT_MQTT(publish_cfg),
    CLOUD_OPT(publish_cfg, "fleet", FERRY_OPT_STR, fleet, "ID", "fleet to publish to",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(publish_cfg, "store", FERRY_OPT_STR, store, "DIR",
              "artifact store that 'ferry-cloud serve' streams from", FERRY_OPT_REQUIRED),
    CLOUD_OPT(publish_cfg, "artifact", FERRY_OPT_STR, artifact, "FILE", "the image to release",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(publish_cfg, "manifest", FERRY_OPT_STR, manifest, "FILE",
              "publish this signed envelope instead of signing one (no sign options then)", 0),
    CLOUD_OPT(publish_cfg, "client-id", FERRY_OPT_STR, client_id, "ID",
              "MQTT client id (default ferry-cloud-publish-<pid>)", 0),
    CLOUD_OPT(publish_cfg, "timeout", FERRY_OPT_DURATION, timeout, "DURATION",
              "give up when the broker has not acknowledged by then (default 30s)", 0),
    CLOUD_OPT(publish_cfg, "out", FERRY_OPT_STR, out, "FILE",
              "also keep the signed envelope in FILE", 0),
    CLOUD_OPT(publish_cfg, "stage", FERRY_OPT_BOOL, stage, NULL,
              "store and sign only: a rollout ('ferry-cloud rollout create') offers it", 0),
    CLOUD_OPT_RELEASE(publish_cfg, 0),
    CLOUD_OPT(publish_cfg, "timestamp-key", FERRY_OPT_STRLIST, timestamp_keys, "KEY",
              "then sign and publish the product's timestamp naming this release current "
              "(as 'ferry-cloud timestamp' would)",
              0),
    CLOUD_OPT(publish_cfg, "timestamp-expires", FERRY_OPT_DURATION, timestamp_expires, "DURATION",
              "with --timestamp-key: the timestamp's validity (default 1d)", 0),
    CLOUD_OPT_LOG_LEVEL(publish_cfg),
};

static const struct cloud_subcmd publish_cmd = {
    "publish",
    "--broker URL --fleet ID --store DIR --artifact FILE\n"
    "                           (--key KEY --version SEMVER --seq N --hw-model MODEL ... "
    "| --manifest FILE)",
    "Imports the artifact into the store, signs its release (or checks a signed\n"
    "envelope given with --manifest), keeps the envelope in the store's release\n"
    "catalogue and publishes it, retained, on ferry/v1/<fleet>/release/<product>:\n"
    "every node of the product line is offered it at once. Once the broker has\n"
    "acknowledged it, records it in the store as the product's current release\n"
    "(for 'ferry-cloud timestamp'), publishes the timestamp with --timestamp-key,\n"
    "and prints the release id.\n"
    "\n"
    "With --stage, or when the fleet's configuration requires rollouts\n"
    "('ferry-cloud fleet --require-rollout yes'), it is only stored and signed;\n"
    "'ferry-cloud rollout create --release ID' then offers it wave by wave.",
    publish_opts, sizeof(publish_opts) / sizeof(publish_opts[0])};

/* ---- arguments ----------------------------------------------------------- */

static bool any_sign_option(const struct publish_cfg *c)
{
    return c->key || c->version || c->seq != SEQ_UNSET || c->hw_models.n || c->hw_revisions.n ||
           c->product || c->component || c->media_type || c->module_args.n || c->nodes.n ||
           c->release || c->must_be_idle || c->window_start || c->window_end || c->max_deferral ||
           c->out || c->expires != DEFAULT_LIFETIME;
}

static enum ferry_err check_args(const struct publish_cfg *c, struct ferry_diag *d)
{
    enum ferry_err err = ferry_keeper_conf_check(&c->mqtt, d);
    if (err != FERRY_OK)
        return err;
    if (!ferry_id_valid(c->fleet))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--fleet '%.80s' is not a valid id", c->fleet);
    if (c->timeout <= 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--timeout must be at least 1s");
    if (c->manifest && any_sign_option(c))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--manifest is already signed: drop --key and the other sign options");
    if (c->manifest)
        return FERRY_OK;
    if (!c->key || !c->version || c->seq == SEQ_UNSET || c->hw_models.n == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "give either --manifest, or --key, --version, --seq and --hw-model");
    if (c->window_start > INT64_MAX || c->window_end > INT64_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--window-start/--window-end: out of range");
    return FERRY_OK;
}

/* ---- import -------------------------------------------------------------- */

struct progress {
    const char *path;
    unsigned last_decile;
};

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
    struct progress *p = arg;
    if (total < PROGRESS_MIN_BYTES || done > total)
        return;
    unsigned decile = (unsigned)(done * 10 / total);
    if (decile == p->last_decile)
        return;
    p->last_decile = decile;
    fprintf(stderr, "ferry-cloud publish: importing %s: %u%% (%" PRIu64 " of %" PRIu64 " bytes)\n",
            p->path, decile * 10, done, total);
}

/* The artifact as it is in the store. */
struct stored {
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t size;
    char path[PATH_MAX];
};

static enum ferry_err import_artifact(const struct publish_cfg *c, struct cloud_store *s,
                                      struct stored *st, struct ferry_diag *d)
{
    struct progress p = {c->artifact, 0};
    enum ferry_err err =
        cloud_store_import(s, c->artifact, on_progress, &p, st->sha256, &st->size, d);
    if (err == FERRY_OK && cloud_store_path(s, st->sha256, st->path, sizeof(st->path)) != FERRY_OK)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "--store %s: path too long", c->store);
    if (err == FERRY_OK) {
        char hex[FERRY_SHA256_HEX_LEN + 1];
        ferry_hex_encode(st->sha256, FERRY_SHA256_LEN, hex);
        ferry_log_info("stored %s as %s (%" PRIu64 " bytes)", c->artifact, hex, st->size);
    }
    return err;
}

/* The manifest must describe exactly the stored bytes; anything else would
 * make every gateway fetch, hash and reject it. */
static enum ferry_err check_artifact(const struct ferry_manifest *m, const struct stored *st,
                                     const char *what, const char *artifact, struct ferry_diag *d)
{
    if (m->size != st->size)
        return ferry_fail(d, FERRY_E_SIZE_MISMATCH,
                          "%s declares %" PRIu64 " bytes but %s has %" PRIu64, what, m->size,
                          artifact, st->size);
    if (memcmp(m->sha256, st->sha256, FERRY_SHA256_LEN) != 0)
        return ferry_fail(d, FERRY_E_HASH_MISMATCH, "%s: SHA-256 of %s differs from the manifest's",
                          what, artifact);
    return FERRY_OK;
}

/* ---- envelope ------------------------------------------------------------ */

/* Signs through the sign helper, which checks that the result verifies and
 * writes it atomically; the file is then read back as the exact payload. */
static enum ferry_err sign_envelope(const struct publish_cfg *c, const struct stored *st,
                                    uint8_t **env, size_t *env_len, struct ferry_manifest *m,
                                    struct ferry_diag *d)
{
    char tmp[PATH_MAX];
    const char *path = c->out;
    if (!path) {
        snprintf(tmp, sizeof(tmp), "%s/" CLOUD_STORE_TMP "/publish-%ld.envelope", c->store,
                 (long)getpid());
        path = tmp;
    }
    struct cloud_release rel = {
        .artifact = st->path,
        .version = c->version,
        .seq = c->seq,
        .hw_models = &c->hw_models,
        .hw_revisions = &c->hw_revisions,
        .product = c->product,
        .component = c->component,
        .media_type = c->media_type,
        .module_args = &c->module_args,
        .nodes = &c->nodes,
        .release_id = c->release,
        .issued_at = (int64_t)time(NULL),
        .lifetime = c->expires,
        .constraints = {.must_be_idle = c->must_be_idle,
                        .window_start = (int64_t)c->window_start,
                        .window_end = (int64_t)c->window_end,
                        .max_deferral = c->max_deferral},
    };
    struct cloud_key *k = NULL;
    enum ferry_err err = cloud_key_load(c->key, &k, d);
    if (err == FERRY_OK)
        err = cloud_sign_release(&rel, k, path, m, d);
    cloud_key_free(k);
    if (err == FERRY_OK)
        err = ferry_read_file(path, FERRY_ENVELOPE_MAX_BYTES, env, env_len, d);
    if (!c->out)
        unlink(tmp);
    if (err == FERRY_OK)
        err = check_artifact(m, st, "the signed manifest", c->artifact, d);
    return err;
}

/* An envelope signed elsewhere: its shape, its manifest's shape, and that it
 * is still valid. The signature is the devices' to check. Read before the
 * import, so a wrong file costs no copy into the store. */
static enum ferry_err load_envelope(const struct publish_cfg *c, uint8_t **env, size_t *env_len,
                                    struct ferry_manifest *m, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct ferry_envelope *e = NULL;
    enum ferry_err err = ferry_read_file(c->manifest, FERRY_ENVELOPE_MAX_BYTES, &buf, &len, d);
    if (err == FERRY_OK)
        err = ferry_envelope_parse(buf, len, &e, d);
    if (err == FERRY_OK)
        err = ferry_manifest_parse(e->manifest, e->manifest_len, m, d);
    if (err == FERRY_OK && strcmp(m->key_id, e->kid) != 0)
        err = ferry_fail(d, FERRY_E_MALFORMED, "manifest key_id %s differs from the envelope's %s",
                         m->key_id, e->kid);
    if (err == FERRY_OK && (int64_t)time(NULL) >= m->expires_at)
        err = ferry_fail(d, FERRY_E_EXPIRED, "release %s expired at %" PRId64, m->release_id,
                         m->expires_at);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, c->manifest);
    ferry_envelope_free(e);
    if (err == FERRY_OK) {
        *env = buf;
        *env_len = len;
    } else {
        free(buf);
    }
    return err;
}

/* ---- MQTT ---------------------------------------------------------------- */

/* One retained publish through the session keeper, until the broker
 * acknowledged it: the keeper connects (brokers in turn), and the publish
 * goes out at every up until a PUBACK. */
struct sender {
    struct ferry_loop *loop;
    struct ferry_keeper *keeper;
    const char *topic;
    const uint8_t *payload;
    size_t len;
    int token;  /* of the publish in flight, -1 when none */
    bool acked; /* the broker acknowledged it */
    bool fatal; /* a failure that retrying cannot mend */
    struct ferry_backoff backoff;
    uint64_t retry_timer;
    char last_error[FERRY_DIAG_MAX];
};

static void send_release(void *arg);

static void retry_later(struct sender *s)
{
    ferry_loop_cancel(s->loop, s->retry_timer);
    uint32_t ms = ferry_backoff_next(&s->backoff, ferry_random_u32());
    s->retry_timer = ferry_loop_timer(s->loop, ms, send_release, s);
}

static void give_up(struct sender *s, const char *why)
{
    snprintf(s->last_error, sizeof(s->last_error), "%s", why);
    s->fatal = true;
    ferry_loop_stop(s->loop);
}

static void send_release(void *arg)
{
    struct sender *s = arg;
    s->retry_timer = 0;
    if (!ferry_keeper_is_up(s->keeper))
        return; /* the next on_up sends it */
    enum ferry_err err =
        ferry_keeper_publish(s->keeper, s->topic, s->payload, s->len, 1, true, &s->token);
    if (err == FERRY_OK) {
        ferry_log_debug("sent to %s, waiting for the broker's acknowledgement", s->topic);
    } else if (err == FERRY_E_BUSY) {
        s->token = -1;
        retry_later(s);
    } else {
        char why[FERRY_DIAG_MAX];
        snprintf(why, sizeof(why), "publishing %zu bytes to %s failed: %s", s->len, s->topic,
                 ferry_strerror(err));
        give_up(s, why);
    }
}

static void on_up(void *arg, const struct ferry_keeper_link *link)
{
    struct sender *s = arg;
    ferry_log_info("connected to %s", link->url);
    ferry_backoff_reset(&s->backoff);
    send_release(s);
}

static void on_down(void *arg, const char *reason)
{
    struct sender *s = arg;
    snprintf(s->last_error, sizeof(s->last_error), "connection lost: %s", reason);
    s->token = -1;
}

static void on_published(void *arg, int token, bool ok, const char *reason)
{
    struct sender *s = arg;
    if (token != s->token)
        return;
    if (ok) {
        s->acked = true;
        ferry_loop_stop(s->loop);
        return;
    }
    snprintf(s->last_error, sizeof(s->last_error), "the broker refused it: %s",
             reason[0] ? reason : "no reason given");
    ferry_log_warn("%s; retrying", s->last_error);
    s->token = -1;
    retry_later(s);
}

static void on_timeout(void *arg)
{
    struct sender *s = arg;
    ferry_loop_stop(s->loop);
}

/* Runs the loop until the retained publish is acknowledged, a fatal error,
 * the timeout or a signal. */
static enum ferry_err run_sender(struct sender *s, int64_t timeout, struct ferry_diag *d)
{
    snprintf(s->last_error, sizeof(s->last_error), "no answer from any broker");
    ferry_keeper_start(s->keeper);
    uint64_t timer = ferry_loop_timer(s->loop, (uint64_t)timeout * 1000u, on_timeout, s);
    int sig = ferry_loop_run(s->loop);
    ferry_loop_cancel(s->loop, timer);
    ferry_loop_cancel(s->loop, s->retry_timer);
    if (s->acked)
        return FERRY_OK;
    if (sig)
        return ferry_fail(d, FERRY_E_IO, "interrupted by signal %d before the broker acknowledged",
                          sig);
    if (s->fatal)
        return ferry_fail(d, FERRY_E_IO, "%s", s->last_error);
    return ferry_fail(d, FERRY_E_BUSY, "no broker acknowledged %s within %" PRId64 "s (%s)",
                      s->topic, timeout, s->last_error);
}

enum ferry_err cloud_publish_retained(const struct ferry_keeper_conf *mqtt, const char *client_id,
                                      int64_t timeout, const char *topic, const uint8_t *payload,
                                      size_t len, struct ferry_diag *d)
{
    char default_id[64];
    snprintf(default_id, sizeof(default_id), "ferry-cloud-publish-%ld", (long)getpid());
    struct sender s = {.topic = topic,
                       .payload = payload,
                       .len = len,
                       .token = -1,
                       .backoff = {.min_ms = RETRY_MIN_MS, .max_ms = RETRY_MAX_MS}};
    /* A document nobody could fetch later is no use: the broker must keep
     * retained messages and take this one whole. */
    struct ferry_keeper_opts ko = {
        .conf = mqtt,
        .client_id = client_id ? client_id : default_id,
        .name = "publish",
        .needs = {.qos1 = true, .retain = true, .max_packet = ferry_mqtt_packet_size(topic, len)},
        .backoff_min_ms = RETRY_MIN_MS,
        .backoff_max_ms = RETRY_MAX_MS,
    };
    struct ferry_keeper_events ev = {
        .arg = &s, .on_up = on_up, .on_down = on_down, .on_published = on_published};
    enum ferry_err err = ferry_loop_new(&s.loop, d);
    if (err == FERRY_OK)
        err = ferry_keeper_new(s.loop, &ko, &ev, &s.keeper, d);
    if (err == FERRY_OK)
        err = run_sender(&s, timeout, d);
    ferry_keeper_free(s.keeper);
    ferry_loop_free(s.loop);
    return err;
}

static enum ferry_err publish_envelope(const struct publish_cfg *c, const struct ferry_manifest *m,
                                       const uint8_t *env, size_t len, struct ferry_diag *d)
{
    char topic[FERRY_TOPIC_MAX];
    if (ferry_topic(topic, sizeof(topic), FERRY_TOPIC_RELEASE, c->fleet, m->product, NULL) !=
        FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "no release topic for fleet '%s', product '%s'",
                          c->fleet, m->product);
    enum ferry_err err =
        cloud_publish_retained(&c->mqtt, c->client_id, c->timeout, topic, env, len, d);
    if (err == FERRY_OK)
        ferry_log_info("published release %s (version %s, seq %" PRIu64 ") on %s", m->release_id,
                       m->version, m->seq, topic);
    return err;
}

/* The product's timestamp, now naming the release just published. */
static enum ferry_err publish_timestamp(const struct publish_cfg *c, const char *product,
                                        struct ferry_diag *d)
{
    struct cloud_key *keys[FERRY_SIGNED_MAX_SIGS] = {0};
    char topic[FERRY_TOPIC_MAX];
    char *doc = NULL;
    size_t len = 0;
    enum ferry_err err = FERRY_OK;
    if (c->timestamp_keys.n > FERRY_SIGNED_MAX_SIGS)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "--timestamp-key: at most %d",
                         FERRY_SIGNED_MAX_SIGS);
    for (size_t i = 0; err == FERRY_OK && i < c->timestamp_keys.n; i++)
        err = cloud_key_load(c->timestamp_keys.v[i], &keys[i], d);
    if (err == FERRY_OK && ferry_topic(topic, sizeof(topic), FERRY_TOPIC_META_TIMESTAMP, c->fleet,
                                       product, NULL) != FERRY_OK)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "no timestamp topic for product '%s'", product);
    if (err == FERRY_OK)
        err = cloud_timestamp_issue(c->store, product, keys, c->timestamp_keys.n, NULL,
                                    (int64_t)time(NULL), c->timestamp_expires, &doc, &len, NULL, d);
    if (err == FERRY_OK)
        err = cloud_timestamp_record(c->store, product, doc, len, d);
    if (err == FERRY_OK)
        err = cloud_publish_retained(&c->mqtt, c->client_id, c->timeout, topic,
                                     (const uint8_t *)doc, len, d);
    if (err == FERRY_OK)
        ferry_log_info("published the timestamp of product %s on %s", product, topic);
    else
        ferry_diag_prefix(d, "the release is out, its timestamp is not");
    for (size_t i = 0; i < FERRY_SIGNED_MAX_SIGS; i++)
        cloud_key_free(keys[i]);
    free(doc);
    return err;
}

/* ---- command ------------------------------------------------------------- */

static int publish_run(const struct publish_cfg *c)
{
    struct ferry_diag d = {{0}};
    struct cloud_store *store = NULL;
    struct stored st;
    struct ferry_manifest m;
    uint8_t *env = NULL;
    size_t env_len = 0;
    enum ferry_err err = c->manifest ? load_envelope(c, &env, &env_len, &m, &d) : FERRY_OK;
    if (err == FERRY_OK)
        err = cloud_store_open(c->store, &store, &d);
    if (err == FERRY_OK)
        err = import_artifact(c, store, &st, &d);
    if (err == FERRY_OK)
        err = c->manifest ? check_artifact(&m, &st, c->manifest, c->artifact, &d)
                          : sign_envelope(c, &st, &env, &env_len, &m, &d);
    struct ferry_fleet_config fleet = {false};
    if (err == FERRY_OK)
        err = cloud_store_put_release(store, m.release_id, env, env_len, &d);
    if (err == FERRY_OK)
        err = cloud_store_get_fleet(store, c->fleet, &fleet, &d);
    cloud_store_free(store);
    bool stage = c->stage || fleet.require_rollout;
    /* A staged release is nobody's current release yet: its rollout offers
     * it, and a timestamp naming it current comes with 'ferry-cloud
     * timestamp' once the operator wants it so. */
    if (err == FERRY_OK && !stage)
        err = publish_envelope(c, &m, env, env_len, &d);
    if (err == FERRY_OK && !stage)
        err = cloud_release_record(c->store, m.product, env, env_len, &d);
    if (err == FERRY_OK && !stage && c->timestamp_keys.n)
        err = publish_timestamp(c, m.product, &d);
    free(env);
    if (err != FERRY_OK)
        return cloud_subcmd_report(&publish_cmd, &d, err, CLOUD_EXIT_FAILED);
    if (stage)
        fprintf(stderr,
                "ferry-cloud publish: release %s is staged, not offered to any node%s; offer it "
                "with 'ferry-cloud rollout create --release %s ...'\n",
                m.release_id, c->stage ? "" : " (the fleet requires a rollout)", m.release_id);
    printf("%s\n", m.release_id);
    return fflush(stdout) == 0 ? 0 : CLOUD_EXIT_FAILED;
}

int cloud_cmd_publish(int argc, char **argv)
{
    struct publish_cfg cfg = {
        .timeout = DEFAULT_TIMEOUT_S,
        .seq = SEQ_UNSET,
        .expires = DEFAULT_LIFETIME,
        .timestamp_expires = CLOUD_TIMESTAMP_DEFAULT_LIFETIME,
        .log_level = FERRY_LOG_WARN,
    };
    struct ferry_diag d = {{0}};
    int status = cloud_subcmd_parse(&publish_cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0) {
        enum ferry_err err = check_args(&cfg, &d);
        status = err == FERRY_OK ? publish_run(&cfg)
                                 : cloud_subcmd_report(&publish_cmd, &d, err, CLOUD_EXIT_USAGE);
    }
    ferry_opts_free(publish_opts, publish_cmd.nopts, &cfg);
    return status;
}
