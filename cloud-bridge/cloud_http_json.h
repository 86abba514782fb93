/* A JSON writer for the HTTP API's responses (cloud_http.h): the envelopes
 * and lists around the documents proto/ encodes (status rows, node
 * descriptions, rollout views), written straight into one growing buffer so
 * a page of a thousand nodes costs no tree of a thousand objects.
 *
 * Strings are escaped for JSON whatever they hold: quotes, backslashes and
 * control characters are escaped, and bytes that are not UTF-8 (a query
 * parameter can hold anything) become U+FFFD, so the output is always valid
 * JSON in valid UTF-8. Commas are placed by the writer: call cj_key() before
 * each value in an object, nothing before a value in an array.
 *
 * Errors are sticky: after an allocation fails, the size passes `max`, or
 * nesting passes CJ_MAX_DEPTH, every call does nothing and cj_ok() is false.
 * One writer belongs to one thread. */
#ifndef FERRY_CLOUD_HTTP_JSON_H
#define FERRY_CLOUD_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CJ_MAX_DEPTH 16

struct cloud_json {
    char *buf; /* NUL-terminated while ok; owned */
    size_t len, cap, max;
    bool failed;
    unsigned depth;
    bool first[CJ_MAX_DEPTH]; /* no value yet at this depth */
    bool after_key;
};

/* max: the largest document it may grow to. */
void cj_init(struct cloud_json *j, size_t max);
void cj_free(struct cloud_json *j);
/* Takes the buffer (free() it) and resets j; NULL when !cj_ok(j). */
char *cj_take(struct cloud_json *j, size_t *len);
bool cj_ok(const struct cloud_json *j);

void cj_obj_begin(struct cloud_json *j);
void cj_obj_end(struct cloud_json *j);
void cj_arr_begin(struct cloud_json *j);
void cj_arr_end(struct cloud_json *j);
void cj_key(struct cloud_json *j, const char *key);

void cj_str(struct cloud_json *j, const char *s);
void cj_strn(struct cloud_json *j, const char *s, size_t n);
void cj_int(struct cloud_json *j, int64_t v);
void cj_uint(struct cloud_json *j, uint64_t v);
void cj_bool(struct cloud_json *j, bool v);
void cj_null(struct cloud_json *j);
/* A value already encoded as JSON (by proto/), copied as it is. */
void cj_raw(struct cloud_json *j, const char *json, size_t n);

/* key and value in one call. */
void cj_kstr(struct cloud_json *j, const char *key, const char *s);
void cj_kint(struct cloud_json *j, const char *key, int64_t v);
void cj_kuint(struct cloud_json *j, const char *key, uint64_t v);
void cj_kbool(struct cloud_json *j, const char *key, bool v);

/* Appends text that is not a JSON value (an SSE frame's "data: " prefix),
 * outside the comma bookkeeping. */
void cj_text(struct cloud_json *j, const char *s, size_t n);

#endif
