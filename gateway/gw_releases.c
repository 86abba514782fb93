#include "gw_releases.h"

#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_names.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Folder names leave room for "/previous/<64-character product>.env.tmp.<pid>". */
#define DIR_MAX  (PATH_MAX - 128)
#define PREV_DIR "previous"

struct slot {
    char product[FERRY_ID_MAX + 1];
    struct gw_release *cur;
    struct gw_release *prev;
    uint64_t floor; /* seq of a current release that expired while stored */
    bool has_floor;
};

struct gw_releases {
    char dir[DIR_MAX];
    const struct ferry_keyring *kr;
    struct gw_releases_limits limits;
    uint64_t max_artifact_size;
    int64_t skew;
    struct slot slots[GW_RELEASES_MAX_PRODUCTS];
    size_t n;
};

static void release_free(struct gw_release *rel)
{
    if (rel) {
        free(rel->envelope);
        free(rel);
    }
}

static struct gw_release *release_new(const uint8_t *env, size_t len,
                                      const struct ferry_manifest *m)
{
    struct gw_release *rel = calloc(1, sizeof(*rel));
    if (!rel)
        return NULL;
    rel->envelope = malloc(len ? len : 1);
    if (!rel->envelope) {
        free(rel);
        return NULL;
    }
    memcpy(rel->envelope, env, len);
    rel->envelope_len = len;
    rel->manifest = *m;
    /* It verified before it got here, so it parses. */
    struct ferry_envelope *e = NULL;
    if (ferry_envelope_parse(env, len, &e, NULL) == FERRY_OK)
        ferry_sha256(e->manifest, e->manifest_len, rel->manifest_digest);
    ferry_envelope_free(e);
    return rel;
}

static bool same_bytes(const struct gw_release *rel, const uint8_t *env, size_t len)
{
    return rel && rel->envelope_len == len && memcmp(rel->envelope, env, len) == 0;
}

/* The slot's index, or r->n if the product has none. */
static size_t slot_index(const struct gw_releases *r, const char *product)
{
    size_t i = 0;
    while (i < r->n && strcmp(r->slots[i].product, product) != 0)
        i++;
    return i;
}

static struct slot *find_slot(struct gw_releases *r, const char *product)
{
    size_t i = slot_index(r, product);
    return i < r->n ? &r->slots[i] : NULL;
}

static struct slot *add_slot(struct gw_releases *r, const char *product)
{
    if (r->n == GW_RELEASES_MAX_PRODUCTS)
        return NULL;
    struct slot *s = &r->slots[r->n++];
    memset(s, 0, sizeof(*s));
    snprintf(s->product, sizeof(s->product), "%s", product);
    return s;
}

/* The newest seq held for a product, from any of its releases; false if
 * nothing is held. */
static bool held_seq(const struct slot *s, uint64_t *seq)
{
    bool any = false;
    uint64_t max = 0;
    if (!s)
        return false;
    if (s->cur) {
        max = s->cur->manifest.seq;
        any = true;
    }
    if (s->prev && (!any || s->prev->manifest.seq > max)) {
        max = s->prev->manifest.seq;
        any = true;
    }
    if (s->has_floor && (!any || s->floor > max)) {
        max = s->floor;
        any = true;
    }
    *seq = max;
    return any;
}

/* Current releases and previous ones live in separate folders, so that no
 * product name ("P.prev" is one) can reach another product's file. */
static void env_path(const struct gw_releases *r, const char *product, bool prev,
                     char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s%s.env", r->dir, prev ? PREV_DIR "/" : "", product);
}

/* held: the newest seq held for the product, or NULL when none is (then
 * neither a floor nor a step applies). */
static enum ferry_err verify(const struct gw_releases *r, const uint8_t *env, size_t len,
                             int64_t now, const uint64_t *held, struct ferry_manifest *m,
                             struct ferry_diag *d)
{
    struct ferry_verify_policy pol = {
        .now = now,
        .clock_skew = r->skew,
        .hw_model = NULL,
        .hw_revision = NULL,
        .min_seq = held ? *held : 0,
        .max_artifact_size = r->max_artifact_size,
        .max_lifetime = r->limits.max_lifetime,
        .max_seq_step = held ? r->limits.max_seq_step : 0,
        .seq_base = held ? *held : 0,
    };
    return ferry_envelope_verify(env, len, r->kr, &pol, m, d);
}

/* ---- loading ---- */

/* The seq of an envelope that verified up to its expiry: its signature
 * held, so its manifest may be read. */
static bool expired_seq(const uint8_t *env, size_t len, uint64_t *seq)
{
    struct ferry_envelope *e = NULL;
    struct ferry_manifest m;
    bool ok = ferry_envelope_parse(env, len, &e, NULL) == FERRY_OK &&
              ferry_manifest_parse(e->manifest, e->manifest_len, &m, NULL) == FERRY_OK;
    ferry_envelope_free(e);
    if (ok)
        *seq = m.seq;
    return ok;
}

static void remember_floor(struct gw_releases *r, const char *product, const uint8_t *env,
                           size_t len)
{
    uint64_t seq;
    if (!expired_seq(env, len, &seq))
        return;
    struct slot *s = find_slot(r, product);
    if (!s && !(s = add_slot(r, product)))
        return;
    if (!s->has_floor || seq > s->floor)
        s->floor = seq;
    s->has_floor = true;
}

/* A file "<X>.prev.env" in the folder of current releases that holds a
 * release of product X (not of product "X.prev") was written before
 * previous releases had their own folder: it is X's previous release. */
static bool legacy_previous(const char *product, const struct ferry_manifest *m,
                            char owner[FERRY_ID_MAX + 1])
{
    size_t plen = strlen(product), slen = strlen(".prev");
    if (plen <= slen || strcmp(product + plen - slen, ".prev") != 0 ||
        strncmp(m->product, product, plen - slen) != 0 || m->product[plen - slen] != '\0')
        return false;
    snprintf(owner, FERRY_ID_MAX + 1, "%s", m->product);
    return true;
}

/* Moves a legacy previous file to where it belongs now (best effort: if it
 * fails, the legacy file is read again at the next start). */
static void migrate_previous(const struct gw_releases *r, const char *owner, const char *legacy,
                             const struct gw_release *rel)
{
    char path[PATH_MAX];
    struct ferry_diag d = {{0}};
    env_path(r, owner, true, path);
    if (ferry_write_atomic(path, rel->envelope, rel->envelope_len, 0644, &d) == FERRY_OK &&
        unlink(legacy) == 0)
        ferry_log_info("releases: moved %s to %s", legacy, path);
    else
        ferry_log_warn("releases: cannot move %s to %s: %s", legacy, path,
                       d.msg[0] ? d.msg : "unlink");
}

/* Loads one stored envelope. Whatever is wrong with the file is logged and
 * skipped; only FERRY_E_NOMEM is returned. */
static enum ferry_err load_one(struct gw_releases *r, const char *product, bool prev, int64_t now)
{
    char path[PATH_MAX], owner[FERRY_ID_MAX + 1];
    struct ferry_diag d = {{0}};
    struct ferry_manifest m;
    uint8_t *env = NULL;
    size_t len = 0;
    bool legacy = false;
    env_path(r, product, prev, path);
    enum ferry_err err = ferry_read_file(path, FERRY_ENVELOPE_MAX_BYTES, &env, &len, &d);
    if (err == FERRY_OK)
        err = verify(r, env, len, now, NULL, &m, &d);
    if (err == FERRY_OK && !prev && strcmp(m.product, product) != 0 &&
        legacy_previous(product, &m, owner)) {
        legacy = prev = true;
        product = owner;
    }
    if (err == FERRY_E_EXPIRED && !prev)
        remember_floor(r, product, env, len);
    if (err == FERRY_OK && strcmp(m.product, product) != 0)
        err = ferry_fail(&d, FERRY_E_PROTOCOL, "it holds a release of product '%s'", m.product);
    struct slot *s = NULL;
    struct gw_release *rel = NULL;
    if (err == FERRY_OK && !(s = find_slot(r, product)) && !(s = add_slot(r, product)))
        err = ferry_fail(&d, FERRY_E_TOO_LARGE, "more than %d products", GW_RELEASES_MAX_PRODUCTS);
    if (err == FERRY_OK && legacy && s && s->prev)
        err = ferry_fail(&d, FERRY_E_PROTOCOL, "product '%s' has a previous release already",
                         product);
    if (err == FERRY_OK && !(rel = release_new(env, len, &m)))
        err = FERRY_E_NOMEM;
    free(env);
    if (err == FERRY_E_NOMEM)
        return err;
    if (err != FERRY_OK) {
        ferry_log_err("releases: %s skipped: %s", path, ferry_diag_str(&d, err));
        return FERRY_OK;
    }
    if (legacy)
        migrate_previous(r, product, path, rel);
    if (prev)
        s->prev = rel;
    else
        s->cur = rel;
    return FERRY_OK;
}

/* "<product>.env"; false for any other name. */
static bool parse_name(const char *name, char product[FERRY_ID_MAX + 1])
{
    size_t len = strlen(name);
    if (len <= 4 || strcmp(name + len - 4, ".env") != 0 || len - 4 > FERRY_ID_MAX)
        return false;
    memcpy(product, name, len - 4);
    product[len - 4] = 0;
    return ferry_id_valid(product);
}

/* A previous release newer than the current one cannot come from this code;
 * refuse to keep it rather than guess which file is wrong. */
static void check_order(struct gw_releases *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct slot *s = &r->slots[i];
        if (s->cur && s->prev && s->prev->manifest.seq > s->cur->manifest.seq) {
            ferry_log_err(
                "releases: the previous release of %s (seq %llu) is newer than its current one "
                "(seq %llu): skipped",
                s->product, (unsigned long long)s->prev->manifest.seq,
                (unsigned long long)s->cur->manifest.seq);
            release_free(s->prev);
            s->prev = NULL;
        }
    }
}

/* Loads every "<product>.env" of one folder (current or previous ones). */
static enum ferry_err load_dir(struct gw_releases *r, bool prev, int64_t now, struct ferry_diag *d)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s%s", r->dir, prev ? "/" PREV_DIR : "");
    DIR *dir = opendir(path);
    if (!dir)
        return ferry_fail(d, FERRY_E_IO, "releases: %s: %s", path, strerror(errno));
    enum ferry_err err = FERRY_OK;
    struct dirent *de;
    while (err == FERRY_OK && (de = readdir(dir)) != NULL) {
        char product[FERRY_ID_MAX + 1];
        if (strstr(de->d_name, ".env.tmp.")) {
            /* Left by a write_atomic interrupted before its rename. */
            if (unlinkat(dirfd(dir), de->d_name, 0) != 0)
                ferry_log_warn("releases: cannot remove %s/%s", path, de->d_name);
        } else if (parse_name(de->d_name, product)) {
            err = load_one(r, product, prev, now);
        } else if (de->d_name[0] != '.' && (prev || strcmp(de->d_name, PREV_DIR) != 0)) {
            ferry_log_warn("releases: ignoring %s/%s", path, de->d_name);
        }
    }
    closedir(dir);
    if (err != FERRY_OK)
        return ferry_fail(d, err, "releases: out of memory while loading %s", path);
    return FERRY_OK;
}

static enum ferry_err load_all(struct gw_releases *r, int64_t now, struct ferry_diag *d)
{
    /* Previous releases first, so a legacy "<X>.prev.env" among the current
     * ones only fills a place the new folder left empty. */
    enum ferry_err err = load_dir(r, true, now, d);
    if (err == FERRY_OK)
        err = load_dir(r, false, now, d);
    if (err == FERRY_OK)
        check_order(r);
    return err;
}

enum ferry_err gw_releases_open(const struct gw_releases_opts *o, int64_t now,
                                struct gw_releases **out, struct ferry_diag *d)
{
    if (!o->state_dir || !o->state_dir[0] || !o->keyring)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "releases: no state folder or keyring given");
    if (strlen(o->state_dir) + sizeof("/releases") >= DIR_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "releases: folder name too long: %s",
                          o->state_dir);
    struct gw_releases *r = calloc(1, sizeof(*r));
    if (!r)
        return ferry_fail(d, FERRY_E_NOMEM, "releases: out of memory");
    snprintf(r->dir, sizeof(r->dir), "%s/releases", o->state_dir);
    r->kr = o->keyring;
    if (o->limits)
        r->limits = *o->limits;
    r->max_artifact_size = o->max_artifact_size;
    r->skew = o->clock_skew;
    char prev_dir[PATH_MAX];
    snprintf(prev_dir, sizeof(prev_dir), "%s/" PREV_DIR, r->dir);
    enum ferry_err err = ferry_mkdir_p(prev_dir, 0755, d);
    if (err == FERRY_OK)
        err = load_all(r, now, d);
    if (err != FERRY_OK) {
        gw_releases_free(r);
        return err;
    }
    *out = r;
    return FERRY_OK;
}

void gw_releases_free(struct gw_releases *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        release_free(r->slots[i].cur);
        release_free(r->slots[i].prev);
    }
    free(r);
}

/* ---- accepting ---- */

/* Writes the new current release, after moving the old current one to the
 * previous file. If the second write fails, the previous file is put back
 * as it was (best effort: both files are whole either way). */
static enum ferry_err persist(const struct gw_releases *r, const struct slot *s,
                              const char *product, const struct gw_release *rel,
                              struct ferry_diag *d)
{
    char cur_path[PATH_MAX], prev_path[PATH_MAX];
    env_path(r, product, false, cur_path);
    env_path(r, product, true, prev_path);
    bool moved = false;
    enum ferry_err err = FERRY_OK;
    if (s && s->cur) {
        err = ferry_write_atomic(prev_path, s->cur->envelope, s->cur->envelope_len, 0644, d);
        moved = err == FERRY_OK;
    }
    if (err == FERRY_OK)
        err = ferry_write_atomic(cur_path, rel->envelope, rel->envelope_len, 0644, d);
    if (err == FERRY_OK || !moved)
        return err;
    struct ferry_diag ud = {{0}};
    if (s->prev ? ferry_write_atomic(prev_path, s->prev->envelope, s->prev->envelope_len, 0644,
                                     &ud) != FERRY_OK
                : unlink(prev_path) != 0)
        ferry_log_warn("releases: could not restore %s: %s", prev_path, ud.msg);
    return err;
}

/* The checks after the signature: product and seq against what is held. */
static enum ferry_err check_accept(const struct slot *s, const char *product,
                                   const struct ferry_manifest *m, struct ferry_diag *d)
{
    uint64_t held;
    if (strcmp(m->product, product) != 0)
        return ferry_fail(d, FERRY_E_PROTOCOL,
                          "release: envelope on the topic of product '%s' is for product '%s'",
                          product, m->product);
    if (held_seq(s, &held) && m->seq == held)
        return ferry_fail(d, FERRY_E_DOWNGRADE,
                          "release for product '%s': seq %llu is already held with different "
                          "bytes (replay or conflicting release)",
                          product, (unsigned long long)held);
    return FERRY_OK;
}

enum ferry_err gw_releases_accept(struct gw_releases *r, const char *product, const uint8_t *env,
                                  size_t env_len, int64_t now, enum gw_release_outcome *outcome,
                                  struct ferry_diag *d)
{
    if (!product || !ferry_id_valid(product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "release: invalid product name '%s'",
                          product ? product : "(null)");
    struct slot *s = find_slot(r, product);
    if (s && same_bytes(s->cur, env, env_len)) {
        *outcome = GW_RELEASE_ALREADY_HELD;
        return FERRY_OK;
    }
    uint64_t held = 0;
    struct ferry_manifest m;
    bool any = held_seq(s, &held);
    enum ferry_err err = verify(r, env, env_len, now, any ? &held : NULL, &m, d);
    if (err != FERRY_OK) {
        char prefix[FERRY_ID_MAX + 32];
        snprintf(prefix, sizeof(prefix), "release for product '%s'", product);
        ferry_diag_prefix(d, prefix);
        return err;
    }
    err = check_accept(s, product, &m, d);
    if (err != FERRY_OK)
        return err;
    if (!s && r->n == GW_RELEASES_MAX_PRODUCTS)
        return ferry_fail(d, FERRY_E_TOO_LARGE,
                          "release: product '%s' is one more than the %d held", product,
                          GW_RELEASES_MAX_PRODUCTS);
    struct gw_release *rel = release_new(env, env_len, &m);
    if (!rel)
        return ferry_fail(d, FERRY_E_NOMEM, "release: out of memory");
    err = persist(r, s, product, rel, d);
    if (err != FERRY_OK) {
        release_free(rel);
        return err;
    }
    if (!s)
        s = add_slot(r, product);
    if (!s) { /* cannot happen: the count was checked above */
        release_free(rel);
        return ferry_fail(d, FERRY_E_TOO_LARGE, "release: no room for product '%s'", product);
    }
    if (s->cur) {
        release_free(s->prev);
        s->prev = s->cur;
    }
    s->cur = rel;
    ferry_log_info("release: product '%s' now at seq %llu (%s)", product, (unsigned long long)m.seq,
                   m.release_id);
    *outcome = GW_RELEASE_ACCEPTED;
    return FERRY_OK;
}

void gw_releases_set_limits(struct gw_releases *r, const struct gw_releases_limits *l)
{
    r->limits = *l;
}

/* A held release still verifies with the keyring as it is now (time is not
 * judged again here: an expired one goes at the next open, as before). */
static bool still_trusted(const struct gw_releases *r, const struct gw_release *rel, int64_t now)
{
    struct ferry_diag d = {{0}};
    struct ferry_verify_policy pol = {.now = now, .clock_skew = INT64_MAX / 2};
    enum ferry_err err =
        ferry_envelope_verify(rel->envelope, rel->envelope_len, r->kr, &pol, NULL, &d);
    if (err == FERRY_OK || err == FERRY_E_EXPIRED)
        return true;
    ferry_log_warn("releases: %s (product %s) is no longer trusted: %s", rel->manifest.release_id,
                   rel->manifest.product, ferry_diag_str(&d, err));
    return false;
}

size_t gw_releases_recheck(struct gw_releases *r, int64_t now)
{
    size_t dropped = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct slot *s = &r->slots[i];
        struct gw_release **rels[] = {&s->cur, &s->prev};
        for (size_t k = 0; k < 2; k++) {
            struct gw_release *rel = *rels[k];
            if (!rel || still_trusted(r, rel, now))
                continue;
            /* Its seq keeps barring older releases of the product. */
            if (!s->has_floor || rel->manifest.seq > s->floor)
                s->floor = rel->manifest.seq;
            s->has_floor = true;
            release_free(rel);
            *rels[k] = NULL;
            dropped++;
        }
    }
    return dropped;
}

/* ---- queries ---- */

const struct gw_release *gw_releases_current(const struct gw_releases *r, const char *product)
{
    size_t i = slot_index(r, product);
    return i < r->n ? r->slots[i].cur : NULL;
}

const struct gw_release *gw_releases_previous(const struct gw_releases *r, const char *product)
{
    size_t i = slot_index(r, product);
    return i < r->n ? r->slots[i].prev : NULL;
}

size_t gw_releases_count(const struct gw_releases *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->slots[i].cur != NULL;
    return n;
}

const struct gw_release *gw_releases_at(const struct gw_releases *r, size_t i)
{
    for (size_t k = 0; k < r->n; k++)
        if (r->slots[k].cur && i-- == 0)
            return r->slots[k].cur;
    return NULL;
}

static size_t add_digest(uint8_t (*out)[FERRY_SHA256_LEN], size_t n, const struct gw_release *rel)
{
    if (!rel)
        return n;
    for (size_t i = 0; i < n; i++)
        if (memcmp(out[i], rel->manifest.sha256, FERRY_SHA256_LEN) == 0)
            return n;
    memcpy(out[n], rel->manifest.sha256, FERRY_SHA256_LEN);
    return n + 1;
}

enum ferry_err gw_releases_refs(const struct gw_releases *r, uint8_t (*out)[FERRY_SHA256_LEN],
                                size_t cap, size_t *n)
{
    uint8_t all[GW_RELEASES_MAX_REFS][FERRY_SHA256_LEN];
    size_t count = 0;
    for (size_t i = 0; i < r->n; i++) {
        count = add_digest(all, count, r->slots[i].cur);
        count = add_digest(all, count, r->slots[i].prev);
    }
    if (count > cap)
        return FERRY_E_TOO_LARGE;
    memcpy(out, all, count * FERRY_SHA256_LEN);
    *n = count;
    return FERRY_OK;
}
