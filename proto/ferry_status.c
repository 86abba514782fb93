#include "ferry_status.h"

#include "ferry_cbor.h"
#include "ferry_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define WHAT "status"

static const char *const state_names[FERRY_STATE__COUNT] = {
    [FERRY_STATE_IDLE] = "idle",
    [FERRY_STATE_AVAILABLE] = "available",
    [FERRY_STATE_DEFERRED] = "deferred",
    [FERRY_STATE_DOWNLOADING] = "downloading",
    [FERRY_STATE_VERIFYING] = "verifying",
    [FERRY_STATE_INSTALLING] = "installing",
    [FERRY_STATE_PENDING_REBOOT] = "pending-reboot",
    [FERRY_STATE_SUCCESS] = "success",
    [FERRY_STATE_FAILED] = "failed",
    [FERRY_STATE_ROLLED_BACK] = "rolled-back",
    [FERRY_STATE_REJECTED] = "rejected",
};

const char *ferry_state_name(enum ferry_state s)
{
    if ((unsigned)s >= FERRY_STATE__COUNT)
        return "unknown";
    return state_names[s];
}

enum ferry_err ferry_state_from_name(const char *name, enum ferry_state *out)
{
    for (unsigned i = 0; i < FERRY_STATE__COUNT; i++) {
        if (strcmp(state_names[i], name) == 0) {
            *out = (enum ferry_state)i;
            return FERRY_OK;
        }
    }
    return FERRY_E_INVALID_ARG;
}

bool ferry_state_is_final(enum ferry_state s)
{
    return s == FERRY_STATE_SUCCESS || s == FERRY_STATE_FAILED || s == FERRY_STATE_ROLLED_BACK ||
           s == FERRY_STATE_REJECTED;
}

bool ferry_status_seq_in_window(uint64_t last, uint64_t seq)
{
    return seq <= last || seq - last <= FERRY_STATUS_SEQ_WINDOW;
}

/* Compares up to the NUL, within the field: bytes after it are not part of
 * the record. */
#define SAME_TEXT(a, b, f) (strncmp((a)->f, (b)->f, sizeof((a)->f)) == 0)

bool ferry_status_same(const struct ferry_status *a, const struct ferry_status *b)
{
    return SAME_TEXT(a, b, node) && SAME_TEXT(a, b, release_id) && SAME_TEXT(a, b, version) &&
           a->state == b->state && a->bytes == b->bytes && a->total == b->total &&
           a->error == b->error && SAME_TEXT(a, b, message) && a->seq == b->seq && a->ts == b->ts;
}

const char *ferry_status_last_hop(const struct ferry_status *st)
{
    return st->nvia ? st->via[st->nvia - 1] : st->gateway;
}

static bool on_path(const struct ferry_status *st, const char *gw)
{
    if (strcmp(st->node, gw) == 0 || strcmp(st->gateway, gw) == 0)
        return true;
    for (size_t i = 0; i < st->nvia; i++)
        if (strcmp(st->via[i], gw) == 0)
            return true;
    return false;
}

enum ferry_err ferry_status_add_hop(struct ferry_status *st, const char *gw, struct ferry_diag *d)
{
    if (!gw || !ferry_id_valid(gw))
        return ferry_fail(d, FERRY_E_INVALID_ARG, WHAT ": gateway id '%.64s' is not valid",
                          gw ? gw : "");
    if (!st->gateway[0]) {
        snprintf(st->gateway, sizeof(st->gateway), "%s", gw);
        return FERRY_OK;
    }
    if (on_path(st, gw))
        return ferry_fail(d, FERRY_E_PROTOCOL,
                          WHAT ": record of node %s (seq %" PRIu64
                               ") came through gateway %s already: a loop in the cascade",
                          st->node, st->seq, gw);
    if (st->nvia >= FERRY_STATUS_VIA_MAX)
        return ferry_fail(d, FERRY_E_TOO_LARGE,
                          WHAT ": record of node %s (seq %" PRIu64
                               ") has passed %d parent gateways, the most a path holds",
                          st->node, st->seq, FERRY_STATUS_VIA_MAX);
    snprintf(st->via[st->nvia++], sizeof(st->via[0]), "%s", gw);
    return FERRY_OK;
}

/* A fixed-size field must hold its NUL: a caller-filled struct may not. */
#define TEXT_LEN(st, field)  strnlen((st)->field, sizeof((st)->field))
#define TEXT_FITS(st, field) (TEXT_LEN(st, field) < sizeof((st)->field))

static bool opt_id_ok(const char *s)
{
    return s[0] == 0 || ferry_id_valid(s);
}

static bool text_ok(const char *s, size_t len, size_t max)
{
    return len <= max && ferry_utf8_valid((const uint8_t *)s, len);
}

/* Each parent an id, only after a gateway, and no hop twice (a loop). */
static enum ferry_err check_via(const struct ferry_status *st, enum ferry_err code,
                                struct ferry_diag *d)
{
    if (st->nvia > FERRY_STATUS_VIA_MAX)
        return ferry_fail(d, code, WHAT ": field 'via' holds at most %d gateways",
                          FERRY_STATUS_VIA_MAX);
    if (st->nvia && !st->gateway[0])
        return ferry_fail(d, code, WHAT ": field 'via' needs a 'gateway'");
    for (size_t i = 0; i < st->nvia; i++) {
        if (!TEXT_FITS(st, via[i]) || !ferry_id_valid(st->via[i]))
            return ferry_fail(d, code, WHAT ": field 'via' entry %zu is not a gateway id", i);
        bool repeat = strcmp(st->via[i], st->node) == 0 || strcmp(st->via[i], st->gateway) == 0;
        for (size_t j = 0; j < i && !repeat; j++)
            repeat = strcmp(st->via[i], st->via[j]) == 0;
        if (repeat)
            return ferry_fail(d, code, WHAT ": field 'via' names '%s' twice on the path",
                              st->via[i]);
    }
    return FERRY_OK;
}

static enum ferry_err check_ids(const struct ferry_status *st, enum ferry_err code,
                                struct ferry_diag *d)
{
    static const char rule[] = "an id of 1..64 characters from [A-Za-z0-9._-], not starting "
                               "with '.'";
    if (!TEXT_FITS(st, node) || !ferry_id_valid(st->node))
        return ferry_fail(d, code, WHAT ": field 'node' must be %s, got '%.*s'", rule, FERRY_ID_MAX,
                          st->node);
    if (!TEXT_FITS(st, gateway) || !opt_id_ok(st->gateway))
        return ferry_fail(d, code, WHAT ": field 'gateway' must be empty or %s, got '%.*s'", rule,
                          FERRY_ID_MAX, st->gateway);
    if (!TEXT_FITS(st, release_id) || !opt_id_ok(st->release_id))
        return ferry_fail(d, code, WHAT ": field 'release' must be empty or %s, got '%.*s'", rule,
                          FERRY_NAME_MAX, st->release_id);
    return check_via(st, code, d);
}

static enum ferry_err check_numbers(const struct ferry_status *st, enum ferry_err code,
                                    struct ferry_diag *d)
{
    const uint64_t max = (uint64_t)FERRY_STATUS_INT_MAX;
    if (st->bytes > max || st->total > max)
        return ferry_fail(d, code, WHAT ": fields 'bytes' and 'total' must be at most %" PRIu64,
                          max);
    if (st->total > 0 && st->bytes > st->total)
        return ferry_fail(
            d, code, WHAT ": field 'bytes' (%" PRIu64 ") must not exceed 'total' (%" PRIu64 ")",
            st->bytes, st->total);
    if (st->seq < 1 || st->seq > max)
        return ferry_fail(d, code, WHAT ": field 'seq' must be in 1..%" PRIu64 ", got %" PRIu64,
                          max, st->seq);
    if (st->ts < -FERRY_STATUS_INT_MAX || st->ts > FERRY_STATUS_INT_MAX)
        return ferry_fail(d, code, WHAT ": field 'ts' must be within +-2^53, got %" PRId64, st->ts);
    return FERRY_OK;
}

enum ferry_err ferry_status_check(const struct ferry_status *st, enum ferry_err code,
                                  struct ferry_diag *d)
{
    enum ferry_err err = check_ids(st, code, d);
    if (err != FERRY_OK)
        return err;
    if (!TEXT_FITS(st, version) || !text_ok(st->version, TEXT_LEN(st, version), FERRY_VERSION_MAX))
        return ferry_fail(d, code, WHAT ": field 'version' must be valid UTF-8 of at most %d bytes",
                          FERRY_VERSION_MAX);
    if (!TEXT_FITS(st, message) ||
        !text_ok(st->message, TEXT_LEN(st, message), FERRY_STATUS_MESSAGE_MAX))
        return ferry_fail(d, code, WHAT ": field 'message' must be valid UTF-8 of at most %d bytes",
                          FERRY_STATUS_MESSAGE_MAX);
    if ((unsigned)st->state >= FERRY_STATE__COUNT)
        return ferry_fail(d, code, WHAT ": field 'state' must be 0..%d, got %u",
                          FERRY_STATE__COUNT - 1, (unsigned)st->state);
    if ((unsigned)st->error >= FERRY_E__COUNT)
        return ferry_fail(d, code, WHAT ": field 'error' must be a known error, got %u",
                          (unsigned)st->error);
    return check_numbers(st, code, d);
}

/* ---- JSON ---------------------------------------------------------------- */

static const char *const json_keys[] = {
    "format", "node",  "gateway", "release", "version", "state", "bytes",
    "total",  "error", "message", "seq",     "ts",      "via",   NULL,
};

/* Digits as a raw JSON number: exact for every 64-bit value, where cJSON's
 * own printing goes through a double and "%g". */
static bool add_int(cJSON *obj, const char *key, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, num) != NULL;
}

/* "via" only on a path through parents: absent, not [], otherwise. */
static bool add_via(cJSON *obj, const struct ferry_status *st)
{
    if (!st->nvia)
        return true;
    cJSON *arr = cJSON_AddArrayToObject(obj, "via");
    for (size_t i = 0; arr && i < st->nvia; i++) {
        cJSON *s = cJSON_CreateString(st->via[i]);
        if (!s)
            return false;
        cJSON_AddItemToArray(arr, s);
    }
    return arr != NULL;
}

/* Optional text is omitted when empty, as in CBOR. */
static bool add_text(cJSON *obj, const char *key, const char *v, bool required)
{
    return (!required && !v[0]) || cJSON_AddStringToObject(obj, key, v) != NULL;
}

enum ferry_err ferry_status_to_json(const struct ferry_status *st, char **out, size_t *len,
                                    struct ferry_diag *d)
{
    enum ferry_err err = ferry_status_check(st, FERRY_E_INVALID_ARG, d);
    if (err != FERRY_OK)
        return err;
    cJSON *obj = cJSON_CreateObject();
    /* bytes, total and seq are at most 2^53 (checked above): the casts hold. */
    bool ok =
        obj && add_int(obj, "format", FERRY_STATUS_FORMAT) &&
        add_text(obj, "node", st->node, true) && add_text(obj, "gateway", st->gateway, false) &&
        add_text(obj, "release", st->release_id, false) &&
        add_text(obj, "version", st->version, false) &&
        add_text(obj, "state", ferry_state_name(st->state), true) &&
        add_int(obj, "bytes", (int64_t)st->bytes) && add_int(obj, "total", (int64_t)st->total) &&
        (st->error == FERRY_OK || add_text(obj, "error", ferry_err_name(st->error), true)) &&
        add_text(obj, "message", st->message, false) && add_int(obj, "seq", (int64_t)st->seq) &&
        add_int(obj, "ts", st->ts) && add_via(obj, st);
    if (!ok) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory while encoding");
        goto out;
    }
    err = ferry_json_print(obj, out, len, d);
out:
    cJSON_Delete(obj);
    return err;
}

/* "idle, available, ..." for the message naming the allowed states. */
static void state_list(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < FERRY_STATE__COUNT && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", state_names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* A string field looked up in a table: absent (when optional) leaves *text
 * NULL; anything else but a string is refused here, an unknown string by the
 * caller, whose message lists what is allowed. */
static enum ferry_err json_name(const cJSON *obj, const char *key, bool required, const char **text,
                                struct ferry_diag *d)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, key);
    *text = NULL;
    if (!f && required)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": missing field '%s'", key);
    if (f && !cJSON_IsString(f))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field '%s' must be a string", key);
    if (f)
        *text = f->valuestring;
    return FERRY_OK;
}

static enum ferry_err json_state(const cJSON *obj, struct ferry_status *st, struct ferry_diag *d)
{
    const char *name;
    enum ferry_err err = json_name(obj, "state", true, &name, d);
    if (err == FERRY_OK && ferry_state_from_name(name, &st->state) != FERRY_OK) {
        char list[160];
        state_list(list, sizeof(list));
        err = ferry_fail(d, FERRY_E_MALFORMED,
                         WHAT ": field 'state' must be one of %s, got '%.32s'", list, name);
    }
    return err;
}

static enum ferry_err json_error(const cJSON *obj, struct ferry_status *st, struct ferry_diag *d)
{
    const char *name;
    enum ferry_err err = json_name(obj, "error", false, &name, d);
    if (err != FERRY_OK || !name)
        return err;
    /* "ok" is spelt by leaving the field out, so each record has one form. */
    if (ferry_err_from_name(name, &st->error) != FERRY_OK || st->error == FERRY_OK)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'error' must name an error such as 'hash-mismatch' (or "
                               "be absent), got '%.32s'",
                          name);
    return FERRY_OK;
}

/* "gateway" may also be present and empty: a node leaves it for the gateway. */
static enum ferry_err json_gateway(const cJSON *obj, struct ferry_status *st, struct ferry_diag *d)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(obj, "gateway");
    if (cJSON_IsString(g) && g->valuestring[0] == 0)
        return FERRY_OK;
    return ferry_json_str(obj, "gateway", false, FERRY_ID_MAX, st->gateway, WHAT, d);
}

static enum ferry_err json_via(const cJSON *obj, struct ferry_status *st, struct ferry_diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "via");
    if (!v)
        return FERRY_OK;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > FERRY_STATUS_VIA_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'via' must be an array of 1..%d gateway ids",
                          FERRY_STATUS_VIA_MAX);
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e) || !ferry_id_valid(e->valuestring))
            return ferry_fail(d, FERRY_E_MALFORMED,
                              WHAT ": field 'via' entry %zu must be a gateway id", i);
        snprintf(st->via[i++], sizeof(st->via[0]), "%s", e->valuestring);
    }
    st->nvia = i;
    return FERRY_OK;
}

static enum ferry_err json_texts(const cJSON *obj, struct ferry_status *st, struct ferry_diag *d)
{
    enum ferry_err err = ferry_json_str(obj, "node", true, FERRY_ID_MAX, st->node, WHAT, d);
    if (err == FERRY_OK)
        err = json_gateway(obj, st, d);
    if (err == FERRY_OK)
        err = ferry_json_str(obj, "release", false, FERRY_NAME_MAX, st->release_id, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(obj, "version", false, FERRY_VERSION_MAX, st->version, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(obj, "message", false, FERRY_STATUS_MESSAGE_MAX, st->message, WHAT, d);
    if (err == FERRY_OK)
        err = json_via(obj, st, d);
    return err;
}

static enum ferry_err json_numbers(const cJSON *obj, struct ferry_status *st, struct ferry_diag *d)
{
    const int64_t max = FERRY_STATUS_INT_MAX;
    int64_t format = 0, bytes = 0, total = 0, seq = 0;
    enum ferry_err err = ferry_json_int(obj, "format", true, FERRY_STATUS_FORMAT,
                                        FERRY_STATUS_FORMAT, &format, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(obj, "bytes", true, 0, max, &bytes, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(obj, "total", true, 0, max, &total, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(obj, "seq", true, 1, max, &seq, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(obj, "ts", true, -max, max, &st->ts, WHAT, d);
    if (err != FERRY_OK)
        return err;
    st->bytes = (uint64_t)bytes;
    st->total = (uint64_t)total;
    st->seq = (uint64_t)seq;
    return FERRY_OK;
}

enum ferry_err ferry_status_from_json(const uint8_t *buf, size_t len, struct ferry_status *out,
                                      struct ferry_diag *d)
{
    cJSON *root = NULL;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_STATUS_MAX_BYTES, WHAT, &root, d);
    if (err != FERRY_OK)
        return err;
    err = ferry_status_from_cjson(root, out, d);
    cJSON_Delete(root);
    return err;
}

enum ferry_err ferry_status_from_cjson(const cJSON *root, struct ferry_status *out,
                                       struct ferry_diag *d)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    /* "x-" keys are extensions from newer nodes; this reader ignores them. */
    enum ferry_err err = ferry_json_only_keys(root, json_keys, true, WHAT, d);
    if (err == FERRY_OK)
        err = json_numbers(root, &st, d);
    if (err == FERRY_OK)
        err = json_texts(root, &st, d);
    if (err == FERRY_OK)
        err = json_state(root, &st, d);
    if (err == FERRY_OK)
        err = json_error(root, &st, d);
    if (err == FERRY_OK)
        err = ferry_status_check(&st, FERRY_E_MALFORMED, d);
    if (err == FERRY_OK)
        *out = st;
    return err;
}
