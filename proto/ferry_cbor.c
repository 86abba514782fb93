/* Status records in CBOR (RFC 8949) for the CoAP leg.
 *
 * Only the subset a status record needs is implemented: unsigned and
 * negative integers, text strings and one map, all with definite lengths.
 * The encoder is deterministic (RFC 8949 section 4.2.1: shortest heads,
 * keys ascending), and the decoder accepts nothing else: non-shortest heads,
 * indefinite lengths, tags, floats, simple values, byte strings, arrays,
 * nested maps, duplicate, unknown or unordered keys and trailing bytes are
 * all refused. So a record has exactly one encoding, and any accepted input
 * re-encodes to the same bytes. */
#include "ferry_cbor.h"

#include "ferry_bytes.h"
#include "ferry_status.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define WHAT "status"

enum cbor_major {
    MAJOR_UINT = 0,
    MAJOR_NINT = 1,
    MAJOR_BSTR = 2,
    MAJOR_TSTR = 3,
    MAJOR_ARRAY = 4,
    MAJOR_MAP = 5,
    MAJOR_TAG = 6,
    MAJOR_SIMPLE = 7,
};

/* Map keys; stable on the wire (PROTOCOL.md), never renumber. */
enum status_key {
    KEY_FORMAT = 0,
    KEY_NODE,
    KEY_GATEWAY,
    KEY_RELEASE,
    KEY_VERSION,
    KEY_STATE,
    KEY_BYTES,
    KEY_TOTAL,
    KEY_ERROR,
    KEY_MESSAGE,
    KEY_SEQ,
    KEY_TS,
    KEY__COUNT
};

static const char *const key_names[KEY__COUNT] = {
    "format", "node",  "gateway", "release", "version", "state",
    "bytes",  "total", "error",   "message", "seq",     "ts",
};

#define REQUIRED_KEYS                                                                              \
    (1u << KEY_FORMAT | 1u << KEY_NODE | 1u << KEY_STATE | 1u << KEY_BYTES | 1u << KEY_TOTAL |     \
     1u << KEY_SEQ | 1u << KEY_TS)

/* Longest error name ("artifact-too-large") with room to spare. */
#define ERR_NAME_MAX 32

/* ---- writer -------------------------------------------------------------- */

/* With buf NULL the writer only counts, so the encoder can learn the size
 * before it touches the caller's buffer. */
struct cbor_out {
    uint8_t *buf;
    size_t len;
};

static void put_bytes(struct cbor_out *o, const void *p, size_t n)
{
    if (o->buf)
        memcpy(o->buf + o->len, p, n);
    o->len += n;
}

/* The shortest head for val, as deterministic encoding requires. */
static void put_head(struct cbor_out *o, enum cbor_major major, uint64_t val)
{
    uint8_t h[9];
    size_t n;
    uint8_t ib = (uint8_t)(major << 5);
    if (val < 24) {
        h[0] = ib | (uint8_t)val;
        n = 1;
    } else {
        unsigned width = val <= 0xff ? 1 : val <= 0xffff ? 2 : val <= 0xffffffffu ? 4 : 8;
        h[0] = ib | (uint8_t)(width == 1 ? 24 : width == 2 ? 25 : width == 4 ? 26 : 27);
        ferry_put_be_n(h + 1, val, width);
        n = 1 + width;
    }
    put_bytes(o, h, n);
}

static void put_int(struct cbor_out *o, int64_t v)
{
    if (v >= 0)
        put_head(o, MAJOR_UINT, (uint64_t)v);
    else
        put_head(o, MAJOR_NINT, (uint64_t)(-(v + 1)));
}

static void put_text(struct cbor_out *o, const char *s)
{
    size_t n = strlen(s);
    put_head(o, MAJOR_TSTR, n);
    put_bytes(o, s, n);
}

static void put_uint_field(struct cbor_out *o, enum status_key key, uint64_t v)
{
    put_head(o, MAJOR_UINT, key);
    put_head(o, MAJOR_UINT, v);
}

/* Empty text is left out: absence is its one encoding. */
static void put_text_field(struct cbor_out *o, enum status_key key, const char *s)
{
    if (!s[0])
        return;
    put_head(o, MAJOR_UINT, key);
    put_text(o, s);
}

/* Keys in ascending order, as deterministic encoding requires. */
static void put_status(struct cbor_out *o, const struct ferry_status *st)
{
    const char *error = st->error == FERRY_OK ? "" : ferry_err_name(st->error);
    uint64_t pairs = 7 + (st->gateway[0] != 0) + (st->release_id[0] != 0) + (st->version[0] != 0) +
                     (error[0] != 0) + (st->message[0] != 0);
    put_head(o, MAJOR_MAP, pairs);
    put_uint_field(o, KEY_FORMAT, FERRY_STATUS_FORMAT);
    put_text_field(o, KEY_NODE, st->node);
    put_text_field(o, KEY_GATEWAY, st->gateway);
    put_text_field(o, KEY_RELEASE, st->release_id);
    put_text_field(o, KEY_VERSION, st->version);
    put_uint_field(o, KEY_STATE, (uint64_t)st->state);
    put_uint_field(o, KEY_BYTES, st->bytes);
    put_uint_field(o, KEY_TOTAL, st->total);
    put_text_field(o, KEY_ERROR, error);
    put_text_field(o, KEY_MESSAGE, st->message);
    put_uint_field(o, KEY_SEQ, st->seq);
    put_head(o, MAJOR_UINT, KEY_TS);
    put_int(o, st->ts);
}

enum ferry_err ferry_status_to_cbor(const struct ferry_status *st, uint8_t *buf, size_t cap,
                                    size_t *len, struct ferry_diag *d)
{
    if (st->nvia)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "status: a record with 'via' travels as JSON, not CBOR");
    enum ferry_err err = ferry_status_check(st, FERRY_E_INVALID_ARG, d);
    if (err != FERRY_OK)
        return err;
    struct cbor_out count = {NULL, 0};
    put_status(&count, st);
    if (count.len > cap)
        return ferry_fail(d, FERRY_E_TOO_LARGE,
                          WHAT ": CBOR record needs %zu bytes, buffer has %zu", count.len, cap);
    struct cbor_out o = {buf, 0};
    put_status(&o, st);
    *len = o.len;
    return FERRY_OK;
}

/* ---- reader -------------------------------------------------------------- */

struct cbor_in {
    const uint8_t *buf;
    size_t len;
    size_t pos;
};

/* Reads one head. `ctx` names what is being read ("field 'seq'") for the
 * message. Refuses what deterministic CBOR never contains. */
static enum ferry_err get_head(struct cbor_in *in, const char *ctx, enum cbor_major *major,
                               uint64_t *val, struct ferry_diag *d)
{
    size_t at = in->pos;
    if (at >= in->len)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": CBOR truncated at byte %zu (%s)", at, ctx);
    uint8_t ib = in->buf[at];
    unsigned m = ib >> 5, ai = ib & 31u;
    if (m == MAJOR_TAG || m == MAJOR_SIMPLE)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": %s: CBOR tags, floats and simple values are not allowed "
                               "(byte %zu)",
                          ctx, at);
    if (ai == 31)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": %s: indefinite lengths are not allowed (byte %zu)", ctx, at);
    if (ai > 27)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": %s: reserved CBOR head 0x%02x (byte %zu)",
                          ctx, ib, at);
    size_t width = ai < 24 ? 0 : (size_t)1 << (ai - 24);
    if (in->len - at - 1 < width)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": CBOR truncated at byte %zu (%s)", at, ctx);
    uint64_t v = ai < 24 ? ai : ferry_get_be_n(in->buf + at + 1, width);
    /* Shortest form only: each width must be needed by the value. */
    static const uint64_t below[] = {24, 0x100, 0x10000, UINT64_C(0x100000000)};
    if (width && v < below[ai - 24])
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": %s: integer head is not in its shortest form (byte %zu)", ctx,
                          at);
    in->pos = at + 1 + width;
    *major = (enum cbor_major)m;
    *val = v;
    return FERRY_OK;
}

static enum ferry_err get_uint(struct cbor_in *in, unsigned key, uint64_t max, uint64_t *out,
                               struct ferry_diag *d)
{
    char ctx[32];
    snprintf(ctx, sizeof(ctx), "field '%s'", key_names[key]);
    enum cbor_major major = MAJOR_UINT;
    uint64_t v = 0;
    enum ferry_err err = get_head(in, ctx, &major, &v, d);
    if (err != FERRY_OK)
        return err;
    if (major != MAJOR_UINT)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field '%s' must be an unsigned integer",
                          key_names[key]);
    if (v > max)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field '%s' must be at most %" PRIu64 ", got %" PRIu64,
                          key_names[key], max, v);
    *out = v;
    return FERRY_OK;
}

static enum ferry_err get_ts(struct cbor_in *in, int64_t *out, struct ferry_diag *d)
{
    enum cbor_major major = MAJOR_UINT;
    uint64_t v = 0;
    enum ferry_err err = get_head(in, "field 'ts'", &major, &v, d);
    if (err != FERRY_OK)
        return err;
    if (major != MAJOR_UINT && major != MAJOR_NINT)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'ts' must be an integer");
    /* A negative head means -1 - v; keep both within +-2^53. */
    uint64_t lim =
        major == MAJOR_UINT ? (uint64_t)FERRY_STATUS_INT_MAX : (uint64_t)FERRY_STATUS_INT_MAX - 1;
    if (v > lim)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'ts' must be within +-2^53");
    *out = major == MAJOR_UINT ? (int64_t)v : -1 - (int64_t)v;
    return FERRY_OK;
}

/* A non-empty text string of at most max bytes into out (cap > max). Empty
 * strings are refused: the encoder leaves such a field out. */
static enum ferry_err get_text(struct cbor_in *in, unsigned key, size_t max, char *out,
                               struct ferry_diag *d)
{
    const char *name = key_names[key];
    char ctx[32];
    snprintf(ctx, sizeof(ctx), "field '%s'", name);
    enum cbor_major major = MAJOR_UINT;
    uint64_t n = 0;
    enum ferry_err err = get_head(in, ctx, &major, &n, d);
    if (err != FERRY_OK)
        return err;
    if (major != MAJOR_TSTR)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field '%s' must be a text string", name);
    if (n == 0 || n > max)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field '%s' must be 1..%zu bytes (or absent), got %" PRIu64, name,
                          max, n);
    if (n > in->len - in->pos)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": CBOR truncated inside field '%s'", name);
    const uint8_t *p = in->buf + in->pos;
    if (!ferry_utf8_valid(p, (size_t)n) || memchr(p, 0, (size_t)n))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field '%s' must be UTF-8 text without NUL bytes", name);
    memcpy(out, p, (size_t)n);
    out[n] = 0;
    in->pos += (size_t)n;
    return FERRY_OK;
}

static enum ferry_err get_error(struct cbor_in *in, enum ferry_err *out, struct ferry_diag *d)
{
    char name[ERR_NAME_MAX + 1];
    enum ferry_err err = get_text(in, KEY_ERROR, ERR_NAME_MAX, name, d);
    if (err != FERRY_OK)
        return err;
    enum ferry_err e;
    if (ferry_err_from_name(name, &e) != FERRY_OK || e == FERRY_OK)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'error' must name an error such as 'hash-mismatch' (or "
                               "be absent), got '%s'",
                          name);
    *out = e;
    return FERRY_OK;
}

static enum ferry_err get_field(struct cbor_in *in, unsigned key, struct ferry_status *st,
                                struct ferry_diag *d)
{
    const uint64_t max = (uint64_t)FERRY_STATUS_INT_MAX;
    uint64_t v = 0;
    enum ferry_err err;
    switch ((enum status_key)key) {
    case KEY_FORMAT:
        err = get_uint(in, key, UINT64_MAX, &v, d);
        if (err == FERRY_OK && v != FERRY_STATUS_FORMAT)
            err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'format' must be %d, got %" PRIu64,
                             FERRY_STATUS_FORMAT, v);
        return err;
    case KEY_NODE:
        return get_text(in, key, FERRY_ID_MAX, st->node, d);
    case KEY_GATEWAY:
        return get_text(in, key, FERRY_ID_MAX, st->gateway, d);
    case KEY_RELEASE:
        return get_text(in, key, FERRY_NAME_MAX, st->release_id, d);
    case KEY_VERSION:
        return get_text(in, key, FERRY_VERSION_MAX, st->version, d);
    case KEY_MESSAGE:
        return get_text(in, key, FERRY_STATUS_MESSAGE_MAX, st->message, d);
    case KEY_STATE:
        err = get_uint(in, key, FERRY_STATE__COUNT - 1, &v, d);
        st->state = (enum ferry_state)v;
        return err;
    case KEY_BYTES:
        return get_uint(in, key, max, &st->bytes, d);
    case KEY_TOTAL:
        return get_uint(in, key, max, &st->total, d);
    case KEY_ERROR:
        return get_error(in, &st->error, d);
    case KEY_SEQ:
        return get_uint(in, key, max, &st->seq, d);
    case KEY_TS:
        return get_ts(in, &st->ts, d);
    case KEY__COUNT:
        break;
    }
    return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": unknown CBOR key %u", key);
}

/* Reads one key, refusing unknown, repeated and out-of-order keys. */
static enum ferry_err get_key(struct cbor_in *in, uint32_t *seen, unsigned *key,
                              struct ferry_diag *d)
{
    enum cbor_major major = MAJOR_UINT;
    uint64_t k = 0;
    enum ferry_err err = get_head(in, "map key", &major, &k, d);
    if (err != FERRY_OK)
        return err;
    if (major != MAJOR_UINT)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": CBOR map keys must be unsigned integers");
    if (k >= KEY__COUNT)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": unknown CBOR key %" PRIu64, k);
    if (*seen & (1u << k))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": duplicate CBOR key %" PRIu64 " ('%s')", k,
                          key_names[k]);
    if (*seen >> k)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": CBOR key %" PRIu64 " ('%s') out of order: keys must ascend", k,
                          key_names[k]);
    *seen |= 1u << k;
    *key = (unsigned)k;
    return FERRY_OK;
}

static enum ferry_err get_map(struct cbor_in *in, struct ferry_status *st, struct ferry_diag *d)
{
    enum cbor_major major = MAJOR_UINT;
    uint64_t n = 0;
    enum ferry_err err = get_head(in, "record", &major, &n, d);
    if (err != FERRY_OK)
        return err;
    if (major != MAJOR_MAP)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": CBOR record must be a map");
    if (n > KEY__COUNT)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": CBOR map has %" PRIu64 " entries, at most %d", n, KEY__COUNT);
    uint32_t seen = 0;
    for (uint64_t i = 0; i < n; i++) {
        unsigned key = 0;
        err = get_key(in, &seen, &key, d);
        if (err == FERRY_OK)
            err = get_field(in, key, st, d);
        if (err != FERRY_OK)
            return err;
    }
    for (unsigned k = 0; k < KEY__COUNT; k++) {
        if ((REQUIRED_KEYS & (1u << k)) && !(seen & (1u << k)))
            return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": missing field '%s' (CBOR key %u)",
                              key_names[k], k);
    }
    return FERRY_OK;
}

enum ferry_err ferry_status_from_cbor(const uint8_t *buf, size_t len, struct ferry_status *out,
                                      struct ferry_diag *d)
{
    if (len > FERRY_STATUS_MAX_BYTES)
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": %zu bytes, the limit is %d", len,
                          FERRY_STATUS_MAX_BYTES);
    if (len == 0)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": empty input");
    struct cbor_in in = {buf, len, 0};
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    enum ferry_err err = get_map(&in, &st, d);
    if (err != FERRY_OK)
        return err;
    if (in.pos != len)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": %zu trailing bytes after the CBOR record",
                          len - in.pos);
    err = ferry_status_check(&st, FERRY_E_MALFORMED, d);
    if (err != FERRY_OK)
        return err;
    *out = st;
    return FERRY_OK;
}
