/* libFuzzer target for the cloud-to-gateway artifact stream (ferry_stream.h):
 * the binary chunk a gateway receives and the JSON request the cloud
 * receives. A chunk the decoder accepts must be exactly the header
 * ferry_chunk_header() writes for its fields, followed by its payload; a
 * request it accepts must encode again and decode to the same request. A
 * violation aborts, which libFuzzer reports as a crash. */
#include "ferry_stream.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_chunk(const uint8_t *data, size_t size)
{
    struct ferry_chunk c;
    if (ferry_chunk_decode(data, size, &c, NULL) != FERRY_OK)
        return;
    uint8_t hdr[FERRY_STREAM_HEADER_LEN];
    ferry_chunk_header(hdr, c.kind, c.sha256, c.offset, c.total, c.payload, c.len);
    if (memcmp(hdr, data, sizeof(hdr)) != 0 || c.payload != data + sizeof(hdr) ||
        (size_t)c.len != size - sizeof(hdr) || c.len > FERRY_STREAM_MAX_CHUNK)
        abort();
    if (c.kind == FERRY_CHUNK_DATA && (c.offset > c.total || c.len > c.total - c.offset))
        abort();
}

static bool same_req(const struct ferry_stream_req *a, const struct ferry_stream_req *b)
{
    return memcmp(a->sha256, b->sha256, sizeof(a->sha256)) == 0 && a->offset == b->offset &&
           a->count == b->count && a->chunk == b->chunk;
}

static void check_req(const uint8_t *data, size_t size)
{
    struct ferry_stream_req r, back;
    if (ferry_stream_req_decode(data, size, &r, NULL) != FERRY_OK)
        return;
    if (r.count < 1 || r.count > FERRY_STREAM_MAX_WINDOW || r.chunk < FERRY_STREAM_MIN_CHUNK ||
        r.chunk > FERRY_STREAM_MAX_CHUNK)
        abort();
    char *json = NULL;
    size_t len = 0;
    if (ferry_stream_req_encode(&r, &json, &len, NULL) != FERRY_OK ||
        ferry_stream_req_decode((const uint8_t *)json, len, &back, NULL) != FERRY_OK ||
        !same_req(&r, &back))
        abort();
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_chunk(data, size);
    check_req(data, size);
    return 0;
}
