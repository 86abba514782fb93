/* libFuzzer target for status batches (gateway -> cloud) and their acks
 * (cloud -> gateway), ferry_batch.h. What a decoder accepts must respect
 * the header's bounds, encode again, and decode to a value that encodes to
 * the very same bytes (encode(decode(encode(x))) == encode(x)). A
 * violation aborts, which libFuzzer reports as a crash. */
#include "ferry_batch.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ferry_batch batch, batch_back;
static struct ferry_batch_ack ack, ack_back;

static void check_batch(const uint8_t *data, size_t size)
{
    if (ferry_batch_decode(data, size, &batch, NULL) != FERRY_OK)
        return;
    if (batch.n < 1 || batch.n > FERRY_BATCH_MAX_RECORDS || !ferry_batch_id_valid(batch.id))
        abort();
    char *one = NULL, *two = NULL;
    size_t one_len = 0, two_len = 0;
    if (ferry_batch_encode(&batch, &one, &one_len, NULL) != FERRY_OK ||
        ferry_batch_decode((const uint8_t *)one, one_len, &batch_back, NULL) != FERRY_OK ||
        ferry_batch_encode(&batch_back, &two, &two_len, NULL) != FERRY_OK || one_len != two_len ||
        memcmp(one, two, one_len) != 0 || batch_back.n != batch.n)
        abort();
    free(one);
    free(two);
}

static void check_ack(const uint8_t *data, size_t size)
{
    if (ferry_batch_ack_decode(data, size, &ack, NULL) != FERRY_OK)
        return;
    size_t total = ack.n + ack.nrefused;
    if (total < 1 || total > FERRY_BATCH_MAX_RECORDS || !ferry_batch_id_valid(ack.id))
        abort();
    for (size_t i = 0; i < ack.nrefused; i++)
        if (ack.refused[i].reason == FERRY_OK)
            abort();
    char *one = NULL, *two = NULL;
    size_t one_len = 0, two_len = 0;
    if (ferry_batch_ack_encode(&ack, &one, &one_len, NULL) != FERRY_OK ||
        ferry_batch_ack_decode((const uint8_t *)one, one_len, &ack_back, NULL) != FERRY_OK ||
        ferry_batch_ack_encode(&ack_back, &two, &two_len, NULL) != FERRY_OK || one_len != two_len ||
        memcmp(one, two, one_len) != 0 || ack_back.n != ack.n || ack_back.nrefused != ack.nrefused)
        abort();
    free(one);
    free(two);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_batch(data, size);
    check_ack(data, size);
    return 0;
}
