#include "ferry_batch.h"

#include "ferry_cbor.h"
#include "ferry_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHAT_BATCH "status batch"
#define WHAT_ACK   "status ack"
#define WHAT_ROW   "inventory row"
#define INT_MAX53  (INT64_C(1) << 53)

bool ferry_batch_id_valid(const char *id)
{
    if (!id || !id[0] || id[0] == '.')
        return false;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == ':';
        if (!ok || n >= FERRY_BATCH_ID_MAX)
            return false;
    }
    return true;
}

/* Digits as a raw JSON number, exact for every value up to 2^53 (cJSON's own
 * printing goes through a double). */
static bool add_int(cJSON *obj, const char *key, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, num) != NULL;
}

/* The id is checked against the struct's own size: a caller-filled struct
 * need not hold a NUL. */
static enum ferry_err check_id(const char id[FERRY_BATCH_ID_MAX + 1], const char *what,
                               enum ferry_err code, struct ferry_diag *d)
{
    if (strnlen(id, FERRY_BATCH_ID_MAX + 1) > FERRY_BATCH_ID_MAX || !ferry_batch_id_valid(id))
        return ferry_fail(d, code,
                          "%s: field 'batch' must be 1..%d characters from [A-Za-z0-9._:-], not "
                          "starting with '.', got '%.*s'",
                          what, FERRY_BATCH_ID_MAX, FERRY_BATCH_ID_MAX, id);
    return FERRY_OK;
}

static enum ferry_err check_count(size_t n, const char *what, const char *field,
                                  enum ferry_err code, struct ferry_diag *d)
{
    if (n < 1 || n > FERRY_BATCH_MAX_RECORDS)
        return ferry_fail(d, code, "%s: field '%s' must hold 1..%d entries, got %zu", what, field,
                          FERRY_BATCH_MAX_RECORDS, n);
    return FERRY_OK;
}

/* {"format":N,"batch":id} with the list still to add. */
static cJSON *new_envelope(int format, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    if (o && (!add_int(o, "format", format) || !cJSON_AddStringToObject(o, "batch", id))) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

/* ---- batch --------------------------------------------------------------- */

/* Each record goes in as the exact text ferry_status_to_json() makes, so the
 * batch and a lone record can never disagree on a field's form. */
static enum ferry_err add_record(cJSON *list, const struct ferry_status *st, size_t i,
                                 struct ferry_diag *d)
{
    char *json = NULL;
    size_t len;
    enum ferry_err err = ferry_status_to_json(st, &json, &len, d);
    if (err != FERRY_OK) {
        char where[48];
        snprintf(where, sizeof(where), WHAT_BATCH ": record %zu", i);
        ferry_diag_prefix(d, where);
        return err;
    }
    cJSON *raw = cJSON_CreateRaw(json);
    free(json);
    if (!raw || !cJSON_AddItemToArray(list, raw)) {
        cJSON_Delete(raw);
        return ferry_fail(d, FERRY_E_NOMEM, WHAT_BATCH ": out of memory while encoding");
    }
    return FERRY_OK;
}

enum ferry_err ferry_batch_encode(const struct ferry_batch *b, char **out, size_t *len,
                                  struct ferry_diag *d)
{
    enum ferry_err err = check_id(b->id, WHAT_BATCH, FERRY_E_INVALID_ARG, d);
    if (err == FERRY_OK)
        err = check_count(b->n, WHAT_BATCH, "records", FERRY_E_INVALID_ARG, d);
    if (err != FERRY_OK)
        return err;
    cJSON *o = new_envelope(FERRY_BATCH_FORMAT, b->id);
    cJSON *list = o ? cJSON_AddArrayToObject(o, "records") : NULL;
    if (!list) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT_BATCH ": out of memory while encoding");
        goto out;
    }
    for (size_t i = 0; i < b->n && err == FERRY_OK; i++)
        err = add_record(list, &b->records[i], i, d);
    if (err == FERRY_OK)
        err = ferry_json_print(o, out, len, d);
out:
    cJSON_Delete(o);
    return err;
}

/* A record inside a batch is checked by the same code as a lone record,
 * from the parsed object (duplicate keys, UTF-8 and depth were refused for
 * the whole batch). Its own cap is checked on the record printed back to
 * text; the fields are not read from that text, since cJSON prints a number
 * near 2^53 to 15 significant digits when that compares equal within its
 * epsilon: seq 2^53 would come back as 9007199254740990. */
static enum ferry_err decode_record(const cJSON *item, size_t i, struct ferry_status *out,
                                    struct ferry_diag *d)
{
    char where[48];
    snprintf(where, sizeof(where), WHAT_BATCH ": record %zu", i);
    if (!cJSON_IsObject(item))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: must be an object", where);
    char *text = cJSON_PrintUnformatted(item);
    if (!text)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", where);
    size_t len = strlen(text);
    free(text);
    enum ferry_err err = len > FERRY_STATUS_MAX_BYTES
                             ? ferry_fail(d, FERRY_E_MALFORMED, "status: %zu bytes, the cap is %d",
                                          len, FERRY_STATUS_MAX_BYTES)
                             : ferry_status_from_cjson(item, out, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, where);
    return err;
}

/* The "format" and "batch" fields both messages share. */
static enum ferry_err decode_head(const cJSON *o, const char *what, int64_t max_format,
                                  int64_t *format, char id[FERRY_BATCH_ID_MAX + 1],
                                  struct ferry_diag *d)
{
    enum ferry_err err = ferry_json_int(o, "format", true, 1, max_format, format, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "batch", true, FERRY_BATCH_ID_MAX, id, what, d);
    if (err == FERRY_OK)
        err = check_id(id, what, FERRY_E_MALFORMED, d);
    return err;
}

/* A list field: an array of at most FERRY_BATCH_MAX_RECORDS entries, and
 * of at least one when required (an optional list may be absent: *out is
 * then NULL). */
static enum ferry_err decode_list(const cJSON *o, const char *key, bool required, const char *what,
                                  const cJSON **out, struct ferry_diag *d)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!list && !required)
        return FERRY_OK;
    if (!list)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: missing field '%s'", what, key);
    if (!cJSON_IsArray(list))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be an array", what, key);
    size_t n = (size_t)cJSON_GetArraySize(list);
    enum ferry_err err = required ? check_count(n, what, key, FERRY_E_MALFORMED, d)
                         : n > FERRY_BATCH_MAX_RECORDS
                             ? ferry_fail(d, FERRY_E_MALFORMED,
                                          "%s: field '%s' must hold at most %d entries, got %zu",
                                          what, key, FERRY_BATCH_MAX_RECORDS, n)
                             : FERRY_OK;
    if (err == FERRY_OK)
        *out = list;
    return err;
}

enum ferry_err ferry_batch_decode(const uint8_t *buf, size_t len, struct ferry_batch *out,
                                  struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "batch", "records", NULL};
    cJSON *o = NULL;
    const cJSON *list = NULL;
    struct ferry_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT_BATCH ": out of memory");
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_BATCH_MAX_BYTES, WHAT_BATCH, &o, d);
    if (err != FERRY_OK)
        goto out;
    int64_t format = 0;
    err = ferry_json_only_keys(o, keys, false, WHAT_BATCH, d);
    if (err == FERRY_OK)
        err = decode_head(o, WHAT_BATCH, FERRY_BATCH_FORMAT, &format, b->id, d);
    if (err == FERRY_OK)
        err = decode_list(o, "records", true, WHAT_BATCH, &list, d);
    for (const cJSON *item = list ? list->child : NULL; item && err == FERRY_OK;
         item = item->next, b->n++)
        err = decode_record(item, b->n, &b->records[b->n], d);
    if (err == FERRY_OK)
        *out = *b;
out:
    cJSON_Delete(o);
    free(b);
    return err;
}

/* ---- ack ----------------------------------------------------------------- */

static enum ferry_err check_record_id(const struct ferry_record_id *r, const char *list, size_t i,
                                      enum ferry_err code, struct ferry_diag *d)
{
    if (strnlen(r->node, sizeof(r->node)) >= sizeof(r->node) || !ferry_id_valid(r->node))
        return ferry_fail(d, code,
                          WHAT_ACK ": %s %zu: field 'node' must be an id of 1..%d characters "
                                   "from [A-Za-z0-9._-], not starting with '.'",
                          list, i, FERRY_ID_MAX);
    if (r->seq < 1 || r->seq > (uint64_t)INT_MAX53)
        return ferry_fail(d, code,
                          WHAT_ACK ": %s %zu: field 'seq' must be in 1..%" PRId64 ", got %" PRIu64,
                          list, i, INT_MAX53, r->seq);
    return FERRY_OK;
}

static enum ferry_err check_reason(enum ferry_err reason, size_t i, enum ferry_err code,
                                   struct ferry_diag *d)
{
    if (reason == FERRY_OK || (unsigned)reason >= FERRY_E__COUNT)
        return ferry_fail(d, code, WHAT_ACK ": refused %zu: field 'error' must name an error", i);
    return FERRY_OK;
}

static enum ferry_err check_total(size_t n, size_t nrefused, enum ferry_err code,
                                  struct ferry_diag *d)
{
    bool fits = n <= FERRY_BATCH_MAX_RECORDS && nrefused <= FERRY_BATCH_MAX_RECORDS &&
                n + nrefused >= 1 && n + nrefused <= FERRY_BATCH_MAX_RECORDS;
    if (!fits)
        return ferry_fail(d, code,
                          WHAT_ACK ": fields 'acked' and 'refused' must hold 1..%d entries "
                                   "together, got %zu and %zu",
                          FERRY_BATCH_MAX_RECORDS, n, nrefused);
    return FERRY_OK;
}

static enum ferry_err check_ack(const struct ferry_batch_ack *a, enum ferry_err code,
                                struct ferry_diag *d)
{
    enum ferry_err err = check_id(a->id, WHAT_ACK, code, d);
    if (err == FERRY_OK)
        err = check_total(a->n, a->nrefused, code, d);
    for (size_t i = 0; i < a->n && err == FERRY_OK; i++)
        err = check_record_id(&a->acked[i], "acked", i, code, d);
    for (size_t i = 0; i < a->nrefused && err == FERRY_OK; i++) {
        err = check_record_id(&a->refused[i].id, "refused", i, code, d);
        if (err == FERRY_OK)
            err = check_reason(a->refused[i].reason, i, code, d);
    }
    return err;
}

/* {"node":..,"seq":..} appended to list; with an "error" when reason is set. */
static bool add_entry(cJSON *list, const struct ferry_record_id *r, enum ferry_err reason)
{
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(list, e)) {
        cJSON_Delete(e);
        return false;
    }
    return cJSON_AddStringToObject(e, "node", r->node) && add_int(e, "seq", (int64_t)r->seq) &&
           (reason == FERRY_OK || cJSON_AddStringToObject(e, "error", ferry_err_name(reason)));
}

enum ferry_err ferry_batch_ack_encode(const struct ferry_batch_ack *a, char **out, size_t *len,
                                      struct ferry_diag *d)
{
    enum ferry_err err = check_ack(a, FERRY_E_INVALID_ARG, d);
    if (err != FERRY_OK)
        return err;
    /* Format 1 while nothing is refused: gateways that read only it keep
     * working. */
    cJSON *o = new_envelope(a->nrefused ? FERRY_BATCH_ACK_FORMAT : 1, a->id);
    cJSON *acked = o ? cJSON_AddArrayToObject(o, "acked") : NULL;
    cJSON *refused = o && a->nrefused ? cJSON_AddArrayToObject(o, "refused") : NULL;
    bool ok = acked != NULL && (a->nrefused == 0 || refused != NULL);
    for (size_t i = 0; ok && i < a->n; i++)
        ok = add_entry(acked, &a->acked[i], FERRY_OK);
    for (size_t i = 0; ok && i < a->nrefused; i++)
        ok = add_entry(refused, &a->refused[i].id, a->refused[i].reason);
    if (ok)
        err = ferry_json_print(o, out, len, d);
    else
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT_ACK ": out of memory while encoding");
    cJSON_Delete(o);
    return err;
}

/* One entry of "acked" (reason NULL) or "refused". */
static enum ferry_err decode_entry(const cJSON *item, const char *list, size_t i,
                                   struct ferry_record_id *out, enum ferry_err *reason,
                                   struct ferry_diag *d)
{
    static const char *const acked_keys[] = {"node", "seq", NULL};
    static const char *const refused_keys[] = {"node", "seq", "error", NULL};
    char what[48];
    snprintf(what, sizeof(what), WHAT_ACK ": %s %zu", list, i);
    if (!cJSON_IsObject(item))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: must be an object", what);
    struct ferry_record_id r = {{0}, 0};
    int64_t seq = 0;
    char name[32] = "";
    enum ferry_err err =
        ferry_json_only_keys(item, reason ? refused_keys : acked_keys, false, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(item, "node", true, FERRY_ID_MAX, r.node, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(item, "seq", true, 1, INT_MAX53, &seq, what, d);
    if (err == FERRY_OK && reason)
        err = ferry_json_str(item, "error", true, sizeof(name) - 1, name, what, d);
    if (err != FERRY_OK)
        return err;
    r.seq = (uint64_t)seq;
    err = check_record_id(&r, list, i, FERRY_E_MALFORMED, d);
    if (err == FERRY_OK && reason &&
        (ferry_err_from_name(name, reason) != FERRY_OK || *reason == FERRY_OK))
        err = ferry_fail(d, FERRY_E_MALFORMED,
                         "%s: field 'error' must name an error such as 'conflict', got '%s'", what,
                         name);
    if (err == FERRY_OK)
        *out = r;
    return err;
}

enum ferry_err ferry_batch_ack_decode(const uint8_t *buf, size_t len, struct ferry_batch_ack *out,
                                      struct ferry_diag *d)
{
    static const char *const keys_v1[] = {"format", "batch", "acked", NULL};
    static const char *const keys_v2[] = {"format", "batch", "acked", "refused", NULL};
    cJSON *o = NULL;
    const cJSON *acked = NULL, *refused = NULL;
    int64_t format = 0;
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    if (!a)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT_ACK ": out of memory");
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_BATCH_ACK_MAX_BYTES, WHAT_ACK, &o, d);
    if (err != FERRY_OK)
        goto out;
    err = decode_head(o, WHAT_ACK, FERRY_BATCH_ACK_FORMAT, &format, a->id, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(o, format == 1 ? keys_v1 : keys_v2, false, WHAT_ACK, d);
    /* Format 1 lists only what was stored, at least one; format 2 may list
     * either or both, one entry at least in all. */
    if (err == FERRY_OK)
        err = decode_list(o, "acked", format == 1, WHAT_ACK, &acked, d);
    if (err == FERRY_OK && format > 1)
        err = decode_list(o, "refused", false, WHAT_ACK, &refused, d);
    for (const cJSON *item = acked ? acked->child : NULL; item && err == FERRY_OK;
         item = item->next, a->n++)
        err = decode_entry(item, "acked", a->n, &a->acked[a->n], NULL, d);
    for (const cJSON *item = refused ? refused->child : NULL; item && err == FERRY_OK;
         item = item->next, a->nrefused++)
        err = decode_entry(item, "refused", a->nrefused, &a->refused[a->nrefused].id,
                           &a->refused[a->nrefused].reason, d);
    if (err == FERRY_OK)
        err = check_total(a->n, a->nrefused, FERRY_E_MALFORMED, d);
    if (err == FERRY_OK)
        *out = *a;
out:
    cJSON_Delete(o);
    free(a);
    return err;
}

/* ---- inventory row ------------------------------------------------------- */

/* The record's fields, as a row shows them; false when out of memory. */
/* A row's via is always present ([] without a cascade): one shape. */
static bool add_row_via(cJSON *o, const struct ferry_status *st)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "via");
    for (size_t i = 0; arr && i < st->nvia; i++) {
        cJSON *s = cJSON_CreateString(st->via[i]);
        if (!s)
            return false;
        cJSON_AddItemToArray(arr, s);
    }
    return arr != NULL;
}

static bool add_record_fields(cJSON *o, const struct ferry_status *st)
{
    return cJSON_AddStringToObject(o, "node", st->node) &&
           cJSON_AddStringToObject(o, "gateway", st->gateway) &&
           cJSON_AddStringToObject(o, "release", st->release_id) &&
           cJSON_AddStringToObject(o, "version", st->version) &&
           cJSON_AddStringToObject(o, "state", ferry_state_name(st->state)) &&
           add_int(o, "bytes", (int64_t)st->bytes) && add_int(o, "total", (int64_t)st->total) &&
           cJSON_AddStringToObject(o, "error",
                                   st->error == FERRY_OK ? "" : ferry_err_name(st->error)) &&
           cJSON_AddStringToObject(o, "message", st->message) &&
           add_int(o, "seq", (int64_t)st->seq) && add_int(o, "ts", st->ts) && add_row_via(o, st);
}

/* Prints o (consumed) into *out, or fails naming what. */
static enum ferry_err print_row(cJSON *o, bool ok, const char *what, char **out, size_t *len,
                                struct ferry_diag *d)
{
    enum ferry_err err =
        ok ? ferry_json_print(o, out, len, d)
           : ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory while encoding", what);
    cJSON_Delete(o);
    return err;
}

enum ferry_err ferry_inventory_row_json(const struct ferry_inventory_row *row, char **out,
                                        size_t *len, struct ferry_diag *d)
{
    /* The same checks as a record on the wire: what the inventory holds came
     * through them, and a damaged row must not print as if it were fine. */
    enum ferry_err err = ferry_status_check(&row->st, FERRY_E_INVALID_ARG, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, WHAT_ROW);
        return err;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_record_fields(o, &row->st) && add_int(o, "updated_at", row->updated_at) &&
              add_int(o, "refused", (int64_t)row->refused);
    return print_row(o, ok, WHAT_ROW, out, len, d);
}

enum ferry_err ferry_refused_row_json(const struct ferry_refused_row *row, char **out, size_t *len,
                                      struct ferry_diag *d)
{
    enum ferry_err err = ferry_status_check(&row->st, FERRY_E_INVALID_ARG, d);
    if (err == FERRY_OK && (row->reason == FERRY_OK || (unsigned)row->reason >= FERRY_E__COUNT))
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "field 'reason' must name an error");
    if (err == FERRY_OK &&
        !ferry_utf8_valid((const uint8_t *)row->detail, strnlen(row->detail, sizeof(row->detail))))
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "field 'detail' must be UTF-8");
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "refused row");
        return err;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_record_fields(o, &row->st) && add_int(o, "received_at", row->received_at) &&
              cJSON_AddStringToObject(o, "reason", ferry_err_name(row->reason)) &&
              cJSON_AddStringToObject(o, "detail", row->detail);
    return print_row(o, ok, "refused row", out, len, d);
}

enum ferry_err ferry_event_row_json(const struct ferry_event_row *row, char **out, size_t *len,
                                    struct ferry_diag *d)
{
    if (!ferry_id_valid(row->node) ||
        !ferry_utf8_valid((const uint8_t *)row->detail,
                          strnlen(row->detail, sizeof(row->detail))) ||
        !ferry_utf8_valid((const uint8_t *)row->kind, strnlen(row->kind, sizeof(row->kind))))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "event row: invalid node, kind or detail");
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_int(o, "at", row->at) && cJSON_AddStringToObject(o, "kind", row->kind) &&
              cJSON_AddStringToObject(o, "node", row->node) &&
              cJSON_AddStringToObject(o, "detail", row->detail);
    return print_row(o, ok, "event row", out, len, d);
}
