/* libFuzzer target for status records in both encodings. A record either
 * decoder accepts must encode again, in both encodings (the header promises
 * a record one accepts the other can carry), and decode to the same record;
 * a violation aborts, which libFuzzer reports as a crash. */
#include "ferry_status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct ferry_status *a, const struct ferry_status *b)
{
    return strcmp(a->node, b->node) == 0 && strcmp(a->gateway, b->gateway) == 0 &&
           strcmp(a->release_id, b->release_id) == 0 && strcmp(a->version, b->version) == 0 &&
           a->state == b->state && a->bytes == b->bytes && a->total == b->total &&
           a->error == b->error && strcmp(a->message, b->message) == 0 && a->seq == b->seq &&
           a->ts == b->ts;
}

static void round_trip(const struct ferry_status *st)
{
    struct ferry_status back;
    uint8_t cbor[FERRY_STATUS_MAX_BYTES];
    size_t cbor_len = 0, json_len = 0;
    char *json = NULL;
    if (ferry_status_to_json(st, &json, &json_len, NULL) != FERRY_OK ||
        ferry_status_from_json((const uint8_t *)json, json_len, &back, NULL) != FERRY_OK ||
        !same(st, &back))
        abort();
    if (ferry_status_to_cbor(st, cbor, sizeof(cbor), &cbor_len, NULL) != FERRY_OK ||
        ferry_status_from_cbor(cbor, cbor_len, &back, NULL) != FERRY_OK || !same(st, &back))
        abort();
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_status st;
    if (ferry_status_from_json(data, size, &st, NULL) == FERRY_OK)
        round_trip(&st);
    if (ferry_status_from_cbor(data, size, &st, NULL) == FERRY_OK)
        round_trip(&st);
    return 0;
}
