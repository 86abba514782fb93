#include "ferry_stream.h"

#include "ferry_bytes.h"
#include "ferry_crc32.h"
#include "ferry_hex.h"
#include "ferry_json.h"

#include <string.h>

static const char *const req_keys[] = {"format", "sha256", "offset", "count", "chunk", NULL};

enum ferry_err ferry_stream_req_encode(const struct ferry_stream_req *r, char **out, size_t *len,
                                       struct ferry_diag *d)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(r->sha256, FERRY_SHA256_LEN, hex);
    enum ferry_err err = FERRY_E_NOMEM;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "format", FERRY_STREAM_FORMAT) ||
        !cJSON_AddStringToObject(o, "sha256", hex) ||
        !cJSON_AddNumberToObject(o, "offset", (double)r->offset) ||
        !cJSON_AddNumberToObject(o, "count", r->count) ||
        !cJSON_AddNumberToObject(o, "chunk", r->chunk)) {
        err = ferry_fail(d, FERRY_E_NOMEM, "stream request: out of memory");
        goto out;
    }
    err = ferry_json_print(o, out, len, d);
out:
    cJSON_Delete(o);
    return err;
}

enum ferry_err ferry_stream_req_decode(const uint8_t *buf, size_t len, struct ferry_stream_req *out,
                                       struct ferry_diag *d)
{
    static const char what[] = "stream request";
    cJSON *o = NULL;
    struct ferry_stream_req r = {{0}, 0, 0, 0};
    char hex[FERRY_SHA256_HEX_LEN + 1];
    int64_t format = 0, offset = 0, count = 0, chunk = 0;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_STREAM_REQ_MAX_BYTES, what, &o, d);
    if (err != FERRY_OK)
        return err;
    if ((err = ferry_json_only_keys(o, req_keys, true, what, d)) != FERRY_OK ||
        (err = ferry_json_int(o, "format", true, 1, 1, &format, what, d)) != FERRY_OK ||
        (err = ferry_json_str(o, "sha256", true, FERRY_SHA256_HEX_LEN, hex, what, d)) != FERRY_OK ||
        (err = ferry_json_int(o, "offset", true, 0, INT64_C(1) << 53, &offset, what, d)) !=
            FERRY_OK ||
        (err = ferry_json_int(o, "count", true, 1, FERRY_STREAM_MAX_WINDOW, &count, what, d)) !=
            FERRY_OK ||
        (err = ferry_json_int(o, "chunk", true, FERRY_STREAM_MIN_CHUNK, FERRY_STREAM_MAX_CHUNK,
                              &chunk, what, d)) != FERRY_OK)
        goto out;
    if (ferry_hex_decode(hex, r.sha256, sizeof(r.sha256)) != FERRY_OK) {
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'sha256' must be 64 hex digits", what);
        goto out;
    }
    if (offset % chunk != 0) {
        err = ferry_fail(d, FERRY_E_MALFORMED,
                         "%s: field 'offset' must be a multiple of 'chunk' (%lld), got %lld", what,
                         (long long)chunk, (long long)offset);
        goto out;
    }
    r.offset = (uint64_t)offset;
    r.count = (uint32_t)count;
    r.chunk = (uint32_t)chunk;
    *out = r;
out:
    cJSON_Delete(o);
    return err;
}

void ferry_chunk_header(uint8_t hdr[FERRY_STREAM_HEADER_LEN], enum ferry_chunk_kind kind,
                        const uint8_t sha256[FERRY_SHA256_LEN], uint64_t offset, uint64_t total,
                        const uint8_t *payload, uint32_t len)
{
    memset(hdr, 0, FERRY_STREAM_HEADER_LEN);
    memcpy(hdr, "FRY1", 4);
    hdr[4] = (uint8_t)kind;
    memcpy(hdr + 8, sha256, FERRY_SHA256_LEN);
    ferry_put_be64(hdr + 40, offset);
    ferry_put_be64(hdr + 48, total);
    ferry_put_be32(hdr + 56, len);
    ferry_put_be32(hdr + 60, ferry_crc32(0, payload, len));
}

enum ferry_err ferry_chunk_decode(const uint8_t *buf, size_t len, struct ferry_chunk *out,
                                  struct ferry_diag *d)
{
    if (len < FERRY_STREAM_HEADER_LEN)
        return ferry_fail(d, FERRY_E_MALFORMED, "chunk: %zu bytes, shorter than its header", len);
    if (memcmp(buf, "FRY1", 4) != 0)
        return ferry_fail(d, FERRY_E_MALFORMED, "chunk: bad magic");
    if (buf[4] > FERRY_CHUNK_ERROR || buf[5] || buf[6] || buf[7])
        return ferry_fail(d, FERRY_E_MALFORMED, "chunk: unknown kind %u", buf[4]);
    struct ferry_chunk c;
    c.kind = (enum ferry_chunk_kind)buf[4];
    memcpy(c.sha256, buf + 8, FERRY_SHA256_LEN);
    c.offset = ferry_get_be64(buf + 40);
    c.total = ferry_get_be64(buf + 48);
    c.len = ferry_get_be32(buf + 56);
    c.payload = buf + FERRY_STREAM_HEADER_LEN;
    if (c.len != len - FERRY_STREAM_HEADER_LEN)
        return ferry_fail(d, FERRY_E_MALFORMED, "chunk: header says %u payload bytes, got %zu",
                          c.len, len - FERRY_STREAM_HEADER_LEN);
    if (c.len > FERRY_STREAM_MAX_CHUNK)
        return ferry_fail(d, FERRY_E_MALFORMED, "chunk: payload of %u bytes above the %d cap",
                          c.len, FERRY_STREAM_MAX_CHUNK);
    if (c.kind == FERRY_CHUNK_DATA && (c.offset > c.total || c.len > c.total - c.offset))
        return ferry_fail(d, FERRY_E_MALFORMED, "chunk: bytes %llu+%u beyond the total %llu",
                          (unsigned long long)c.offset, c.len, (unsigned long long)c.total);
    if (ferry_crc32(0, c.payload, c.len) != ferry_get_be32(buf + 60))
        return ferry_fail(d, FERRY_E_CORRUPT, "chunk: CRC mismatch at offset %llu",
                          (unsigned long long)c.offset);
    *out = c;
    return FERRY_OK;
}
