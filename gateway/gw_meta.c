#include "gw_meta.h"

#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_meta.h"
#include "ferry_names.h"
#include "ferry_opts.h"
#include "ferry_signed.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIR_MAX (PATH_MAX - 128)
#define TS_SUB  "timestamps"

struct doc {
    uint64_t version;
    uint8_t *buf;
    size_t len;
};

/* A timestamp the root held could not check yet. */
struct pending_ts {
    char product[FERRY_ID_MAX + 1];
    uint8_t *buf;
    size_t len;
};

struct gw_meta {
    char dir[DIR_MAX];
    int64_t skew;
    struct ferry_trust *trust;
    struct doc roots[GW_META_MAX_ROOTS]; /* taken, ascending versions */
    size_t nroots;
    struct doc pending[GW_META_MAX_PENDING]; /* waiting for an earlier root */
    size_t npending;
    struct pending_ts pending_ts[GW_META_MAX_PENDING]; /* waiting for a root */
    size_t npending_ts;
};

static void doc_free(struct doc *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

void gw_meta_free(struct gw_meta *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nroots; i++)
        doc_free(&m->roots[i]);
    for (size_t i = 0; i < m->npending; i++)
        doc_free(&m->pending[i]);
    for (size_t i = 0; i < m->npending_ts; i++)
        free(m->pending_ts[i].buf);
    ferry_trust_free(m->trust);
    free(m);
}

const struct ferry_trust *gw_meta_trust(const struct gw_meta *m)
{
    return m->trust;
}

static bool parse_version(const char *s, uint64_t *v)
{
    return s && s[0] && strlen(s) <= 16 && strspn(s, "0123456789") == strlen(s) && s[0] != '0' &&
           ferry_parse_u64(s, v) == FERRY_OK;
}

/* ---- keeping roots -------------------------------------------------------- */

/* Remembers the current root's document for serving (oldest dropped when
 * full: a node that far behind would need a new --trust anyway). */
static enum ferry_err keep_root(struct gw_meta *m, struct ferry_diag *d)
{
    size_t len = 0;
    const uint8_t *buf = ferry_trust_root_doc(m->trust, &len);
    uint64_t v = ferry_trust_version(m->trust);
    if (!buf || (m->nroots && m->roots[m->nroots - 1].version >= v))
        return FERRY_OK;
    uint8_t *copy = malloc(len);
    if (!copy)
        return ferry_fail(d, FERRY_E_NOMEM, "meta: out of memory");
    memcpy(copy, buf, len);
    if (m->nroots == GW_META_MAX_ROOTS) {
        doc_free(&m->roots[0]);
        memmove(&m->roots[0], &m->roots[1], (GW_META_MAX_ROOTS - 1) * sizeof(m->roots[0]));
        m->nroots--;
    }
    m->roots[m->nroots++] = (struct doc){.version = v, .buf = copy, .len = len};
    return FERRY_OK;
}

static enum ferry_err store_root(const struct gw_meta *m, uint64_t version, const uint8_t *buf,
                                 size_t len, struct ferry_diag *d)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/root-%" PRIu64 ".json", m->dir, version);
    return ferry_write_atomic(path, buf, len, 0644, d);
}

/* Takes one root by the chain rule, stores it and keeps it for serving. If
 * the file cannot be written the root is current for this run only: after
 * a restart it comes again from its retained topic. */
static enum ferry_err take(struct gw_meta *m, const uint8_t *buf, size_t len, bool *changed,
                           struct ferry_diag *d)
{
    enum ferry_err err = ferry_trust_update_root(m->trust, buf, len, changed, d);
    if (err != FERRY_OK || !*changed)
        return err;
    uint64_t v = ferry_trust_version(m->trust);
    struct ferry_diag sd = {{0}};
    if (store_root(m, v, buf, len, &sd) != FERRY_OK)
        ferry_log_warn("meta: root version %" PRIu64 " taken but not stored: %s", v, sd.msg);
    ferry_log_info("meta: root version %" PRIu64 " taken", v);
    return keep_root(m, d);
}

/* Tries the roots kept aside, lowest version first, until none is taken. */
static size_t retry_pending(struct gw_meta *m)
{
    size_t taken = 0;
    for (bool again = true; again;) {
        again = false;
        size_t best = m->npending;
        for (size_t i = 0; i < m->npending; i++) {
            if (m->pending[i].version <= ferry_trust_version(m->trust)) {
                doc_free(&m->pending[i]);
                m->pending[i] = m->pending[--m->npending];
                i--;
                continue;
            }
            if (best == m->npending || m->pending[i].version < m->pending[best].version)
                best = i;
        }
        if (best == m->npending)
            break;
        struct doc p = m->pending[best];
        bool changed = false;
        struct ferry_diag d = {{0}};
        if (take(m, p.buf, p.len, &changed, &d) == FERRY_OK && changed) {
            taken++;
            m->pending[best] = m->pending[--m->npending];
            free(p.buf);
            again = true;
        }
    }
    return taken;
}

static enum ferry_err set_aside(struct gw_meta *m, uint64_t version, const uint8_t *buf, size_t len,
                                struct ferry_diag *d)
{
    for (size_t i = 0; i < m->npending; i++) {
        if (m->pending[i].version == version && m->pending[i].len == len &&
            memcmp(m->pending[i].buf, buf, len) == 0)
            return FERRY_OK;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return ferry_fail(d, FERRY_E_NOMEM, "meta: out of memory");
    memcpy(copy, buf, len);
    if (m->npending == GW_META_MAX_PENDING) {
        size_t hi = 0; /* drop the one furthest ahead */
        for (size_t i = 1; i < m->npending; i++)
            if (m->pending[i].version > m->pending[hi].version)
                hi = i;
        doc_free(&m->pending[hi]);
        m->pending[hi] = m->pending[--m->npending];
    }
    m->pending[m->npending++] = (struct doc){.version = version, .buf = copy, .len = len};
    return FERRY_OK;
}

static void retry_timestamps(struct gw_meta *m, int64_t now);

enum ferry_err gw_meta_root(struct gw_meta *m, const char *level, const uint8_t *buf, size_t len,
                            int64_t now, size_t *roots_taken, struct ferry_diag *d)
{
    uint64_t version = 0;
    *roots_taken = 0;
    if (!parse_version(level, &version))
        return ferry_fail(d, FERRY_E_PROTOCOL, "root: topic level '%s' is not a version", level);
    if (version <= ferry_trust_version(m->trust)) {
        size_t held_len = 0;
        const uint8_t *held = ferry_trust_root_doc(m->trust, &held_len);
        if (held && held_len == len && memcmp(held, buf, len) == 0)
            return FERRY_OK;
        /* Older roots are already behind: nothing to check them against. */
        for (size_t i = 0; i < m->nroots; i++)
            if (m->roots[i].version == version && m->roots[i].len == len &&
                memcmp(m->roots[i].buf, buf, len) == 0)
                return FERRY_OK;
        return ferry_fail(d, FERRY_E_STALE,
                          "root: version %" PRIu64 " is not above the version held (%" PRIu64 ")",
                          version, ferry_trust_version(m->trust));
    }
    bool changed = false;
    enum ferry_err err = take(m, buf, len, &changed, d);
    if (err == FERRY_OK && changed && ferry_trust_version(m->trust) != version) {
        /* Taken (it verified), but the topic lied about it: say so. */
        ferry_log_warn("meta: root version %" PRIu64 " arrived on the topic of version %" PRIu64,
                       ferry_trust_version(m->trust), version);
    }
    if (err == FERRY_E_THRESHOLD && version > ferry_trust_version(m->trust) + 1) {
        /* Perhaps an earlier root has not arrived yet. */
        ferry_log_info("meta: root version %s does not chain from version %" PRIu64
                       " (yet): kept until an earlier one arrives (%s)",
                       level, ferry_trust_version(m->trust), d ? d->msg : "");
        return set_aside(m, version, buf, len, d);
    }
    if (err != FERRY_OK)
        return err;
    *roots_taken = (changed ? 1 : 0) + retry_pending(m);
    if (*roots_taken)
        retry_timestamps(m, now);
    return FERRY_OK;
}

/* ---- timestamps ------------------------------------------------------------- */

static void store_timestamp(const struct gw_meta *m, const char *product, const uint8_t *buf,
                            size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" TS_SUB "/%.*s.json", m->dir, FERRY_ID_MAX, product);
    struct ferry_diag sd = {{0}};
    if (ferry_write_atomic(path, buf, len, 0644, &sd) != FERRY_OK)
        ferry_log_warn("meta: timestamp of '%s' taken but not stored: %s", product, sd.msg);
}

/* The last timestamp of product the root held could not check (best
 * effort: out of memory or room, it waits for the next one instead). */
static void set_aside_timestamp(struct gw_meta *m, const char *product, const uint8_t *buf,
                                size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, buf, len);
    size_t i = 0;
    while (i < m->npending_ts && strcmp(m->pending_ts[i].product, product) != 0)
        i++;
    if (i == m->npending_ts) {
        if (m->npending_ts == GW_META_MAX_PENDING) {
            free(copy);
            return;
        }
        m->npending_ts++;
    } else {
        free(m->pending_ts[i].buf);
    }
    snprintf(m->pending_ts[i].product, sizeof(m->pending_ts[i].product), "%.*s", FERRY_ID_MAX,
             product);
    m->pending_ts[i].buf = copy;
    m->pending_ts[i].len = len;
    ferry_log_info("meta: the timestamp of '%s' waits for a root that can check it", product);
}

enum ferry_err gw_meta_timestamp(struct gw_meta *m, const char *product, const uint8_t *buf,
                                 size_t len, int64_t now, bool *changed, struct ferry_diag *d)
{
    *changed = false;
    if (!ferry_id_valid(product))
        return ferry_fail(d, FERRY_E_PROTOCOL, "timestamp: topic level '%s' is not a product",
                          product);
    /* The topic must name the document's product. Read before the
     * signature is checked, for this comparison only: the trust decides. */
    struct ferry_signed *s = NULL;
    struct ferry_timestamp *ts = malloc(sizeof(*ts));
    enum ferry_err err = ts ? FERRY_OK : ferry_fail(d, FERRY_E_NOMEM, "meta: out of memory");
    if (err == FERRY_OK)
        err = ferry_signed_parse(buf, len, FERRY_TIMESTAMP_MAX_BYTES, "timestamp", &s, d);
    if (err == FERRY_OK)
        err = ferry_timestamp_parse(s->body, s->body_len, ts, d);
    if (err == FERRY_OK && strcmp(ts->product, product) != 0)
        err = ferry_fail(d, FERRY_E_PROTOCOL,
                         "timestamp: the document on the topic of '%s' is for product '%s'",
                         product, ts->product);
    ferry_signed_free(s);
    free(ts);
    if (err == FERRY_OK)
        err = ferry_trust_update_timestamp(m->trust, buf, len, now, m->skew, false, changed, d);
    if (err == FERRY_E_UNKNOWN_KEY || err == FERRY_E_THRESHOLD)
        set_aside_timestamp(m, product, buf, len);
    if (err != FERRY_OK || !*changed)
        return err;
    store_timestamp(m, product, buf, len);
    return FERRY_OK;
}

static void retry_timestamps(struct gw_meta *m, int64_t now)
{
    for (size_t i = 0; i < m->npending_ts;) {
        struct pending_ts *p = &m->pending_ts[i];
        bool changed = false;
        struct ferry_diag d = {{0}};
        enum ferry_err err = ferry_trust_update_timestamp(m->trust, p->buf, p->len, now, m->skew,
                                                          false, &changed, &d);
        if (err == FERRY_E_UNKNOWN_KEY || err == FERRY_E_THRESHOLD) {
            i++; /* still not checkable: perhaps after the next root */
            continue;
        }
        if (err == FERRY_OK && changed) {
            ferry_log_info("meta: the timestamp of '%s' kept aside is taken", p->product);
            store_timestamp(m, p->product, p->buf, p->len);
        } else if (err != FERRY_OK) {
            ferry_log_warn("meta: the timestamp of '%s' kept aside is refused: %s", p->product,
                           d.msg);
        }
        free(p->buf);
        *p = m->pending_ts[--m->npending_ts];
    }
}

/* ---- serving ------------------------------------------------------------------- */

enum ferry_err gw_meta_bundle(const struct gw_meta *m, const char *product, uint64_t have,
                              uint8_t **out, size_t *len, struct ferry_diag *d)
{
    struct ferry_meta_doc roots[FERRY_META_MAX_ROOTS];
    size_t n = 0, used = 0;
    for (size_t i = 0; i < m->nroots && n < FERRY_META_MAX_ROOTS; i++) {
        if (m->roots[i].version > have)
            roots[n++] = (struct ferry_meta_doc){.buf = m->roots[i].buf, .len = m->roots[i].len};
    }
    const uint8_t *ts = NULL;
    size_t ts_len = 0;
    (void)ferry_trust_timestamp(m->trust, product, &ts, &ts_len);
    struct ferry_meta_doc tsd = {.buf = (uint8_t *)(uintptr_t)ts, .len = ts_len};
    return ferry_meta_encode(roots, n, ts ? &tsd : NULL, out, len, &used, d);
}

/* ---- loading ---------------------------------------------------------------------- */

static int by_version(const void *a, const void *b)
{
    const struct doc *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Chains the stored roots from the initial trust, in version order. */
static enum ferry_err load_roots(struct gw_meta *m, struct ferry_diag *d)
{
    DIR *dir = opendir(m->dir);
    if (!dir)
        return ferry_fail(d, FERRY_E_IO, "meta: %s: %s", m->dir, strerror(errno));
    struct doc found[GW_META_MAX_ROOTS];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        char num[24];
        uint64_t v = 0;
        size_t nl = strlen(de->d_name);
        if (strstr(de->d_name, ".tmp.")) {
            if (unlinkat(dirfd(dir), de->d_name, 0) != 0)
                ferry_log_warn("meta: cannot remove %s/%s", m->dir, de->d_name);
            continue;
        }
        if (nl < 11 || strncmp(de->d_name, "root-", 5) != 0 ||
            strcmp(de->d_name + nl - 5, ".json") != 0 || nl - 10 >= sizeof(num))
            continue;
        memcpy(num, de->d_name + 5, nl - 10);
        num[nl - 10] = '\0';
        if (!parse_version(num, &v) || n == GW_META_MAX_ROOTS)
            continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", m->dir, de->d_name);
        struct ferry_diag rd = {{0}};
        uint8_t *buf = NULL;
        size_t len = 0;
        if (ferry_read_file(path, FERRY_SIGNED_MAX_BYTES, &buf, &len, &rd) != FERRY_OK) {
            ferry_log_err("meta: %s skipped: %s", path, rd.msg);
            continue;
        }
        found[n++] = (struct doc){.version = v, .buf = buf, .len = len};
    }
    closedir(dir);
    qsort(found, n, sizeof(found[0]), by_version);
    enum ferry_err err = FERRY_OK;
    for (size_t i = 0; i < n; i++) {
        bool changed = false;
        struct ferry_diag rd = {{0}};
        enum ferry_err e =
            ferry_trust_update_root(m->trust, found[i].buf, found[i].len, &changed, &rd);
        if (e == FERRY_OK && changed && err == FERRY_OK)
            err = keep_root(m, d);
        else if (e != FERRY_OK && e != FERRY_E_STALE)
            ferry_log_err("meta: %s/root-%" PRIu64 ".json skipped: %s", m->dir, found[i].version,
                          rd.msg);
        doc_free(&found[i]);
    }
    return err;
}

static void load_timestamps(struct gw_meta *m)
{
    char tsdir[PATH_MAX];
    snprintf(tsdir, sizeof(tsdir), "%s/" TS_SUB, m->dir);
    DIR *dir = opendir(tsdir);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (strstr(de->d_name, ".tmp.")) {
            if (unlinkat(dirfd(dir), de->d_name, 0) != 0)
                ferry_log_warn("meta: cannot remove %s/%s", tsdir, de->d_name);
            continue;
        }
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", tsdir, de->d_name);
        uint8_t *buf = NULL;
        size_t len = 0;
        bool changed = false;
        struct ferry_diag rd = {{0}};
        enum ferry_err err = ferry_read_file(path, FERRY_SIGNED_MAX_BYTES, &buf, &len, &rd);
        if (err == FERRY_OK)
            err = ferry_trust_update_timestamp(m->trust, buf, len, 0, 0, true, &changed, &rd);
        if (err != FERRY_OK)
            ferry_log_err("meta: %s skipped: %s", path, rd.msg);
        free(buf);
    }
    closedir(dir);
}

enum ferry_err gw_meta_open(const struct gw_meta_opts *o, struct gw_meta **out,
                            struct ferry_diag *d)
{
    if (!o->state_dir || !o->trust_path)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "meta: no state folder or --trust given");
    if (strlen(o->state_dir) + sizeof("/meta") >= DIR_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "meta: folder name too long: %s", o->state_dir);
    struct gw_meta *m = calloc(1, sizeof(*m));
    if (!m)
        return ferry_fail(d, FERRY_E_NOMEM, "meta: out of memory");
    snprintf(m->dir, sizeof(m->dir), "%s/meta", o->state_dir);
    m->skew = o->clock_skew;
    uint8_t *buf = NULL;
    size_t len = 0;
    char tsdir[PATH_MAX];
    snprintf(tsdir, sizeof(tsdir), "%s/" TS_SUB, m->dir);
    enum ferry_err err = ferry_read_file(o->trust_path, FERRY_SIGNED_MAX_BYTES, &buf, &len, d);
    if (err == FERRY_OK)
        err = ferry_trust_new(buf, len, GW_META_MAX_PRODUCTS, &m->trust, d);
    free(buf);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, o->trust_path);
    if (err == FERRY_OK)
        err = keep_root(m, d);
    if (err == FERRY_OK)
        err = ferry_mkdir_p(tsdir, 0755, d);
    if (err == FERRY_OK)
        err = load_roots(m, d);
    if (err != FERRY_OK) {
        gw_meta_free(m);
        return err;
    }
    load_timestamps(m);
    ferry_log_info("meta: trust at root version %" PRIu64 ", %zu timestamps%s",
                   ferry_trust_version(m->trust), ferry_trust_timestamp_count(m->trust),
                   ferry_trust_has_timestamp_role(m->trust) ? "" : " (no timestamp role)");
    *out = m;
    return FERRY_OK;
}
