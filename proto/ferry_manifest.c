#include "ferry_manifest.h"

#include "ferry_hex.h"
#include "ferry_json.h"
#include "ferry_module_json.h"
#include "ferry_targets_json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHAT         "manifest"
#define JSON_INT_MAX (INT64_C(1) << 53) /* integers above this lose precision */
#define KEY_MAX      32                 /* "revisions[7]", "hardware[7]" and the like */

bool ferry_utf8_valid(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = buf[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false; /* continuation byte first, or 0xF8..0xFF */
        }
        if (len - i <= n)
            return false; /* sequence cut short by the end of input */
        for (size_t k = 1; k <= n; k++) {
            if ((buf[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (buf[i + k] & 0x3F);
        }
        /* The minimum per length refuses overlongs (C0 80 for NUL included). */
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Same rule as ferry_id_valid() (ferry_names.h), kept here so the manifest
 * does not depend on the topic builders; cap bounds the read for structs
 * filled by hand. */
static bool id_valid(const char *s, size_t max)
{
    size_t len = strnlen(s, max + 1);
    if (len == 0 || len > max || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    }
    return true;
}

static bool lower_hex(const char *s, size_t ndigits)
{
    if (strnlen(s, ndigits + 1) != ndigits)
        return false;
    for (size_t i = 0; i < ndigits; i++) {
        if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return false;
    }
    return true;
}

/* RFC 6838 restricted-name: 1..127 characters, starting alphanumeric. */
static bool restricted_name(const char *s, size_t len)
{
    if (len == 0 || len > 127 || !is_alnum(s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!is_alnum(s[i]) && !strchr("!#$&-^_.+", s[i]))
            return false;
    }
    return true;
}

static bool media_type_valid(const char *s)
{
    size_t len = strnlen(s, FERRY_MEDIA_TYPE_MAX + 1);
    const char *slash = memchr(s, '/', len);
    if (len > FERRY_MEDIA_TYPE_MAX || !slash)
        return false;
    size_t type_len = (size_t)(slash - s);
    return restricted_name(s, type_len) && restricted_name(slash + 1, len - type_len - 1);
}

/* ---- Semantic versions ---- */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return n > 0;
}

/* A numeric version part: digits, no leading zero, no overflow. */
static bool parse_num(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!is_digit(*s) || (s[0] == '0' && is_digit(s[1])))
        return false;
    for (; is_digit(*s); s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *p = s;
    *out = v;
    return true;
}

/* Dot-separated identifiers of [0-9A-Za-z-], none empty; numeric ones may
 * not have leading zeros in a pre-release (build metadata allows them). */
static bool idents_valid(const char *s, size_t n, bool no_leading_zeros)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0)
                return false;
            if (no_leading_zeros && len > 1 && s[start] == '0' && all_digits(s + start, len))
                return false;
            start = i + 1;
        } else if (!is_alnum(s[i]) && s[i] != '-') {
            return false;
        }
    }
    return true;
}

enum ferry_err ferry_semver_parse(const char *s, struct ferry_semver *out)
{
    struct ferry_semver v = {0};
    uint64_t *parts[3] = {&v.major, &v.minor, &v.patch};
    if (strnlen(s, FERRY_VERSION_MAX + 1) > FERRY_VERSION_MAX)
        return FERRY_E_MALFORMED;
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        if (i > 0 && *p++ != '.')
            return FERRY_E_MALFORMED;
        if (!parse_num(&p, parts[i]))
            return FERRY_E_MALFORMED;
    }
    const char *plus = strchr(p, '+');
    size_t pre_end = plus ? (size_t)(plus - p) : strlen(p);
    if (*p == '-') {
        if (!idents_valid(p + 1, pre_end - 1, true))
            return FERRY_E_MALFORMED;
        memcpy(v.prerelease, p + 1, pre_end - 1);
        v.prerelease[pre_end - 1] = 0;
    } else if (pre_end != 0) {
        return FERRY_E_MALFORMED;
    }
    if (plus && !idents_valid(plus + 1, strlen(plus + 1), false))
        return FERRY_E_MALFORMED;
    *out = v;
    return FERRY_OK;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

/* Numeric identifiers compare as numbers (no leading zeros, so a longer one
 * is larger) and sort below alphanumeric ones, which compare in ASCII. */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    bool anum = all_digits(a, an), bnum = all_digits(b, bn);
    if (anum != bnum)
        return anum ? -1 : 1;
    if (anum && an != bn)
        return an < bn ? -1 : 1;
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return cmp_u64(an, bn);
}

static int cmp_prerelease(const char *a, const char *b)
{
    /* A release ranks above any of its pre-releases. */
    if (!*a || !*b)
        return (!*a) - (!*b);
    for (;;) {
        size_t an = strcspn(a, "."), bn = strcspn(b, ".");
        int c = cmp_ident(a, an, b, bn);
        if (c != 0)
            return c;
        a += an;
        b += bn;
        if (!*a || !*b)
            return (*a != 0) - (*b != 0); /* more identifiers rank higher */
        a++;
        b++;
    }
}

int ferry_semver_cmp(const struct ferry_semver *a, const struct ferry_semver *b)
{
    int c = cmp_u64(a->major, b->major);
    if (c == 0)
        c = cmp_u64(a->minor, b->minor);
    if (c == 0)
        c = cmp_u64(a->patch, b->patch);
    if (c == 0)
        c = cmp_prerelease(a->prerelease, b->prerelease);
    return c;
}

/* ---- Validation shared by parse and encode ---- */

/* Fails naming "path.key" (or "key" when path is NULL). */
static enum ferry_err FERRY_PRINTF(4, 5)
    bad_field(struct ferry_diag *d, const char *path, const char *key, const char *fmt, ...)
{
    char why[FERRY_DIAG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field '%s%s%s' %s", path ? path : "",
                      path ? "." : "", key, why);
}

/* The shared JSON getters name a field by its key alone; inside a nested
 * object the message must name the whole path ("artifact.size"), so this
 * inserts "path." after the getter's "field '". */
static enum ferry_err in_path(enum ferry_err err, struct ferry_diag *d, const char *path)
{
    if (err == FERRY_OK || !d)
        return err;
    char *at = strstr(d->msg, "field '");
    if (!at)
        return err;
    at += strlen("field '");
    char tail[FERRY_DIAG_MAX];
    snprintf(tail, sizeof(tail), "%s", at);
    snprintf(at, sizeof(d->msg) - (size_t)(at - d->msg), "%s.%s", path, tail);
    return err;
}

static enum ferry_err check_range(struct ferry_diag *d, const char *path, const char *key,
                                  int64_t v, int64_t min, int64_t max)
{
    if (v < min || v > max)
        return bad_field(d, path, key, "must be in %" PRId64 "..%" PRId64 ", got %" PRId64, min,
                         max, v);
    return FERRY_OK;
}

static enum ferry_err check_id(struct ferry_diag *d, const char *path, const char *key,
                               const char *v, size_t max)
{
    if (!id_valid(v, max))
        return bad_field(d, path, key,
                         "must be 1..%zu of [A-Za-z0-9._-] not starting with '.', got '%.*s'", max,
                         (int)max, v);
    return FERRY_OK;
}

static enum ferry_err validate_hw(const struct ferry_manifest *m, struct ferry_diag *d)
{
    if (m->nhw < 1 || m->nhw > FERRY_MAX_HW)
        return bad_field(d, NULL, "hardware", "must hold 1..%d entries, got %zu", FERRY_MAX_HW,
                         m->nhw);
    for (size_t i = 0; i < m->nhw; i++) {
        const struct ferry_hw *hw = &m->hw[i];
        char path[KEY_MAX], key[KEY_MAX];
        snprintf(path, sizeof(path), "hardware[%zu]", i);
        enum ferry_err err = check_id(d, path, "model", hw->model, FERRY_NAME_MAX);
        if (err != FERRY_OK)
            return err;
        if (hw->nrevisions > FERRY_MAX_REVISIONS)
            return bad_field(d, path, "revisions", "must hold 0..%d entries, got %zu",
                             FERRY_MAX_REVISIONS, hw->nrevisions);
        for (size_t j = 0; j < hw->nrevisions; j++) {
            snprintf(key, sizeof(key), "revisions[%zu]", j);
            err = check_id(d, path, key, hw->revisions[j], FERRY_REVISION_MAX);
            if (err != FERRY_OK)
                return err;
        }
    }
    return FERRY_OK;
}

static enum ferry_err validate_times(const struct ferry_manifest *m, struct ferry_diag *d)
{
    const struct ferry_constraints *c = &m->constraints;
    enum ferry_err err = check_range(d, NULL, "issued_at", m->issued_at, 0, JSON_INT_MAX);
    if (err == FERRY_OK)
        err = check_range(d, NULL, "expires_at", m->expires_at, 0, JSON_INT_MAX);
    if (err == FERRY_OK && m->expires_at <= m->issued_at)
        err =
            bad_field(d, NULL, "expires_at", "must be after issued_at (%" PRId64 "), got %" PRId64,
                      m->issued_at, m->expires_at);
    if (err == FERRY_OK)
        err = check_range(d, "constraints", "window_start", c->window_start, 0, JSON_INT_MAX);
    if (err == FERRY_OK)
        err = check_range(d, "constraints", "window_end", c->window_end, 0, JSON_INT_MAX);
    if (err == FERRY_OK && c->window_start && c->window_end && c->window_end <= c->window_start)
        err = bad_field(d, "constraints", "window_end",
                        "must be after window_start (%" PRId64 "), got %" PRId64, c->window_start,
                        c->window_end);
    if (err == FERRY_OK)
        err = check_range(d, "constraints", "max_deferral", c->max_deferral, 0, JSON_INT_MAX);
    return err;
}

static enum ferry_err validate(const struct ferry_manifest *m, struct ferry_diag *d)
{
    struct ferry_semver sv;
    if (m->format != FERRY_MANIFEST_FORMAT)
        return bad_field(d, NULL, "format", "must be %d, got %d", FERRY_MANIFEST_FORMAT, m->format);
    enum ferry_err err = check_id(d, NULL, "release", m->release_id, FERRY_NAME_MAX);
    if (err == FERRY_OK)
        err = check_id(d, NULL, "product", m->product, FERRY_NAME_MAX);
    if (err == FERRY_OK)
        err = check_id(d, NULL, "component", m->component, FERRY_NAME_MAX);
    if (err != FERRY_OK)
        return err;
    if (ferry_semver_parse(m->version, &sv) != FERRY_OK)
        return bad_field(d, NULL, "version", "must be semver, got '%.*s'", FERRY_VERSION_MAX,
                         m->version);
    if (m->seq > (uint64_t)JSON_INT_MAX)
        return bad_field(d, NULL, "seq", "must be in 0..%" PRId64 ", got %" PRIu64, JSON_INT_MAX,
                         m->seq);
    err = validate_hw(m, d);
    if (err != FERRY_OK)
        return err;
    if (m->size < 1 || m->size > FERRY_ARTIFACT_MAX_SIZE)
        return bad_field(d, "artifact", "size", "must be in 1..%" PRIu64 ", got %" PRIu64,
                         FERRY_ARTIFACT_MAX_SIZE, m->size);
    if (!media_type_valid(m->media_type))
        return bad_field(d, "artifact", "media_type", "must be 'type/subtype', got '%.*s'",
                         FERRY_MEDIA_TYPE_MAX, m->media_type);
    err = validate_times(m, d);
    if (err == FERRY_OK)
        err = ferry_module_check(m->media_type, &m->module, d);
    if (err == FERRY_OK)
        err = ferry_targets_check(&m->nodes, d);
    if (err != FERRY_OK)
        return err;
    if (!lower_hex(m->key_id, 16))
        return bad_field(d, NULL, "key_id", "must be 16 lower-case hex digits, got '%.*s'",
                         FERRY_NAME_MAX, m->key_id);
    return FERRY_OK;
}

/* ---- Parsing ---- */

static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* An optional or required object member; *out is NULL when it is absent. */
static enum ferry_err get_object(const cJSON *parent, const char *key, bool required,
                                 const char *const *known, const cJSON **out, struct ferry_diag *d)
{
    const cJSON *o = member(parent, key);
    *out = o;
    if (!o) {
        if (required)
            return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": missing field '%s'", key);
        return FERRY_OK;
    }
    if (!cJSON_IsObject(o))
        return bad_field(d, NULL, key, "must be an object");
    return in_path(ferry_json_only_keys(o, known, true, WHAT, d), d, key);
}

static enum ferry_err read_revisions(const cJSON *entry, const char *path, struct ferry_hw *hw,
                                     struct ferry_diag *d)
{
    const cJSON *revs = member(entry, "revisions");
    hw->nrevisions = 0;
    if (!revs)
        return FERRY_OK;
    if (!cJSON_IsArray(revs))
        return bad_field(d, path, "revisions", "must be an array of strings");
    int n = cJSON_GetArraySize(revs);
    if (n > FERRY_MAX_REVISIONS)
        return bad_field(d, path, "revisions", "must hold 0..%d entries, got %d",
                         FERRY_MAX_REVISIONS, n);
    for (const cJSON *r = revs->child; r; r = r->next) {
        char key[KEY_MAX];
        snprintf(key, sizeof(key), "revisions[%zu]", hw->nrevisions);
        if (!cJSON_IsString(r))
            return bad_field(d, path, key, "must be a string");
        size_t len = strlen(r->valuestring);
        if (len == 0 || len > FERRY_REVISION_MAX)
            return bad_field(d, path, key, "must be 1..%d bytes, got %zu", FERRY_REVISION_MAX, len);
        memcpy(hw->revisions[hw->nrevisions++], r->valuestring, len + 1);
    }
    return FERRY_OK;
}

static enum ferry_err read_hardware(const cJSON *root, struct ferry_manifest *m,
                                    struct ferry_diag *d)
{
    static const char *const keys[] = {"model", "revisions", NULL};
    const cJSON *arr = member(root, "hardware");
    if (!arr)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": missing field 'hardware'");
    if (!cJSON_IsArray(arr))
        return bad_field(d, NULL, "hardware", "must be an array of objects");
    int n = cJSON_GetArraySize(arr);
    if (n < 1 || n > FERRY_MAX_HW)
        return bad_field(d, NULL, "hardware", "must hold 1..%d entries, got %d", FERRY_MAX_HW, n);
    m->nhw = 0;
    for (const cJSON *e = arr->child; e; e = e->next) {
        struct ferry_hw *hw = &m->hw[m->nhw];
        char path[KEY_MAX];
        snprintf(path, sizeof(path), "hardware[%zu]", m->nhw++);
        if (!cJSON_IsObject(e))
            return bad_field(d, NULL, path, "must be an object");
        enum ferry_err err = in_path(ferry_json_only_keys(e, keys, true, WHAT, d), d, path);
        if (err == FERRY_OK)
            err = in_path(ferry_json_str(e, "model", true, FERRY_NAME_MAX, hw->model, WHAT, d), d,
                          path);
        if (err == FERRY_OK)
            err = read_revisions(e, path, hw, d);
        if (err != FERRY_OK)
            return err;
    }
    return FERRY_OK;
}

static enum ferry_err read_artifact(const cJSON *root, struct ferry_manifest *m,
                                    struct ferry_diag *d)
{
    static const char *const keys[] = {"sha256", "size", "media_type", NULL};
    const cJSON *a;
    char hex[FERRY_SHA256_HEX_LEN + 1];
    enum ferry_err err = get_object(root, "artifact", true, keys, &a, d);
    if (err == FERRY_OK)
        err = in_path(ferry_json_str(a, "sha256", true, FERRY_SHA256_HEX_LEN, hex, WHAT, d), d,
                      "artifact");
    if (err != FERRY_OK)
        return err;
    if (!lower_hex(hex, FERRY_SHA256_HEX_LEN) ||
        ferry_hex_decode(hex, m->sha256, FERRY_SHA256_LEN) != FERRY_OK)
        return bad_field(d, "artifact", "sha256", "must be %d lower-case hex digits, got '%s'",
                         FERRY_SHA256_HEX_LEN, hex);
    int64_t size;
    err = in_path(
        ferry_json_int(a, "size", true, 1, (int64_t)FERRY_ARTIFACT_MAX_SIZE, &size, WHAT, d), d,
        "artifact");
    if (err != FERRY_OK)
        return err;
    m->size = (uint64_t)size;
    return in_path(
        ferry_json_str(a, "media_type", true, FERRY_MEDIA_TYPE_MAX, m->media_type, WHAT, d), d,
        "artifact");
}

static enum ferry_err read_constraints(const cJSON *root, struct ferry_manifest *m,
                                       struct ferry_diag *d)
{
    static const char *const keys[] = {"must_be_idle", "window_start", "window_end", "max_deferral",
                                       NULL};
    static const char *const times[] = {"window_start", "window_end", "max_deferral"};
    struct ferry_constraints *c = &m->constraints;
    int64_t *dest[] = {&c->window_start, &c->window_end, &c->max_deferral};
    const cJSON *o;
    enum ferry_err err = get_object(root, "constraints", false, keys, &o, d);
    if (err != FERRY_OK || !o)
        return err;
    err = in_path(ferry_json_bool(o, "must_be_idle", false, &c->must_be_idle, WHAT, d), d,
                  "constraints");
    for (size_t i = 0; err == FERRY_OK && i < 3; i++)
        err = in_path(ferry_json_int(o, times[i], false, 0, JSON_INT_MAX, dest[i], WHAT, d), d,
                      "constraints");
    return err;
}

static enum ferry_err read_top(const cJSON *root, struct ferry_manifest *m, struct ferry_diag *d)
{
    int64_t format, seq;
    enum ferry_err err = ferry_json_int(root, "format", true, 0, JSON_INT_MAX, &format, WHAT, d);
    if (err != FERRY_OK)
        return err;
    if (format != FERRY_MANIFEST_FORMAT)
        return bad_field(d, NULL, "format", "must be %d, got %" PRId64, FERRY_MANIFEST_FORMAT,
                         format);
    m->format = FERRY_MANIFEST_FORMAT;
    err = ferry_json_str(root, "release", true, FERRY_NAME_MAX, m->release_id, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "product", true, FERRY_NAME_MAX, m->product, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "component", true, FERRY_NAME_MAX, m->component, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "version", true, FERRY_VERSION_MAX, m->version, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "seq", true, 0, JSON_INT_MAX, &seq, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "issued_at", true, 0, JSON_INT_MAX, &m->issued_at, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "expires_at", true, 0, JSON_INT_MAX, &m->expires_at, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "key_id", true, FERRY_NAME_MAX, m->key_id, WHAT, d);
    if (err != FERRY_OK)
        return err;
    m->seq = (uint64_t)seq;
    if (ferry_semver_parse(m->version, &m->semver) != FERRY_OK)
        return bad_field(d, NULL, "version", "must be semver, got '%s'", m->version);
    return FERRY_OK;
}

enum ferry_err ferry_manifest_parse(const uint8_t *buf, size_t len, struct ferry_manifest *out,
                                    struct ferry_diag *d)
{
    static const char *const keys[] = {"format",    "release",    "product",     "component",
                                       "version",   "seq",        "hardware",    "artifact",
                                       "issued_at", "expires_at", "constraints", "key_id",
                                       "module",    "nodes",      NULL};
    struct ferry_manifest m = {0};
    cJSON *root = NULL;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_MANIFEST_MAX_BYTES, WHAT, &root, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(root, keys, true, WHAT, d);
    if (err == FERRY_OK)
        err = read_top(root, &m, d);
    if (err == FERRY_OK)
        err = read_hardware(root, &m, d);
    if (err == FERRY_OK)
        err = read_artifact(root, &m, d);
    if (err == FERRY_OK)
        err = read_constraints(root, &m, d);
    if (err == FERRY_OK)
        err = ferry_module_read(root, &m.module, d);
    if (err == FERRY_OK)
        err = ferry_targets_read(root, &m.nodes, d);
    if (err == FERRY_OK)
        err = validate(&m, d);
    if (err == FERRY_OK)
        *out = m;
    cJSON_Delete(root);
    return err;
}

/* ---- Encoding ---- */

static bool add_int(cJSON *obj, const char *key, int64_t v)
{
    /* Raw text keeps integers exact; cJSON would print large doubles as
     * "1e+15". */
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, num) != NULL;
}

static bool add_string_to_array(cJSON *arr, const char *v)
{
    cJSON *item = cJSON_CreateString(v);
    if (item && cJSON_AddItemToArray(arr, item))
        return true;
    cJSON_Delete(item);
    return false;
}

static bool add_hw(cJSON *root, const struct ferry_manifest *m)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "hardware");
    if (!arr)
        return false;
    for (size_t i = 0; i < m->nhw; i++) {
        const struct ferry_hw *hw = &m->hw[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            return false;
        }
        if (!cJSON_AddStringToObject(e, "model", hw->model))
            return false;
        if (hw->nrevisions == 0)
            continue; /* every revision: the member is optional */
        cJSON *revs = cJSON_AddArrayToObject(e, "revisions");
        for (size_t j = 0; j < hw->nrevisions; j++) {
            if (!revs || !add_string_to_array(revs, hw->revisions[j]))
                return false;
        }
    }
    return true;
}

static bool add_artifact(cJSON *root, const struct ferry_manifest *m)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(m->sha256, FERRY_SHA256_LEN, hex);
    cJSON *a = cJSON_AddObjectToObject(root, "artifact");
    return a && cJSON_AddStringToObject(a, "sha256", hex) && add_int(a, "size", (int64_t)m->size) &&
           cJSON_AddStringToObject(a, "media_type", m->media_type);
}

static bool add_constraints(cJSON *root, const struct ferry_constraints *c)
{
    if (!c->must_be_idle && !c->window_start && !c->window_end && !c->max_deferral)
        return true;
    cJSON *o = cJSON_AddObjectToObject(root, "constraints");
    return o && cJSON_AddBoolToObject(o, "must_be_idle", c->must_be_idle) &&
           add_int(o, "window_start", c->window_start) && add_int(o, "window_end", c->window_end) &&
           add_int(o, "max_deferral", c->max_deferral);
}

static bool build(cJSON *root, const struct ferry_manifest *m)
{
    return add_int(root, "format", m->format) &&
           cJSON_AddStringToObject(root, "release", m->release_id) &&
           cJSON_AddStringToObject(root, "product", m->product) &&
           cJSON_AddStringToObject(root, "component", m->component) &&
           cJSON_AddStringToObject(root, "version", m->version) &&
           add_int(root, "seq", (int64_t)m->seq) && add_hw(root, m) && add_artifact(root, m) &&
           add_int(root, "issued_at", m->issued_at) && add_int(root, "expires_at", m->expires_at) &&
           add_constraints(root, &m->constraints) && ferry_module_write(root, &m->module) &&
           ferry_targets_write(root, &m->nodes) &&
           cJSON_AddStringToObject(root, "key_id", m->key_id);
}

enum ferry_err ferry_manifest_encode(const struct ferry_manifest *m, char **out, size_t *len,
                                     struct ferry_diag *d)
{
    char *text = NULL;
    size_t text_len = 0;
    enum ferry_err err = validate(m, d);
    if (err != FERRY_OK)
        return err;
    cJSON *root = cJSON_CreateObject();
    if (!root || !build(root, m)) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory while encoding");
        goto out;
    }
    err = ferry_json_print(root, &text, &text_len, d);
    if (err != FERRY_OK)
        goto out;
    /* Unreachable with the per-field caps (about 3 KB at most), but what we
     * encode must always parse back. */
    if (text_len > FERRY_MANIFEST_MAX_BYTES) {
        err = ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": encodes to %zu bytes, the limit is %d",
                         text_len, FERRY_MANIFEST_MAX_BYTES);
        goto out;
    }
    *out = text;
    *len = text_len;
    text = NULL;
out:
    free(text);
    cJSON_Delete(root);
    return err;
}

bool ferry_manifest_matches_hw(const struct ferry_manifest *m, const char *model,
                               const char *revision)
{
    for (size_t i = 0; i < m->nhw && i < FERRY_MAX_HW; i++) {
        const struct ferry_hw *hw = &m->hw[i];
        if (strcmp(hw->model, model) != 0)
            continue;
        if (hw->nrevisions == 0)
            return true;
        for (size_t j = 0; revision && j < hw->nrevisions && j < FERRY_MAX_REVISIONS; j++) {
            if (strcmp(hw->revisions[j], revision) == 0)
                return true;
        }
    }
    return false;
}
