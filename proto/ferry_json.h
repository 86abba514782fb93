/* Strict JSON reading on top of cJSON, shared by proto's parsers (internal to
 * proto/; nothing outside proto includes cJSON).
 *
 * ferry_json_parse() refuses what cJSON would let through: input above a cap,
 * invalid UTF-8, nesting deeper than FERRY_JSON_MAX_DEPTH (checked before
 * cJSON recurses), raw control characters and the escape \u0000 inside
 * strings, duplicate keys at any level, trailing bytes, and a top level that
 * is not an object.
 *
 * Numbers are read as IEEE doubles (cJSON keeps no text), so an integer
 * literal above 2^53 may be read as a neighbouring value; every integer field
 * is therefore capped at 2^53, where doubles are still exact.
 *
 * The getters check one field's presence, type and range and name it in the
 * message: "<what>: field 'seq' must be ...". */
#ifndef FERRY_JSON_H
#define FERRY_JSON_H

#include "ferry_err.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_JSON_MAX_DEPTH      8
#define FERRY_JSON_MAX_DEPTH_TEXT "8"

/* Parses buf (len bytes, need not be NUL-terminated) into a new cJSON object
 * the caller frees with cJSON_Delete(). `what` ("manifest") prefixes errors. */
enum ferry_err ferry_json_parse(const uint8_t *buf, size_t len, size_t max_len, const char *what,
                                cJSON **out, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Fails with the first key of obj not in `known` (NULL-terminated) and not
 * starting with "x-" when allow_ext. */
enum ferry_err ferry_json_only_keys(const cJSON *obj, const char *const *known, bool allow_ext,
                                    const char *what, struct ferry_diag *d) FERRY_MUST_CHECK;

/* A string field of 1..max_len bytes copied into out (cap >= max_len + 1).
 * Absent optional fields leave out untouched and return FERRY_OK. */
enum ferry_err ferry_json_str(const cJSON *obj, const char *key, bool required, size_t max_len,
                              char *out, const char *what, struct ferry_diag *d) FERRY_MUST_CHECK;

/* An integer field in [min, max] (max <= 2^53, where doubles stay exact).
 * Absent optional fields leave out untouched. */
enum ferry_err ferry_json_int(const cJSON *obj, const char *key, bool required, int64_t min,
                              int64_t max, int64_t *out, const char *what,
                              struct ferry_diag *d) FERRY_MUST_CHECK;

/* A boolean field; absent optional fields leave out untouched. */
enum ferry_err ferry_json_bool(const cJSON *obj, const char *key, bool required, bool *out,
                               const char *what, struct ferry_diag *d) FERRY_MUST_CHECK;

/* One status record from an object ferry_json_parse() already checked (a
 * record inside a batch), with every rule of ferry_status_from_json() but
 * the byte cap (ferry_status.c). */
struct ferry_status;
enum ferry_err ferry_status_from_cjson(const cJSON *obj, struct ferry_status *out,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* Prints compactly; the caller frees *out with free(). */
enum ferry_err ferry_json_print(const cJSON *obj, char **out, size_t *len,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
