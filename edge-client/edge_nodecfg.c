#include "edge_nodecfg.h"

#include "ferry_crc32.h"
#include "ferry_fs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRC_PREFIX   "crc32="
#define CRC_LINE_LEN (sizeof(CRC_PREFIX) - 1 + 8 + 1)

/* Keys with a meaning here; each bit of `seen` in parse is one of them. */
enum known { K_FORMAT, K_ID, K_PRODUCT, K_HW_MODEL, K_HW_REVISION, K_GATEWAY, K_TRUST, K__COUNT };
static const char *const KNOWN[K__COUNT] = {"format",      "id",      "product", "hw_model",
                                            "hw_revision", "gateway", "trust"};

struct edge_nodecfg *edge_nodecfg_new(void)
{
    return calloc(1, sizeof(struct edge_nodecfg));
}

void edge_nodecfg_free(struct edge_nodecfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nextra; i++) {
        free(cfg->extra[i].key);
        free(cfg->extra[i].value);
    }
    free(cfg->extra);
    free(cfg);
}

static bool key_ok(const char *k, size_t n)
{
    if (n == 0 || n > EDGE_NODECFG_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool value_ok(const char *v, size_t n)
{
    if (n > EDGE_NODECFG_VALUE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static int known_index(const char *k, size_t n)
{
    for (int i = 0; i < K__COUNT; i++) {
        if (strlen(KNOWN[i]) == n && memcmp(KNOWN[i], k, n) == 0)
            return i;
    }
    return -1;
}

#define TAG_PREFIX "tag."

static bool is_tag(const char *k, size_t n)
{
    return n > 4 && memcmp(k, TAG_PREFIX, 4) == 0;
}

static bool is_reserved(const char *k, size_t n)
{
    return known_index(k, n) >= 0 || (n == 5 && memcmp(k, "crc32", 5) == 0) || is_tag(k, n);
}

/* A "tag.<key>=<value>" line. */
static enum ferry_err add_tag(struct edge_nodecfg *cfg, const char *k, size_t kn, const char *v,
                              size_t vn, struct ferry_diag *d)
{
    char key[FERRY_TAG_KEY_MAX + 1], value[FERRY_TAG_VALUE_MAX + 1];
    if (kn - 4 > FERRY_TAG_KEY_MAX || vn > FERRY_TAG_VALUE_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: tag '%.*s' is too long", (int)kn, k);
    memcpy(key, k + 4, kn - 4);
    key[kn - 4] = 0;
    memcpy(value, v, vn);
    value[vn] = 0;
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    memcpy(ni.tags, cfg->tags, sizeof(ni.tags));
    ni.ntags = cfg->ntags;
    if (ferry_nodeinfo_tag(&ni, key))
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: key '%.*s' appears twice", (int)kn,
                          k);
    if (!vn || !ferry_tag_key_valid(key) || !ferry_id_valid(value))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: tag '%.*s' needs a key of [a-z0-9_.-] and an identifier "
                          "as its value",
                          (int)kn, k);
    enum ferry_err err = ferry_nodeinfo_set_tag(&ni, key, value, d);
    if (err != FERRY_OK)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "node config: more than %d tags",
                          FERRY_NODE_MAX_TAGS);
    memcpy(cfg->tags, ni.tags, sizeof(cfg->tags));
    cfg->ntags = ni.ntags;
    return FERRY_OK;
}

/* The checks both parse and format apply to the known fields. */
static enum ferry_err check_fields(const struct edge_nodecfg *cfg, struct ferry_diag *d)
{
    if (!ferry_id_valid(cfg->id))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: key 'id' must be a valid id, got '%s'", cfg->id);
    if (cfg->product[0] && !ferry_id_valid(cfg->product))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: key 'product' must be a valid id, got '%s'", cfg->product);
    if (!ferry_id_valid(cfg->hw_model))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: key 'hw_model' must be a valid id, got '%s'",
                          cfg->hw_model);
    if (cfg->hw_revision[0] && !ferry_id_valid(cfg->hw_revision))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: key 'hw_revision' must be a valid id, got '%s'",
                          cfg->hw_revision);
    if (strncmp(cfg->gateway, "coap://", 7) != 0 && strncmp(cfg->gateway, "coaps://", 8) != 0)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: key 'gateway' must be a coap:// or coaps:// URI, got '%s'",
                          cfg->gateway);
    if (!cfg->trust[0])
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: key 'trust' must not be empty");
    if (cfg->ntags > FERRY_NODE_MAX_TAGS)
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: more than %d tags",
                          FERRY_NODE_MAX_TAGS);
    for (size_t i = 0; i < cfg->ntags; i++) {
        const struct ferry_tag *t = &cfg->tags[i];
        if (!ferry_tag_key_valid(t->key) || !ferry_id_valid(t->value) ||
            (i > 0 && strcmp(cfg->tags[i - 1].key, t->key) >= 0))
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "node config: tag %zu is invalid or out of "
                              "order",
                              i);
    }
    const char *strs[] = {cfg->gateway, cfg->trust};
    for (size_t i = 0; i < 2; i++) {
        if (!value_ok(strs[i], strnlen(strs[i], EDGE_NODECFG_VALUE_MAX + 1)))
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "node config: key '%s' holds control characters or is too long",
                              i == 0 ? "gateway" : "trust");
    }
    return FERRY_OK;
}

static enum ferry_err check_extras(const struct edge_nodecfg *cfg, struct ferry_diag *d)
{
    if (cfg->nextra > EDGE_NODECFG_MAX_EXTRA)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "node config: %zu unknown keys, the limit is %d",
                          cfg->nextra, EDGE_NODECFG_MAX_EXTRA);
    for (size_t i = 0; i < cfg->nextra; i++) {
        const char *k = cfg->extra[i].key, *v = cfg->extra[i].value;
        size_t kn = strlen(k);
        if (!key_ok(k, kn) || is_reserved(k, kn) || !value_ok(v, strlen(v)))
            return ferry_fail(d, FERRY_E_MALFORMED, "node config: extra key '%.64s' is not valid",
                              k);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->extra[j].key, k) == 0)
                return ferry_fail(d, FERRY_E_MALFORMED, "node config: key '%s' appears twice", k);
        }
    }
    return FERRY_OK;
}

static enum ferry_err copy_value(char *dst, size_t cap, const char *v, size_t n, const char *key,
                                 struct ferry_diag *d)
{
    if (n >= cap)
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: key '%s' is longer than %zu bytes",
                          key, cap - 1);
    memcpy(dst, v, n);
    dst[n] = 0;
    return FERRY_OK;
}

static enum ferry_err parse_format(const char *v, size_t n, struct ferry_diag *d)
{
    unsigned long f = 0;
    size_t i = 0;
    while (i < n && i < 9 && v[i] >= '0' && v[i] <= '9')
        f = f * 10 + (unsigned long)(v[i++] - '0');
    if (n == 0 || i != n || f < EDGE_NODECFG_FORMAT)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: key 'format' must be an integer >= %d, got '%.*s'",
                          EDGE_NODECFG_FORMAT, (int)(n > 16 ? 16 : n), v);
    return FERRY_OK;
}

/* Where each known key's value goes; format has no field (cap 0). */
static const struct {
    size_t off, cap;
} FIELDS[K__COUNT] = {
    [K_FORMAT] = {0, 0},
    [K_ID] = {offsetof(struct edge_nodecfg, id), sizeof(((struct edge_nodecfg *)0)->id)},
    [K_PRODUCT] = {offsetof(struct edge_nodecfg, product),
                   sizeof(((struct edge_nodecfg *)0)->product)},
    [K_HW_MODEL] = {offsetof(struct edge_nodecfg, hw_model),
                    sizeof(((struct edge_nodecfg *)0)->hw_model)},
    [K_HW_REVISION] = {offsetof(struct edge_nodecfg, hw_revision),
                       sizeof(((struct edge_nodecfg *)0)->hw_revision)},
    [K_GATEWAY] = {offsetof(struct edge_nodecfg, gateway),
                   sizeof(((struct edge_nodecfg *)0)->gateway)},
    [K_TRUST] = {offsetof(struct edge_nodecfg, trust), sizeof(((struct edge_nodecfg *)0)->trust)},
};

static enum ferry_err set_known(struct edge_nodecfg *cfg, enum known k, const char *v, size_t n,
                                struct ferry_diag *d)
{
    if (k == K_FORMAT)
        return parse_format(v, n, d);
    return copy_value((char *)cfg + FIELDS[k].off, FIELDS[k].cap, v, n, KNOWN[k], d);
}

static enum ferry_err add_extra(struct edge_nodecfg *cfg, const char *k, size_t kn, const char *v,
                                size_t vn, struct ferry_diag *d)
{
    for (size_t i = 0; i < cfg->nextra; i++) {
        if (strlen(cfg->extra[i].key) == kn && memcmp(cfg->extra[i].key, k, kn) == 0)
            return ferry_fail(d, FERRY_E_MALFORMED, "node config: key '%.*s' appears twice",
                              (int)kn, k);
    }
    if (cfg->nextra == EDGE_NODECFG_MAX_EXTRA)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "node config: more than %d unknown keys",
                          EDGE_NODECFG_MAX_EXTRA);
    struct edge_nodecfg_kv *grown = realloc(cfg->extra, (cfg->nextra + 1) * sizeof(*grown));
    if (!grown)
        return ferry_fail(d, FERRY_E_NOMEM, "node config: out of memory");
    cfg->extra = grown;
    char *key = strndup(k, kn), *value = strndup(v, vn);
    if (!key || !value) {
        free(key);
        free(value);
        return ferry_fail(d, FERRY_E_NOMEM, "node config: out of memory");
    }
    cfg->extra[cfg->nextra].key = key;
    cfg->extra[cfg->nextra].value = value;
    cfg->nextra++;
    return FERRY_OK;
}

static enum ferry_err parse_line(struct edge_nodecfg *cfg, const char *line, size_t n,
                                 unsigned lineno, unsigned *seen, struct ferry_diag *d)
{
    if (n == 0 || line[0] == '#')
        return FERRY_OK;
    const char *eq = memchr(line, '=', n);
    if (!eq)
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: line %u: expected key=value", lineno);
    size_t kn = (size_t)(eq - line), vn = n - kn - 1;
    const char *v = eq + 1;
    if (!key_ok(line, kn))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: line %u: key must be 1..%d of [a-z0-9_.-]", lineno,
                          EDGE_NODECFG_KEY_MAX);
    if (!value_ok(v, vn))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "node config: line %u: value holds control characters or is over %d "
                          "bytes",
                          lineno, EDGE_NODECFG_VALUE_MAX);
    if (kn == 5 && memcmp(line, "crc32", 5) == 0)
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: line %u: crc32 must be the last line",
                          lineno);
    if (is_tag(line, kn))
        return add_tag(cfg, line, kn, v, vn, d);
    int k = known_index(line, kn);
    if (k < 0)
        return add_extra(cfg, line, kn, v, vn, d);
    if (*seen & (1u << k))
        return ferry_fail(d, FERRY_E_MALFORMED, "node config: key '%s' appears twice", KNOWN[k]);
    *seen |= 1u << k;
    return set_known(cfg, (enum known)k, v, vn, d);
}

/* Checks the last line and returns where it starts. */
static enum ferry_err check_crc(const char *buf, size_t len, size_t *body_len, struct ferry_diag *d)
{
    if (len < CRC_LINE_LEN || buf[len - 1] != '\n')
        return ferry_fail(d, FERRY_E_CORRUPT, "node config: does not end with a crc32 line");
    size_t start = len - CRC_LINE_LEN;
    if ((start > 0 && buf[start - 1] != '\n') ||
        memcmp(buf + start, CRC_PREFIX, sizeof(CRC_PREFIX) - 1) != 0)
        return ferry_fail(d, FERRY_E_CORRUPT, "node config: does not end with a crc32 line");
    uint32_t want = 0;
    for (size_t i = sizeof(CRC_PREFIX) - 1; i < CRC_LINE_LEN - 1; i++) {
        char c = buf[start + i];
        int nib = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (nib < 0)
            return ferry_fail(d, FERRY_E_CORRUPT,
                              "node config: crc32 must be 8 lower-case hex digits");
        want = (want << 4) | (uint32_t)nib;
    }
    if (ferry_crc32(0, buf, start) != want)
        return ferry_fail(d, FERRY_E_CORRUPT, "node config: CRC mismatch, the file is damaged");
    *body_len = start;
    return FERRY_OK;
}

static enum ferry_err parse_body(struct edge_nodecfg *cfg, const char *buf, size_t len,
                                 struct ferry_diag *d)
{
    unsigned seen = 0, lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = (size_t)(nl - (buf + pos)); /* the body ends with '\n', so nl is set */
        enum ferry_err err = parse_line(cfg, buf + pos, n, ++lineno, &seen, d);
        if (err != FERRY_OK)
            return err;
        pos += n + 1;
    }
    static const enum known required[] = {K_FORMAT, K_ID, K_HW_MODEL, K_GATEWAY, K_TRUST};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!(seen & (1u << required[i])))
            return ferry_fail(d, FERRY_E_MALFORMED, "node config: key '%s' is missing",
                              KNOWN[required[i]]);
    }
    return check_fields(cfg, d);
}

enum ferry_err edge_nodecfg_parse(const char *buf, size_t len, struct edge_nodecfg **out,
                                  struct ferry_diag *d)
{
    size_t body = 0;
    if (len > EDGE_NODECFG_MAX_BYTES)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "node config: %zu bytes, the limit is %d", len,
                          EDGE_NODECFG_MAX_BYTES);
    enum ferry_err err = check_crc(buf, len, &body, d);
    if (err != FERRY_OK)
        return err;
    struct edge_nodecfg *cfg = edge_nodecfg_new();
    if (!cfg)
        return ferry_fail(d, FERRY_E_NOMEM, "node config: out of memory");
    err = parse_body(cfg, buf, body, d);
    if (err != FERRY_OK) {
        edge_nodecfg_free(cfg);
        return err;
    }
    *out = cfg;
    return FERRY_OK;
}

enum ferry_err edge_nodecfg_load_io(const struct ferry_io *io, const char *path,
                                    struct edge_nodecfg **out, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file_io(io, path, EDGE_NODECFG_MAX_BYTES, &buf, &len, d);
    if (err == FERRY_OK)
        err = edge_nodecfg_parse((const char *)buf, len, out, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, path);
    free(buf);
    return err;
}

enum ferry_err edge_nodecfg_load(const char *path, struct edge_nodecfg **out, struct ferry_diag *d)
{
    return edge_nodecfg_load_io(NULL, path, out, d);
}

static void put_kv(FILE *f, const char *k, const char *v)
{
    fprintf(f, "%s=%s\n", k, v);
}

enum ferry_err edge_nodecfg_format(const struct edge_nodecfg *cfg, char **out, size_t *len,
                                   struct ferry_diag *d)
{
    enum ferry_err err = check_fields(cfg, d);
    if (err == FERRY_OK)
        err = check_extras(cfg, d);
    if (err != FERRY_OK)
        return err;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return ferry_fail(d, FERRY_E_NOMEM, "node config: out of memory");
    fprintf(f, "# Ferry node configuration. Keep crc32 last: it covers every line above it.\n");
    fprintf(f, "format=%d\n", EDGE_NODECFG_FORMAT);
    put_kv(f, "id", cfg->id);
    if (cfg->product[0])
        put_kv(f, "product", cfg->product);
    put_kv(f, "hw_model", cfg->hw_model);
    if (cfg->hw_revision[0])
        put_kv(f, "hw_revision", cfg->hw_revision);
    put_kv(f, "gateway", cfg->gateway);
    put_kv(f, "trust", cfg->trust);
    for (size_t i = 0; i < cfg->ntags; i++)
        fprintf(f, TAG_PREFIX "%s=%s\n", cfg->tags[i].key, cfg->tags[i].value);
    for (size_t i = 0; i < cfg->nextra; i++)
        put_kv(f, cfg->extra[i].key, cfg->extra[i].value);
    bool ok = fflush(f) == 0;
    if (ok)
        fprintf(f, CRC_PREFIX "%08x\n", (unsigned)ferry_crc32(0, buf, n));
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        free(buf);
        return ferry_fail(d, FERRY_E_NOMEM, "node config: out of memory");
    }
    if (n > EDGE_NODECFG_MAX_BYTES) {
        free(buf);
        return ferry_fail(d, FERRY_E_TOO_LARGE, "node config: %zu bytes, the limit is %d", n,
                          EDGE_NODECFG_MAX_BYTES);
    }
    *out = buf;
    *len = n;
    return FERRY_OK;
}

enum ferry_err edge_nodecfg_save_io(const struct ferry_io *io, const struct edge_nodecfg *cfg,
                                    const char *path, struct ferry_diag *d)
{
    char *buf = NULL;
    size_t len = 0;
    enum ferry_err err = edge_nodecfg_format(cfg, &buf, &len, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic_io(io, path, buf, len, 0644, d);
    free(buf);
    return err;
}

enum ferry_err edge_nodecfg_save(const struct edge_nodecfg *cfg, const char *path,
                                 struct ferry_diag *d)
{
    return edge_nodecfg_save_io(NULL, cfg, path, d);
}

const char *edge_nodecfg_extra(const struct edge_nodecfg *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->nextra; i++) {
        if (strcmp(cfg->extra[i].key, key) == 0)
            return cfg->extra[i].value;
    }
    return NULL;
}
