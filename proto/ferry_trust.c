#include "ferry_trust.h"

#include "ferry_hex.h"
#include "ferry_signed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_entry {
    struct ferry_timestamp ts;
    uint8_t *doc; /* the signed document as received */
    size_t doc_len;
};

struct ferry_trust {
    bool has_root; /* false: the initial keyring, version 0 */
    struct ferry_root root;
    uint8_t *root_doc;
    size_t root_doc_len;
    struct ferry_keyring *root_keys; /* the root role's, with the revoked ids */
    unsigned root_threshold;
    struct ferry_keyring *release; /* stable: handed out to verifiers */
    struct ferry_keyring *ts_keys;
    bool ts_role;
    unsigned ts_threshold;
    size_t max_products, nts;
    struct ts_entry *ts;
};

static uint8_t *dup_bytes(const uint8_t *buf, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (p)
        memcpy(p, buf, len);
    return p;
}

static void drop_timestamps(struct ferry_trust *t)
{
    for (size_t i = 0; i < t->nts; i++) {
        free(t->ts[i].doc);
        memset(&t->ts[i], 0, sizeof(t->ts[i]));
    }
    t->nts = 0;
}

void ferry_trust_free(struct ferry_trust *t)
{
    if (!t)
        return;
    drop_timestamps(t);
    free(t->ts);
    free(t->root_doc);
    ferry_keyring_free(t->root_keys);
    ferry_keyring_free(t->release);
    ferry_keyring_free(t->ts_keys);
    free(t);
}

/* A parsed, checked root and its keyrings, before it replaces anything. */
struct candidate {
    struct ferry_root root;
    struct ferry_keyring *root_keys, *release, *ts_keys;
};

static void candidate_free(struct candidate *c)
{
    ferry_keyring_free(c->root_keys);
    ferry_keyring_free(c->release);
    ferry_keyring_free(c->ts_keys);
}

/* Parses the signed bytes of s as a root, builds its keyrings and checks
 * that a threshold of its own root keys signed it. */
static enum ferry_err candidate_of(const struct ferry_signed *s, struct candidate *c,
                                   struct ferry_diag *d)
{
    memset(c, 0, sizeof(*c));
    enum ferry_err err = ferry_root_parse(s->body, s->body_len, &c->root, d);
    if (err != FERRY_OK)
        return err;
    c->root_keys = ferry_keyring_new();
    c->release = ferry_keyring_new();
    c->ts_keys = ferry_keyring_new();
    if (!c->root_keys || !c->release || !c->ts_keys)
        return ferry_fail(d, FERRY_E_NOMEM, "root: out of memory");
    err = ferry_root_role_keyring(&c->root, FERRY_ROLE_ROOT, c->root_keys, d);
    if (err == FERRY_OK)
        err = ferry_root_role_keyring(&c->root, FERRY_ROLE_RELEASE, c->release, d);
    if (err == FERRY_OK)
        err = ferry_root_role_keyring(&c->root, FERRY_ROLE_TIMESTAMP, c->ts_keys, d);
    if (err == FERRY_OK) {
        char what[64];
        snprintf(what, sizeof(what), "root version %" PRIu64 ": its own root keys",
                 c->root.version);
        err =
            ferry_signed_check(s, c->root_keys, c->root.roles[FERRY_ROLE_ROOT].threshold, what, d);
    }
    return err;
}

/* Makes c the current root (c's keyrings move into t). */
static enum ferry_err adopt(struct ferry_trust *t, struct candidate *c, const uint8_t *doc,
                            size_t doc_len, struct ferry_diag *d)
{
    uint8_t *copy = dup_bytes(doc, doc_len);
    if (!copy)
        return ferry_fail(d, FERRY_E_NOMEM, "root: out of memory");
    const struct ferry_root_role *old_ts =
        t->has_root ? &t->root.roles[FERRY_ROLE_TIMESTAMP] : NULL;
    if (!old_ts || !ferry_root_role_equal(old_ts, &c->root.roles[FERRY_ROLE_TIMESTAMP]))
        drop_timestamps(t);
    free(t->root_doc);
    t->root_doc = copy;
    t->root_doc_len = doc_len;
    t->root = c->root;
    t->has_root = true;
    ferry_keyring_free(t->root_keys);
    t->root_keys = c->root_keys;
    c->root_keys = NULL;
    t->root_threshold = c->root.roles[FERRY_ROLE_ROOT].threshold;
    ferry_keyring_copy(t->release, c->release);
    ferry_keyring_free(t->ts_keys);
    t->ts_keys = c->ts_keys;
    c->ts_keys = NULL;
    t->ts_role = c->root.roles[FERRY_ROLE_TIMESTAMP].present;
    t->ts_threshold = c->root.roles[FERRY_ROLE_TIMESTAMP].threshold;
    return FERRY_OK;
}

static bool looks_signed(const uint8_t *buf, size_t len)
{
    /* A signed document has "signatures"; a JSON keyring has "keys"; a PEM
     * key is no JSON at all. Parsing decides either way. */
    for (size_t i = 0; i + 12 <= len; i++) {
        if (memcmp(buf + i, "\"signatures\"", 12) == 0)
            return true;
    }
    return false;
}

static enum ferry_err init_root(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                struct ferry_diag *d)
{
    struct ferry_signed *s = NULL;
    struct candidate c;
    memset(&c, 0, sizeof(c));
    enum ferry_err err = ferry_signed_parse(buf, len, FERRY_ROOT_MAX_BYTES, "root", &s, d);
    if (err == FERRY_OK)
        err = candidate_of(s, &c, d);
    if (err == FERRY_OK)
        err = adopt(t, &c, buf, len, d);
    candidate_free(&c);
    ferry_signed_free(s);
    return err;
}

static enum ferry_err init_keyring(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                   struct ferry_diag *d)
{
    struct ferry_keyring *kr = NULL;
    enum ferry_err err = ferry_keyring_parse(buf, len, &kr, d);
    if (err != FERRY_OK)
        return err;
    /* Version 0: the keyring's trusted keys also sign the first root. */
    ferry_keyring_copy(t->release, kr);
    ferry_keyring_copy(t->root_keys, kr);
    t->root_threshold = 1;
    ferry_keyring_free(kr);
    return FERRY_OK;
}

enum ferry_err ferry_trust_new(const uint8_t *buf, size_t len, size_t max_products,
                               struct ferry_trust **out, struct ferry_diag *d)
{
    if (max_products < 1)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "trust: room for at least one product");
    struct ferry_trust *t = calloc(1, sizeof(*t));
    if (!t)
        return ferry_fail(d, FERRY_E_NOMEM, "trust: out of memory");
    t->max_products = max_products;
    t->ts = calloc(max_products, sizeof(*t->ts));
    t->root_keys = ferry_keyring_new();
    t->release = ferry_keyring_new();
    t->ts_keys = ferry_keyring_new();
    enum ferry_err err = FERRY_OK;
    if (!t->ts || !t->root_keys || !t->release || !t->ts_keys)
        err = ferry_fail(d, FERRY_E_NOMEM, "trust: out of memory");
    else if (looks_signed(buf, len))
        err = init_root(t, buf, len, d);
    else
        err = init_keyring(t, buf, len, d);
    if (err != FERRY_OK) {
        ferry_trust_free(t);
        return err;
    }
    *out = t;
    return FERRY_OK;
}

uint64_t ferry_trust_version(const struct ferry_trust *t)
{
    return t->has_root ? t->root.version : 0;
}

const struct ferry_root *ferry_trust_root(const struct ferry_trust *t)
{
    return t->has_root ? &t->root : NULL;
}

const uint8_t *ferry_trust_root_doc(const struct ferry_trust *t, size_t *len)
{
    *len = t->has_root ? t->root_doc_len : 0;
    return t->has_root ? t->root_doc : NULL;
}

bool ferry_trust_has_timestamp_role(const struct ferry_trust *t)
{
    return t->ts_role;
}

const struct ferry_keyring *ferry_trust_release_keys(const struct ferry_trust *t)
{
    return t->release;
}

void ferry_trust_limits(const struct ferry_trust *t, const struct ferry_trust_limits *local,
                        struct ferry_trust_limits *out)
{
    *out = *local;
    if (t->has_root && t->root.max_seq_step)
        out->max_seq_step = t->root.max_seq_step;
    if (t->has_root && t->root.max_manifest_lifetime)
        out->max_manifest_lifetime = t->root.max_manifest_lifetime;
}

static bool same_doc(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return a && alen == blen && memcmp(a, b, alen) == 0;
}

/* The version rule for a candidate root against the current one. */
static enum ferry_err check_version(const struct ferry_trust *t, const struct candidate *c,
                                    struct ferry_diag *d)
{
    uint64_t held = ferry_trust_version(t);
    if (c->root.version > held)
        return FERRY_OK;
    return ferry_fail(
        d, FERRY_E_STALE, "root: version %" PRIu64 " is not above the version held (%" PRIu64 ")%s",
        c->root.version, held, c->root.version == held ? ", and its bytes differ" : "");
}

enum ferry_err ferry_trust_update_root(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                       bool *changed, struct ferry_diag *d)
{
    *changed = false;
    if (same_doc(t->root_doc, t->root_doc_len, buf, len))
        return FERRY_OK;
    struct ferry_signed *s = NULL;
    struct candidate c;
    memset(&c, 0, sizeof(c));
    enum ferry_err err = ferry_signed_parse(buf, len, FERRY_ROOT_MAX_BYTES, "root", &s, d);
    /* The current root's keys first: nothing in the new one is read before
     * the keys already trusted vouch for it. */
    if (err == FERRY_OK) {
        char what[64];
        snprintf(what, sizeof(what), "root: the current root's keys (version %" PRIu64 ")",
                 ferry_trust_version(t));
        err = ferry_signed_check(s, t->root_keys, t->root_threshold, what, d);
    }
    if (err == FERRY_OK)
        err = candidate_of(s, &c, d);
    if (err == FERRY_OK)
        err = check_version(t, &c, d);
    if (err == FERRY_OK)
        err = adopt(t, &c, buf, len, d);
    if (err == FERRY_OK)
        *changed = true;
    candidate_free(&c);
    ferry_signed_free(s);
    return err;
}

enum ferry_err ferry_trust_restore_root(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                        struct ferry_diag *d)
{
    if (same_doc(t->root_doc, t->root_doc_len, buf, len))
        return FERRY_OK;
    struct ferry_signed *s = NULL;
    struct candidate c;
    memset(&c, 0, sizeof(c));
    enum ferry_err err = ferry_signed_parse(buf, len, FERRY_ROOT_MAX_BYTES, "root", &s, d);
    if (err == FERRY_OK)
        err = candidate_of(s, &c, d);
    if (err == FERRY_OK)
        err = check_version(t, &c, d);
    if (err == FERRY_OK)
        err = adopt(t, &c, buf, len, d);
    candidate_free(&c);
    ferry_signed_free(s);
    return err;
}

static struct ts_entry *find_ts(const struct ferry_trust *t, const char *product)
{
    for (size_t i = 0; i < t->nts; i++) {
        if (strcmp(t->ts[i].ts.product, product) == 0)
            return &t->ts[i];
    }
    return NULL;
}

static enum ferry_err check_ts(const struct ferry_trust *t, const struct ferry_timestamp *ts,
                               const struct ts_entry *held, int64_t now, int64_t skew, bool restore,
                               struct ferry_diag *d)
{
    if (held && ts->version <= held->ts.version)
        return ferry_fail(d, FERRY_E_STALE,
                          "timestamp for '%s': version %" PRIu64 " is not above the one held "
                          "(%" PRIu64 ")%s",
                          ts->product, ts->version, held->ts.version,
                          ts->version == held->ts.version ? ", and its bytes differ" : "");
    if (!restore && ts->issued_at > now && ts->issued_at - now > (skew > 0 ? skew : 0))
        return ferry_fail(d, FERRY_E_NOT_YET_VALID,
                          "timestamp for '%s': issued at %" PRId64 ", after now (%" PRId64
                          ") + %" PRId64 " s of clock skew",
                          ts->product, ts->issued_at, now, skew);
    if (!restore && now >= ts->expires_at)
        return ferry_fail(d, FERRY_E_EXPIRED,
                          "timestamp for '%s': version %" PRIu64 " expired at %" PRId64
                          ", now is %" PRId64,
                          ts->product, ts->version, ts->expires_at, now);
    if (!held && t->nts >= t->max_products)
        return ferry_fail(d, FERRY_E_TOO_LARGE,
                          "timestamp for '%s': timestamps for %zu products are held already",
                          ts->product, t->max_products);
    return FERRY_OK;
}

enum ferry_err ferry_trust_update_timestamp(struct ferry_trust *t, const uint8_t *buf, size_t len,
                                            int64_t now, int64_t skew, bool restore, bool *changed,
                                            struct ferry_diag *d)
{
    *changed = false;
    if (!t->ts_role)
        return ferry_fail(d, FERRY_E_UNKNOWN_KEY,
                          "timestamp: root version %" PRIu64 " has no timestamp role",
                          ferry_trust_version(t));
    struct ferry_signed *s = NULL;
    struct ferry_timestamp *ts = malloc(sizeof(*ts));
    if (!ts)
        return ferry_fail(d, FERRY_E_NOMEM, "timestamp: out of memory");
    enum ferry_err err =
        ferry_signed_parse(buf, len, FERRY_TIMESTAMP_MAX_BYTES, "timestamp", &s, d);
    if (err == FERRY_OK)
        err =
            ferry_signed_check(s, t->ts_keys, t->ts_threshold, "timestamp: the timestamp keys", d);
    if (err == FERRY_OK)
        err = ferry_timestamp_parse(s->body, s->body_len, ts, d);
    struct ts_entry *held = err == FERRY_OK ? find_ts(t, ts->product) : NULL;
    if (err == FERRY_OK && held && same_doc(held->doc, held->doc_len, buf, len))
        goto out; /* the same document again */
    if (err == FERRY_OK)
        err = check_ts(t, ts, held, now, skew, restore, d);
    uint8_t *copy = NULL;
    if (err == FERRY_OK && !(copy = dup_bytes(buf, len)))
        err = ferry_fail(d, FERRY_E_NOMEM, "timestamp: out of memory");
    if (err == FERRY_OK) {
        if (!held)
            held = &t->ts[t->nts++];
        free(held->doc);
        held->doc = copy;
        held->doc_len = len;
        held->ts = *ts;
        *changed = true;
    }
out:
    ferry_signed_free(s);
    free(ts);
    return err;
}

const struct ferry_timestamp *ferry_trust_timestamp(const struct ferry_trust *t,
                                                    const char *product, const uint8_t **doc,
                                                    size_t *doc_len)
{
    const struct ts_entry *e = find_ts(t, product);
    if (doc)
        *doc = e ? e->doc : NULL;
    if (doc_len)
        *doc_len = e ? e->doc_len : 0;
    return e ? &e->ts : NULL;
}

size_t ferry_trust_timestamp_count(const struct ferry_trust *t)
{
    return t->nts;
}

const struct ferry_timestamp *ferry_trust_timestamp_at(const struct ferry_trust *t, size_t i,
                                                       const uint8_t **doc, size_t *doc_len)
{
    if (i >= t->nts)
        return NULL;
    if (doc)
        *doc = t->ts[i].doc;
    if (doc_len)
        *doc_len = t->ts[i].doc_len;
    return &t->ts[i].ts;
}

enum ferry_err ferry_trust_verdict(const struct ferry_trust *t, const char *product,
                                   const char *release_id, const uint8_t digest[FERRY_SHA256_LEN],
                                   int64_t now, struct ferry_diag *d)
{
    if (!t->ts_role)
        return FERRY_OK;
    const struct ts_entry *e = find_ts(t, product);
    if (!e)
        return ferry_fail(d, FERRY_E_STALE, "trust: no timestamp for product '%s' yet", product);
    const struct ferry_timestamp *ts = &e->ts;
    if (ferry_timestamp_withdraws(ts, release_id))
        return ferry_fail(d, FERRY_E_WITHDRAWN,
                          "trust: release %s is withdrawn (timestamp version %" PRIu64 ")",
                          release_id, ts->version);
    if (now >= ts->expires_at)
        return ferry_fail(d, FERRY_E_STALE,
                          "trust: the timestamp for '%s' (version %" PRIu64 ") expired at %" PRId64,
                          product, ts->version, ts->expires_at);
    if (!ts->ncurrent)
        return ferry_fail(d, FERRY_E_STALE,
                          "trust: the timestamp for '%s' (version %" PRIu64
                          ") names no current release",
                          product, ts->version);
    if (!ferry_timestamp_current(ts, digest))
        return ferry_fail(d, FERRY_E_STALE,
                          "trust: the timestamp for '%s' (version %" PRIu64
                          ") names %zu release(s) current, %s (seq %" PRIu64 ")%s, not %s",
                          product, ts->version, ts->ncurrent, ts->current[0].release,
                          ts->current[0].seq, ts->ncurrent > 1 ? " first" : "", release_id);
    return FERRY_OK;
}
