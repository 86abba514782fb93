#include "gw_psk.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_names.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct psk_entry {
    char id[FERRY_ID_MAX + 1];
    size_t line;
    size_t key_len;
    uint8_t key[GW_PSK_KEY_MAX];
};

struct gw_psk {
    size_t n, cap;
    struct psk_entry *e;
};

/* One line being parsed: the bytes, where we are, and where messages go. */
struct line {
    const char *s;
    size_t len, pos;
    const char *name;
    size_t no;
};

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_blanks(struct line *l)
{
    while (l->pos < l->len && blank(l->s[l->pos]))
        l->pos++;
}

/* The next field (up to a blank or a '#'); *n is 0 at the end of the line. */
static const char *field(struct line *l, size_t *n)
{
    skip_blanks(l);
    size_t start = l->pos;
    while (l->pos < l->len && !blank(l->s[l->pos]) && l->s[l->pos] != '#')
        l->pos++;
    *n = l->pos - start;
    return l->s + start;
}

static enum ferry_err line_fail(const struct line *l, struct ferry_diag *d, const char *what)
{
    return ferry_fail(d, FERRY_E_MALFORMED, "psk: %s:%zu: %s", l->name, l->no, what);
}

static enum ferry_err parse_id(const struct line *l, const char *s, size_t n, char *id,
                               struct ferry_diag *d)
{
    if (n > FERRY_ID_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED, "psk: %s:%zu: node id longer than %d characters",
                          l->name, l->no, FERRY_ID_MAX);
    memcpy(id, s, n);
    id[n] = '\0';
    if (!ferry_id_valid(id))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "psk: %s:%zu: node id '%s' is not an identifier ([A-Za-z0-9._-], "
                          "not starting with '.')",
                          l->name, l->no, id);
    return FERRY_OK;
}

static enum ferry_err parse_key(const struct line *l, const char *id, const char *s, size_t n,
                                struct psk_entry *e, struct ferry_diag *d)
{
    char hex[2 * GW_PSK_KEY_MAX + 1];
    if (n % 2 != 0 || n / 2 < GW_PSK_KEY_MIN || n / 2 > GW_PSK_KEY_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "psk: %s:%zu: key for '%s' must be %d..%d bytes (%d..%d hex digits), "
                          "got %zu hex digits",
                          l->name, l->no, id, GW_PSK_KEY_MIN, GW_PSK_KEY_MAX, 2 * GW_PSK_KEY_MIN,
                          2 * GW_PSK_KEY_MAX, n);
    memcpy(hex, s, n);
    hex[n] = '\0';
    enum ferry_err err = ferry_hex_decode(hex, e->key, n / 2);
    explicit_bzero(hex, sizeof(hex));
    if (err != FERRY_OK)
        return ferry_fail(d, FERRY_E_MALFORMED, "psk: %s:%zu: key for '%s' is not hexadecimal",
                          l->name, l->no, id);
    e->key_len = n / 2;
    return FERRY_OK;
}

static const struct psk_entry *find_id(const struct gw_psk *t, const char *id, size_t n)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->e[i].id) == n && memcmp(t->e[i].id, id, n) == 0)
            return &t->e[i];
    return NULL;
}

static enum ferry_err append(struct gw_psk *t, const struct psk_entry *e, struct ferry_diag *d)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct psk_entry *ne = calloc(cap, sizeof(*ne));
        if (!ne)
            return ferry_fail(d, FERRY_E_NOMEM, "psk: out of memory");
        if (t->n) {
            memcpy(ne, t->e, t->n * sizeof(*ne));
            explicit_bzero(t->e, t->n * sizeof(*ne));
        }
        free(t->e);
        t->e = ne;
        t->cap = cap;
    }
    t->e[t->n++] = *e;
    return FERRY_OK;
}

/* Blank and comment lines add nothing; any other line must be exactly
 * "<node-id> <hex key>" with an optional trailing comment. */
static enum ferry_err parse_line(struct gw_psk *t, struct line *l, struct ferry_diag *d)
{
    if (memchr(l->s, '\0', l->len))
        return line_fail(l, d, "NUL byte in the line");
    skip_blanks(l);
    if (l->pos == l->len || l->s[l->pos] == '#')
        return FERRY_OK;
    struct psk_entry e = {.line = l->no};
    size_t n;
    const char *s = field(l, &n);
    enum ferry_err err = parse_id(l, s, n, e.id, d);
    if (err != FERRY_OK)
        return err;
    const struct psk_entry *dup = find_id(t, e.id, strlen(e.id));
    if (dup)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "psk: %s:%zu: node '%s' already has a key (line %zu)", l->name, l->no,
                          e.id, dup->line);
    s = field(l, &n);
    if (n == 0)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "psk: %s:%zu: expected '<node-id> <hex key>', no key for '%s'", l->name,
                          l->no, e.id);
    err = parse_key(l, e.id, s, n, &e, d);
    if (err == FERRY_OK) {
        skip_blanks(l);
        if (l->pos < l->len && l->s[l->pos] != '#')
            err = line_fail(l, d, "unexpected text after the key");
    }
    if (err == FERRY_OK)
        err = append(t, &e, d);
    explicit_bzero(&e, sizeof(e));
    return err;
}

enum ferry_err gw_psk_parse(const char *name, const char *text, size_t len, struct gw_psk **out,
                            struct ferry_diag *d)
{
    if (len > GW_PSK_FILE_MAX)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "psk: %s: larger than %d bytes", name,
                          GW_PSK_FILE_MAX);
    struct gw_psk *t = calloc(1, sizeof(*t));
    if (!t)
        return ferry_fail(d, FERRY_E_NOMEM, "psk: out of memory");
    enum ferry_err err = FERRY_OK;
    size_t start = 0, no = 0;
    while (err == FERRY_OK && start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        struct line l = {.s = text + start, .len = end - start, .name = name, .no = ++no};
        if (l.len > 0 && l.s[l.len - 1] == '\r')
            l.len--;
        err = parse_line(t, &l, d);
        start = end + 1;
    }
    if (err == FERRY_OK && t->n == 0)
        err = ferry_fail(d, FERRY_E_MALFORMED, "psk: %s: no keys (every node would be refused)",
                         name);
    if (err != FERRY_OK) {
        gw_psk_free(t);
        return err;
    }
    *out = t;
    return FERRY_OK;
}

enum ferry_err gw_psk_load(const char *path, struct gw_psk **out, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(path, GW_PSK_FILE_MAX, &buf, &len, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "psk");
        return err;
    }
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        ferry_log_warn(
            "psk: %s is accessible to group or others (mode %03o): keep node keys private", path,
            (unsigned)(st.st_mode & 0777));
    err = gw_psk_parse(path, (const char *)buf, len, out, d);
    explicit_bzero(buf, len);
    free(buf);
    return err;
}

void gw_psk_free(struct gw_psk *t)
{
    if (!t)
        return;
    if (t->e)
        explicit_bzero(t->e, t->cap * sizeof(*t->e));
    free(t->e);
    free(t);
}

size_t gw_psk_count(const struct gw_psk *t)
{
    return t->n;
}

const uint8_t *gw_psk_find(const struct gw_psk *t, const uint8_t *id, size_t id_len,
                           size_t *key_len)
{
    if (!id || id_len == 0 || id_len > FERRY_ID_MAX)
        return NULL;
    const struct psk_entry *e = find_id(t, (const char *)id, id_len);
    if (!e)
        return NULL;
    *key_len = e->key_len;
    return e->key;
}
