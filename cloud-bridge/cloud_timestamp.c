#include "cloud_timestamp.h"

#include "cloud_publish.h"
#include "cloud_subcmd.h"
#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_names.h"
#include "ferry_signed.h"
#include "ferry_trust.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT_S 30

/* ---- the next timestamp ---------------------------------------------------- */

/* The release env carries, as a current entry of product's. */
static enum ferry_err entry_of(const char *product, const uint8_t *env, size_t env_len,
                               struct ferry_ts_release *r, struct ferry_diag *d)
{
    struct ferry_envelope *e = NULL;
    struct ferry_manifest m;
    enum ferry_err err = ferry_envelope_parse(env, env_len, &e, d);
    if (err == FERRY_OK)
        err = ferry_manifest_parse(e->manifest, e->manifest_len, &m, d);
    if (err == FERRY_OK && strcmp(m.product, product) != 0)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "release %s is of product '%s', not '%s'",
                         m.release_id, m.product, product);
    if (err == FERRY_OK) {
        memset(r, 0, sizeof(*r));
        snprintf(r->release, sizeof(r->release), "%s", m.release_id);
        r->seq = m.seq;
        ferry_sha256(e->manifest, e->manifest_len, r->sha256);
    }
    ferry_envelope_free(e);
    return err;
}

enum ferry_err cloud_offered_of(const char *product, uint64_t id, enum ferry_rollout_state s,
                                const uint8_t *env, size_t env_len, const uint8_t *revert,
                                size_t revert_len, struct ferry_offered *out, struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    if (!ferry_id_valid(product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "'%s' is not a product identifier", product);
    snprintf(out->product, sizeof(out->product), "%s", product);
    snprintf(out->state, sizeof(out->state), "%s", ferry_rollout_state_name(s));
    out->rollout = id;
    const uint8_t *which = NULL;
    size_t len = 0;
    switch (s) {
    case FERRY_ROLLOUT_SCHEDULED:
    case FERRY_ROLLOUT_RUNNING:
    case FERRY_ROLLOUT_PAUSED:
    case FERRY_ROLLOUT_COMPLETED:
        which = env;
        len = env_len;
        break;
    case FERRY_ROLLOUT_HALTED:
        which = revert;
        len = revert_len;
        break;
    case FERRY_ROLLOUT_CANCELLED:
    case FERRY_ROLLOUT__COUNT:
        break;
    }
    if (!which)
        return FERRY_OK;
    enum ferry_err err = entry_of(product, which, len, &out->r[0], d);
    out->n = err == FERRY_OK;
    return err;
}

static void add_withdrawn(struct ferry_timestamp *t, const char *release)
{
    if (ferry_timestamp_withdraws(t, release))
        return;
    if (t->nwithdrawn == FERRY_TIMESTAMP_MAX_WITHDRAWN) {
        memmove(t->withdrawn[0], t->withdrawn[1],
                (FERRY_TIMESTAMP_MAX_WITHDRAWN - 1) * sizeof(t->withdrawn[0]));
        t->nwithdrawn--;
    }
    snprintf(t->withdrawn[t->nwithdrawn++], sizeof(t->withdrawn[0]), "%s", release);
}

enum ferry_err cloud_timestamp_next(const char *product, const struct ferry_timestamp *prev,
                                    const uint8_t *env, size_t env_len,
                                    const struct ferry_offered *offered,
                                    const struct ferry_strlist *withdraw, int64_t now,
                                    int64_t lifetime, struct ferry_timestamp *out,
                                    struct ferry_diag *d)
{
    if (!ferry_id_valid(product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--product: '%s' is not an identifier", product);
    if (now < 0 || lifetime <= 0 || lifetime > INT64_MAX - now)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--expires: must be at least 1s");
    struct ferry_timestamp t;
    memset(&t, 0, sizeof(t));
    snprintf(t.product, sizeof(t.product), "%s", product);
    t.version = (uint64_t)now;
    if (prev && prev->version >= t.version)
        t.version = prev->version + 1;
    t.issued_at = now;
    t.expires_at = now + lifetime;
    for (size_t i = 0; prev && i < prev->nwithdrawn; i++)
        add_withdrawn(&t, prev->withdrawn[i]);
    for (size_t i = 0; withdraw && i < withdraw->n; i++) {
        if (!ferry_id_valid(withdraw->v[i]))
            return ferry_fail(d, FERRY_E_INVALID_ARG, "release id '%s' is not an identifier",
                              withdraw->v[i]);
        add_withdrawn(&t, withdraw->v[i]);
    }
    struct ferry_ts_release cur[1 + FERRY_TIMESTAMP_MAX_CURRENT];
    size_t ncur = 0;
    if (env) {
        enum ferry_err err = entry_of(product, env, env_len, &cur[ncur++], d);
        if (err != FERRY_OK) {
            ferry_diag_prefix(d, "the recorded current release");
            return err;
        }
    }
    if (offered && strcmp(offered->product, product) != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "the rollout's record is for product '%s'",
                          offered->product);
    for (size_t i = 0; offered && i < offered->n && i < FERRY_TIMESTAMP_MAX_CURRENT; i++)
        cur[ncur++] = offered->r[i];
    for (size_t i = 0; i < ncur; i++) {
        if (ferry_timestamp_withdraws(&t, cur[i].release))
            continue;
        enum ferry_err err = ferry_timestamp_add_current(&t, &cur[i], d);
        if (err != FERRY_OK)
            return err;
    }
    *out = t;
    return FERRY_OK;
}

bool cloud_timestamp_unchanged(const struct ferry_timestamp *prev,
                               const struct ferry_timestamp *next, int64_t now)
{
    if (prev->ncurrent != next->ncurrent || prev->nwithdrawn != next->nwithdrawn ||
        prev->expires_at - now <= (prev->expires_at - prev->issued_at) / 2 ||
        strcmp(prev->product, next->product) != 0)
        return false;
    for (size_t i = 0; i < prev->ncurrent; i++) {
        if (strcmp(prev->current[i].release, next->current[i].release) != 0 ||
            memcmp(prev->current[i].sha256, next->current[i].sha256, FERRY_SHA256_LEN) != 0)
            return false;
    }
    for (size_t i = 0; i < prev->nwithdrawn; i++) {
        if (strcmp(prev->withdrawn[i], next->withdrawn[i]) != 0)
            return false;
    }
    return true;
}

/* ---- state in the store ---------------------------------------------------- */

static enum ferry_err state_path(const char *store_dir, const char *sub, const char *product,
                                 const char *ext, char *out, size_t cap, struct ferry_diag *d)
{
    if (!ferry_id_valid(product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "'%s' is not a product identifier", product);
    int n = snprintf(out, cap, "%s/%s/%s%s", store_dir, sub, product, ext);
    if (n < 0 || (size_t)n >= cap)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--store: path too long");
    return FERRY_OK;
}

static enum ferry_err save_state(const char *store_dir, const char *sub, const char *product,
                                 const char *ext, const void *buf, size_t len, struct ferry_diag *d)
{
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", store_dir, sub);
    enum ferry_err err = state_path(store_dir, sub, product, ext, path, sizeof(path), d);
    if (err == FERRY_OK)
        err = ferry_mkdir_p(dir, 0755, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(path, buf, len, 0644, d);
    return err;
}

/* The file's bytes, or *buf NULL when it does not exist. */
static enum ferry_err load_state(const char *store_dir, const char *sub, const char *product,
                                 const char *ext, size_t max, uint8_t **buf, size_t *len,
                                 struct ferry_diag *d)
{
    char path[PATH_MAX];
    *buf = NULL;
    *len = 0;
    enum ferry_err err = state_path(store_dir, sub, product, ext, path, sizeof(path), d);
    if (err == FERRY_OK)
        err = ferry_read_file(path, max, buf, len, d);
    if (err == FERRY_E_NOT_FOUND) {
        *buf = NULL;
        return FERRY_OK;
    }
    return err;
}

#define RELEASES_SUB  "releases"
#define TIMESTAMP_SUB "meta/timestamp"
#define OFFERED_SUB   "meta/offered"

enum ferry_err cloud_release_record(const char *store_dir, const char *product, const uint8_t *env,
                                    size_t len, struct ferry_diag *d)
{
    return save_state(store_dir, RELEASES_SUB, product, ".env", env, len, d);
}

enum ferry_err cloud_offered_record(const char *store_dir, const struct ferry_offered *o,
                                    bool *changed, struct ferry_diag *d)
{
    char *doc = NULL;
    size_t len = 0;
    uint8_t *old = NULL;
    size_t old_len = 0;
    *changed = false;
    enum ferry_err err = ferry_offered_encode(o, &doc, &len, d);
    if (err == FERRY_OK)
        err = load_state(store_dir, OFFERED_SUB, o->product, ".json", FERRY_TIMESTAMP_MAX_BYTES,
                         &old, &old_len, d);
    if (err == FERRY_E_TOO_LARGE) /* not ours to keep: replaced */
        err = FERRY_OK;
    if (err == FERRY_OK && !(old && old_len == len && memcmp(old, doc, len) == 0)) {
        err = save_state(store_dir, OFFERED_SUB, o->product, ".json", doc, len, d);
        *changed = err == FERRY_OK;
    }
    free(old);
    free(doc);
    return err;
}

/* What the product's rollout offers, as the controller recorded it; none
 * when there is no record. */
static enum ferry_err load_offered(const char *store_dir, const char *product,
                                   struct ferry_offered *o, bool *have, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    *have = false;
    enum ferry_err err = load_state(store_dir, OFFERED_SUB, product, ".json",
                                    FERRY_TIMESTAMP_MAX_BYTES, &buf, &len, d);
    if (err == FERRY_OK && buf)
        err = ferry_offered_parse(buf, len, o, d);
    if (err == FERRY_OK && buf && strcmp(o->product, product) != 0)
        err = ferry_fail(d, FERRY_E_CORRUPT, "it is for product '%s'", o->product);
    if (err == FERRY_OK)
        *have = buf != NULL;
    else
        ferry_diag_prefix(d, "--store: the record of what the rollout offers");
    free(buf);
    return err;
}

/* The last timestamp signed for product, read back from the store (our own
 * file: its signature is not checked here, the devices check it). */
static enum ferry_err load_previous(const char *store_dir, const char *product,
                                    struct ferry_timestamp *prev, bool *have, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct ferry_signed *s = NULL;
    *have = false;
    enum ferry_err err = load_state(store_dir, TIMESTAMP_SUB, product, ".json",
                                    FERRY_SIGNED_MAX_BYTES, &buf, &len, d);
    if (err == FERRY_OK && buf)
        err = ferry_signed_parse(buf, len, FERRY_TIMESTAMP_MAX_BYTES, "timestamp", &s, d);
    if (err == FERRY_OK && s)
        err = ferry_timestamp_parse(s->body, s->body_len, prev, d);
    if (err == FERRY_OK && s && strcmp(prev->product, product) != 0)
        err = ferry_fail(d, FERRY_E_CORRUPT, "the saved timestamp is for product '%s'",
                         prev->product);
    if (err == FERRY_OK)
        *have = s != NULL;
    else
        ferry_diag_prefix(d, "--store: the last timestamp");
    ferry_signed_free(s);
    free(buf);
    return err;
}

static enum ferry_err sign_doc(const struct ferry_timestamp *t, struct cloud_key *const *keys,
                               size_t nkeys, char **doc, size_t *len, struct ferry_diag *d)
{
    char *body = NULL;
    size_t body_len = 0;
    struct ferry_signature sigs[FERRY_SIGNED_MAX_SIGS];
    if (nkeys < 1 || nkeys > FERRY_SIGNED_MAX_SIGS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--key: give 1..%d timestamp keys",
                          FERRY_SIGNED_MAX_SIGS);
    enum ferry_err err = ferry_timestamp_encode(t, &body, &body_len, d);
    for (size_t i = 0; err == FERRY_OK && i < nkeys; i++) {
        snprintf(sigs[i].kid, sizeof(sigs[i].kid), "%s", cloud_key_kid(keys[i]));
        err = cloud_key_sign(keys[i], (const uint8_t *)body, body_len, sigs[i].sig, d);
    }
    if (err == FERRY_OK)
        err = ferry_signed_encode((const uint8_t *)body, body_len, sigs, nkeys, doc, len, d);
    free(body);
    return err;
}

enum ferry_err cloud_timestamp_issue(const char *store_dir, const char *product,
                                     struct cloud_key *const *keys, size_t nkeys,
                                     const struct ferry_strlist *withdraw, int64_t now,
                                     int64_t lifetime, char **doc, size_t *len,
                                     struct ferry_timestamp *ts, struct ferry_diag *d)
{
    struct ferry_timestamp prev, next;
    struct ferry_offered offered;
    bool have_prev = false, have_offered = false;
    uint8_t *env = NULL;
    size_t env_len = 0;
    enum ferry_err err = load_previous(store_dir, product, &prev, &have_prev, d);
    if (err == FERRY_OK)
        err = load_state(store_dir, RELEASES_SUB, product, ".env", FERRY_ENVELOPE_MAX_BYTES, &env,
                         &env_len, d);
    if (err == FERRY_OK)
        err = load_offered(store_dir, product, &offered, &have_offered, d);
    if (err == FERRY_OK)
        err =
            cloud_timestamp_next(product, have_prev ? &prev : NULL, env, env_len,
                                 have_offered ? &offered : NULL, withdraw, now, lifetime, &next, d);
    free(env);
    if (err == FERRY_OK)
        err = sign_doc(&next, keys, nkeys, doc, len, d);
    if (err == FERRY_OK && ts)
        *ts = next;
    return err;
}

enum ferry_err cloud_timestamp_record(const char *store_dir, const char *product, const char *doc,
                                      size_t len, struct ferry_diag *d)
{
    return save_state(store_dir, TIMESTAMP_SUB, product, ".json", doc, len, d);
}

/* ---- the commands ---------------------------------------------------------- */

struct ts_cfg {
    struct ferry_keeper_conf mqtt;
    char *fleet;
    char *store;
    struct ferry_strlist keys;
    char *product;
    int64_t expires;
    struct ferry_strlist withdraw;
    char *release; /* withdraw: the release */
    char *trust;
    bool if_changed;
    char *client_id;
    int64_t timeout;
    enum ferry_log_level log_level;
};

#define TS_OPTS_COMMON                                                                             \
    CLOUD_OPT_MQTT(ts_cfg),                                                                        \
        CLOUD_OPT(ts_cfg, "fleet", FERRY_OPT_STR, fleet, "ID", "fleet to publish to",              \
                  FERRY_OPT_REQUIRED),                                                             \
        CLOUD_OPT(ts_cfg, "store", FERRY_OPT_STR, store, "DIR",                                    \
                  "the store 'ferry-cloud publish' records current releases in",                   \
                  FERRY_OPT_REQUIRED),                                                             \
        CLOUD_OPT(ts_cfg, "key", FERRY_OPT_STRLIST, keys, "KEY",                                   \
                  "timestamp-signing private key (PEM); repeat for a threshold above 1",           \
                  FERRY_OPT_REQUIRED),                                                             \
        CLOUD_OPT(ts_cfg, "product", FERRY_OPT_STR, product, "NAME",                               \
                  "product line (default " FERRY_DEFAULT_PRODUCT ")", 0),                          \
        CLOUD_OPT(ts_cfg, "expires", FERRY_OPT_DURATION, expires, "DURATION",                      \
                  "validity from now (default 1d); re-sign well before that", 0),                  \
        CLOUD_OPT(ts_cfg, "trust", FERRY_OPT_STR, trust, "ROOT",                                   \
                  "root document: check the timestamp verifies under it before publishing", 0),    \
        CLOUD_OPT(ts_cfg, "client-id", FERRY_OPT_STR, client_id, "ID",                             \
                  "MQTT client id (default ferry-cloud-publish-<pid>)", 0),                        \
        CLOUD_OPT(ts_cfg, "timeout", FERRY_OPT_DURATION, timeout, "DURATION",                      \
                  "give up when the broker has not acknowledged by then (default 30s)", 0),        \
        CLOUD_OPT_LOG_LEVEL(ts_cfg)

static const struct ferry_opt timestamp_opts[] = {
    TS_OPTS_COMMON,
    CLOUD_OPT(ts_cfg, "if-changed", FERRY_OPT_BOOL, if_changed, NULL,
              "publish only if what it names changed or half the last one's lifetime is gone "
              "(what the timer runs)",
              0),
    CLOUD_OPT(ts_cfg, "withdraw", FERRY_OPT_STRLIST, withdraw, "RELEASE",
              "also withdraw this release id (repeatable)", 0),
};

static const struct ferry_opt withdraw_opts[] = {
    TS_OPTS_COMMON,
    CLOUD_OPT(ts_cfg, "release", FERRY_OPT_STR, release, "RELEASE", "the release id to withdraw",
              FERRY_OPT_REQUIRED),
};

static const struct cloud_subcmd timestamp_cmd = {
    "timestamp",
    "--broker URL --fleet ID --store DIR --key KEY [--product NAME]\n"
    "                             [--expires DURATION] [--withdraw RELEASE ...]",
    "Signs a new timestamp for the product line: its current releases (the one\n"
    "'publish' last put on the broker, or a whole-line rollout completed with,\n"
    "and what the line's rollout offers now, as 'serve' records it in the\n"
    "store), its withdrawn releases, a version above\n"
    "every earlier one and an expiry. Publishes it retained on\n"
    "ferry/v1/<fleet>/timestamp/<product>. Run it from a timer, well inside\n"
    "--expires: nodes install nothing of the line while its timestamp is expired.",
    timestamp_opts, sizeof(timestamp_opts) / sizeof(timestamp_opts[0])};

static const struct cloud_subcmd withdraw_cmd = {
    "withdraw",
    "--broker URL --fleet ID --store DIR --key KEY --release RELEASE\n"
    "                            [--product NAME] [--expires DURATION]",
    "Withdraws a release: publishes a new timestamp that lists it as withdrawn\n"
    "(and names nothing current if it was the current release). Gateways stop\n"
    "offering it; nodes that have not started installing it drop it. Roll\n"
    "forward with a new release (a higher --seq) to replace it.",
    withdraw_opts, sizeof(withdraw_opts) / sizeof(withdraw_opts[0])};

/* With --trust: the timestamp must verify under that root, as a node's
 * would, before it reaches the broker. */
static enum ferry_err check_under_root(const char *root_path, const char *doc, size_t len,
                                       int64_t now, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t blen = 0;
    struct ferry_trust *t = NULL;
    bool changed = false;
    enum ferry_err err = ferry_read_file(root_path, FERRY_SIGNED_MAX_BYTES, &buf, &blen, d);
    if (err == FERRY_OK)
        err = ferry_trust_new(buf, blen, 1, &t, d);
    if (err == FERRY_OK)
        err =
            ferry_trust_update_timestamp(t, (const uint8_t *)doc, len, now, 0, false, &changed, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, root_path);
    ferry_trust_free(t);
    free(buf);
    return err;
}

static enum ferry_err load_keys(const struct ferry_strlist *paths, struct cloud_key **keys,
                                struct ferry_diag *d)
{
    if (paths->n > FERRY_SIGNED_MAX_SIGS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--key: at most %d", FERRY_SIGNED_MAX_SIGS);
    for (size_t i = 0; i < paths->n; i++) {
        enum ferry_err err = cloud_key_load(paths->v[i], &keys[i], d);
        if (err != FERRY_OK)
            return err;
    }
    return FERRY_OK;
}

static void print_timestamp(const struct ferry_timestamp *t)
{
    char cur[FERRY_TIMESTAMP_MAX_CURRENT * (FERRY_NAME_MAX + 1) + 8];
    printf("timestamp: product %s version %" PRIu64 " expires %" PRId64 " current %s", t->product,
           t->version, t->expires_at, ferry_timestamp_current_str(t, cur, sizeof(cur)));
    for (size_t i = 0; i < t->nwithdrawn; i++)
        printf("%s%s", i ? "," : " withdrawn ", t->withdrawn[i]);
    printf("\n");
}

static int run(const struct cloud_subcmd *cmd, struct ts_cfg *c)
{
    struct ferry_diag d = {{0}};
    struct cloud_key *keys[FERRY_SIGNED_MAX_SIGS] = {0};
    struct ferry_timestamp ts;
    char topic[FERRY_TOPIC_MAX];
    char *doc = NULL;
    size_t len = 0;
    const char *product = c->product ? c->product : FERRY_DEFAULT_PRODUCT;
    int64_t now = (int64_t)time(NULL);
    struct ferry_strlist one = {.v = &c->release, .n = 1};
    enum ferry_err err = ferry_keeper_conf_check(&c->mqtt, &d);
    if (err == FERRY_OK && !ferry_id_valid(c->fleet))
        err = ferry_fail(&d, FERRY_E_INVALID_ARG, "--fleet '%.80s' is not a valid id", c->fleet);
    if (err == FERRY_OK && c->timeout <= 0)
        err = ferry_fail(&d, FERRY_E_INVALID_ARG, "--timeout must be at least 1s");
    if (err == FERRY_OK && ferry_topic(topic, sizeof(topic), FERRY_TOPIC_META_TIMESTAMP, c->fleet,
                                       product, NULL) != FERRY_OK)
        err = ferry_fail(&d, FERRY_E_INVALID_ARG, "--product: '%s' is not an identifier", product);
    if (err != FERRY_OK)
        return cloud_subcmd_report(cmd, &d, err, CLOUD_EXIT_USAGE);
    err = load_keys(&c->keys, keys, &d);
    if (err == FERRY_OK)
        err = cloud_timestamp_issue(c->store, product, keys, c->keys.n,
                                    c->release ? &one : &c->withdraw, now, c->expires, &doc, &len,
                                    &ts, &d);
    struct ferry_timestamp prev;
    bool have_prev = false, skip = false;
    if (err == FERRY_OK && c->if_changed)
        err = load_previous(c->store, product, &prev, &have_prev, &d);
    /* The timer's run that would change nothing nodes need. */
    skip = err == FERRY_OK && have_prev && cloud_timestamp_unchanged(&prev, &ts, now);
    if (err == FERRY_OK && !skip && c->trust)
        err = check_under_root(c->trust, doc, len, now, &d);
    /* Recorded before it is published: a withdrawal is never lost. */
    if (err == FERRY_OK && !skip)
        err = cloud_timestamp_record(c->store, product, doc, len, &d);
    if (err == FERRY_OK && !skip)
        err = cloud_publish_retained(&c->mqtt, c->client_id, c->timeout, topic,
                                     (const uint8_t *)doc, len, &d);
    for (size_t i = 0; i < FERRY_SIGNED_MAX_SIGS; i++)
        cloud_key_free(keys[i]);
    free(doc);
    if (err != FERRY_OK)
        return cloud_subcmd_report(cmd, &d, err, CLOUD_EXIT_FAILED);
    if (skip)
        printf("timestamp: product %s version %" PRIu64 " unchanged, fresh until %" PRId64 "\n",
               product, prev.version, prev.expires_at);
    else
        print_timestamp(&ts);
    return fflush(stdout) == 0 ? 0 : CLOUD_EXIT_FAILED;
}

static int command(const struct cloud_subcmd *cmd, int argc, char **argv)
{
    struct ts_cfg cfg = {
        .expires = CLOUD_TIMESTAMP_DEFAULT_LIFETIME,
        .timeout = DEFAULT_TIMEOUT_S,
        .log_level = FERRY_LOG_WARN,
    };
    int status = cloud_subcmd_parse(cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0)
        status = run(cmd, &cfg);
    ferry_opts_free(cmd->opts, cmd->nopts, &cfg);
    return status;
}

int cloud_cmd_timestamp(int argc, char **argv)
{
    return command(&timestamp_cmd, argc, argv);
}

int cloud_cmd_withdraw(int argc, char **argv)
{
    return command(&withdraw_cmd, argc, argv);
}
