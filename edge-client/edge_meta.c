#include "edge_meta.h"

#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_meta.h"
#include "ferry_signed.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct edge_meta {
    struct ferry_trust *trust;
    char product[FERRY_NAME_MAX + 1];
    char root_path[PATH_MAX];
    char ts_path[PATH_MAX];
    int64_t skew;
};

void edge_meta_free(struct edge_meta *m)
{
    if (m) {
        ferry_trust_free(m->trust);
        free(m);
    }
}

const struct ferry_trust *edge_meta_trust(const struct edge_meta *m)
{
    return m->trust;
}

/* The file's bytes, or NULL when it is absent or unreadable (logged). */
static uint8_t *read_state(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_read_file(path, FERRY_SIGNED_MAX_BYTES, &buf, len, &d);
    if (err != FERRY_OK && err != FERRY_E_NOT_FOUND)
        ferry_log_warn("trust: %s: %s", path, d.msg);
    return err == FERRY_OK ? buf : NULL;
}

static void restore(struct edge_meta *m)
{
    size_t len = 0;
    struct ferry_diag d = {{0}};
    uint8_t *buf = read_state(m->root_path, &len);
    enum ferry_err err = buf ? ferry_trust_restore_root(m->trust, buf, len, &d) : FERRY_OK;
    if (err == FERRY_E_STALE)
        ferry_log_info("trust: --trust is not older than %s: keeping --trust", m->root_path);
    else if (err != FERRY_OK)
        ferry_log_warn("trust: %s not restored: %s", m->root_path, d.msg);
    free(buf);
    buf = read_state(m->ts_path, &len);
    bool changed = false;
    d.msg[0] = '\0';
    if (buf &&
        ferry_trust_update_timestamp(m->trust, buf, len, 0, 0, true, &changed, &d) != FERRY_OK)
        ferry_log_warn("trust: %s not restored: %s", m->ts_path, d.msg);
    free(buf);
}

enum ferry_err edge_meta_open(const char *state_dir, const char *trust_path, const char *product,
                              int64_t clock_skew, struct edge_meta **out, struct ferry_diag *d)
{
    struct edge_meta *m = calloc(1, sizeof(*m));
    if (!m)
        return ferry_fail(d, FERRY_E_NOMEM, "trust: out of memory");
    char dir[PATH_MAX];
    int n1 = snprintf(dir, sizeof(dir), "%s/" EDGE_META_DIR, state_dir);
    int n2 = snprintf(m->root_path, sizeof(m->root_path), "%s/root.json", dir);
    int n3 = snprintf(m->ts_path, sizeof(m->ts_path), "%s/timestamp.json", dir);
    snprintf(m->product, sizeof(m->product), "%s", product);
    m->skew = clock_skew;
    enum ferry_err err = FERRY_OK;
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof(dir) ||
        (size_t)n2 >= sizeof(m->root_path) || (size_t)n3 >= sizeof(m->ts_path))
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "--state-dir: path too long");
    uint8_t *buf = NULL;
    size_t len = 0;
    if (err == FERRY_OK)
        err = ferry_read_file(trust_path, FERRY_SIGNED_MAX_BYTES, &buf, &len, d);
    if (err == FERRY_OK)
        err = ferry_trust_new(buf, len, 1, &m->trust, d);
    free(buf);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, trust_path);
    if (err == FERRY_OK)
        err = ferry_mkdir_p(dir, 0700, d);
    if (err != FERRY_OK) {
        edge_meta_free(m);
        return err;
    }
    restore(m);
    ferry_log_info("trust: root version %" PRIu64 "%s", ferry_trust_version(m->trust),
                   ferry_trust_has_timestamp_role(m->trust) ? ", timestamps required"
                                                            : ", no timestamp role");
    *out = m;
    return FERRY_OK;
}

static void persist(const char *path, const uint8_t *buf, size_t len, const char *what)
{
    struct ferry_diag d = {{0}};
    if (ferry_write_atomic(path, buf, len, 0600, &d) != FERRY_OK)
        ferry_log_warn("trust: %s taken but not stored: %s", what, d.msg);
}

/* The timestamp must be of our product; judged only for that comparison
 * before the trust checks it. */
static bool for_product(const struct edge_meta *m, const uint8_t *buf, size_t len,
                        struct ferry_diag *d)
{
    struct ferry_signed *s = NULL;
    struct ferry_timestamp *ts = malloc(sizeof(*ts));
    bool ok =
        ts &&
        ferry_signed_parse(buf, len, FERRY_TIMESTAMP_MAX_BYTES, "timestamp", &s, d) == FERRY_OK &&
        ferry_timestamp_parse(s->body, s->body_len, ts, d) == FERRY_OK;
    if (ok && strcmp(ts->product, m->product) != 0) {
        ferry_fail(d, FERRY_E_PROTOCOL, "timestamp: for product '%s', this node follows '%s'",
                   ts->product, m->product);
        ok = false;
    }
    ferry_signed_free(s);
    free(ts);
    return ok;
}

enum ferry_err edge_meta_apply(struct edge_meta *m, const uint8_t *buf, size_t len, int64_t now,
                               bool *changed, struct ferry_diag *d)
{
    struct ferry_meta *b = NULL;
    *changed = false;
    enum ferry_err err = ferry_meta_parse(buf, len, &b, d);
    if (err != FERRY_OK)
        return err;
    for (size_t i = 0; i < b->nroots; i++) {
        bool taken = false;
        struct ferry_diag rd = {{0}};
        enum ferry_err e =
            ferry_trust_update_root(m->trust, b->roots[i].buf, b->roots[i].len, &taken, &rd);
        if (e == FERRY_OK && taken) {
            size_t rlen = 0;
            const uint8_t *doc = ferry_trust_root_doc(m->trust, &rlen);
            ferry_log_info("trust: root version %" PRIu64 " taken", ferry_trust_version(m->trust));
            persist(m->root_path, doc, rlen, "root");
            *changed = true;
            /* New timestamp keys drop the timestamp held: so does the file. */
            if (!ferry_trust_timestamp(m->trust, m->product, NULL, NULL))
                (void)unlink(m->ts_path);
        } else if (e != FERRY_OK && e != FERRY_E_STALE) {
            ferry_log_warn("trust: a root from the gateway was refused: %s (%s)", rd.msg,
                           ferry_err_name(e));
        }
    }
    if (b->timestamp.buf && ferry_trust_has_timestamp_role(m->trust)) {
        bool taken = false;
        struct ferry_diag td = {{0}};
        enum ferry_err e =
            for_product(m, b->timestamp.buf, b->timestamp.len, &td)
                ? ferry_trust_update_timestamp(m->trust, b->timestamp.buf, b->timestamp.len, now,
                                               m->skew, false, &taken, &td)
                : FERRY_E_PROTOCOL;
        if (e == FERRY_OK && taken) {
            const struct ferry_timestamp *ts =
                ferry_trust_timestamp(m->trust, m->product, NULL, NULL);
            char cur[FERRY_TIMESTAMP_MAX_CURRENT * (FERRY_NAME_MAX + 1) + 8];
            ferry_log_info("trust: timestamp version %" PRIu64 " taken (current %s, %zu withdrawn)",
                           ts->version, ferry_timestamp_current_str(ts, cur, sizeof(cur)),
                           ts->nwithdrawn);
            persist(m->ts_path, b->timestamp.buf, b->timestamp.len, "timestamp");
            *changed = true;
        } else if (e != FERRY_OK && e != FERRY_E_STALE) {
            ferry_log_warn("trust: the timestamp from the gateway was refused: %s (%s)", td.msg,
                           ferry_err_name(e));
        } else if (e == FERRY_E_STALE) {
            ferry_log_debug("trust: the gateway's timestamp is not newer: %s", td.msg);
        }
    }
    ferry_meta_free(b);
    return FERRY_OK;
}
