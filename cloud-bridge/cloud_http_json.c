#include "cloud_http_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cj_init(struct cloud_json *j, size_t max)
{
    memset(j, 0, sizeof(*j));
    j->max = max;
    j->first[0] = true;
}

void cj_free(struct cloud_json *j)
{
    free(j->buf);
    memset(j, 0, sizeof(*j));
}

char *cj_take(struct cloud_json *j, size_t *len)
{
    char *out = cj_ok(j) && j->buf ? j->buf : NULL;
    if (len)
        *len = out ? j->len : 0;
    if (!out)
        free(j->buf);
    size_t max = j->max;
    cj_init(j, max);
    return out;
}

bool cj_ok(const struct cloud_json *j)
{
    return !j->failed;
}

static void put(struct cloud_json *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (n > j->max || j->len > j->max - n) {
        j->failed = true;
        return;
    }
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *grown = realloc(j->buf, cap);
        if (!grown) {
            j->failed = true;
            return;
        }
        j->buf = grown;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void putc1(struct cloud_json *j, char c)
{
    put(j, &c, 1);
}

/* The comma before a value, unless it follows its key or opens its container. */
static void before_value(struct cloud_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth])
        putc1(j, ',');
    j->first[j->depth] = false;
}

static void open_container(struct cloud_json *j, char c)
{
    before_value(j);
    if (j->depth + 1 >= CJ_MAX_DEPTH) {
        j->failed = true;
        return;
    }
    putc1(j, c);
    j->first[++j->depth] = true;
}

static void close_container(struct cloud_json *j, char c)
{
    if (j->depth == 0) {
        j->failed = true;
        return;
    }
    j->depth--;
    putc1(j, c);
}

void cj_obj_begin(struct cloud_json *j)
{
    open_container(j, '{');
}

void cj_obj_end(struct cloud_json *j)
{
    close_container(j, '}');
}

void cj_arr_begin(struct cloud_json *j)
{
    open_container(j, '[');
}

void cj_arr_end(struct cloud_json *j)
{
    close_container(j, ']');
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void escaped(struct cloud_json *j, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    putc1(j, '"');
    size_t run = 0; /* bytes copied as they are, written in one go */
    for (size_t i = 0; i < n && !j->failed;) {
        unsigned char c = p[i];
        size_t len = utf8_len(p + i, n - i);
        const char *esc = NULL;
        char u[8];
        if (len == 0)
            esc = "\\ufffd";
        else if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(u, sizeof(u), "\\u%04x", c);
            esc = u;
        }
        if (!esc) {
            run += len;
            i += len;
            continue;
        }
        put(j, s + i - run, run);
        run = 0;
        put(j, esc, strlen(esc));
        i += len ? len : 1;
    }
    put(j, s + n - run, run);
    putc1(j, '"');
}

void cj_key(struct cloud_json *j, const char *key)
{
    before_value(j);
    escaped(j, key, strlen(key));
    putc1(j, ':');
    j->after_key = true;
}

void cj_strn(struct cloud_json *j, const char *s, size_t n)
{
    before_value(j);
    escaped(j, s ? s : "", s ? n : 0);
}

void cj_str(struct cloud_json *j, const char *s)
{
    cj_strn(j, s, s ? strlen(s) : 0);
}

void cj_int(struct cloud_json *j, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRId64, v);
    before_value(j);
    put(j, t, (size_t)n);
}

void cj_uint(struct cloud_json *j, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRIu64, v);
    before_value(j);
    put(j, t, (size_t)n);
}

void cj_bool(struct cloud_json *j, bool v)
{
    before_value(j);
    put(j, v ? "true" : "false", v ? 4 : 5);
}

void cj_null(struct cloud_json *j)
{
    before_value(j);
    put(j, "null", 4);
}

void cj_raw(struct cloud_json *j, const char *json, size_t n)
{
    before_value(j);
    put(j, json, n);
}

void cj_kstr(struct cloud_json *j, const char *key, const char *s)
{
    cj_key(j, key);
    cj_str(j, s);
}

void cj_kint(struct cloud_json *j, const char *key, int64_t v)
{
    cj_key(j, key);
    cj_int(j, v);
}

void cj_kuint(struct cloud_json *j, const char *key, uint64_t v)
{
    cj_key(j, key);
    cj_uint(j, v);
}

void cj_kbool(struct cloud_json *j, const char *key, bool v)
{
    cj_key(j, key);
    cj_bool(j, v);
}

void cj_text(struct cloud_json *j, const char *s, size_t n)
{
    put(j, s, n);
}
