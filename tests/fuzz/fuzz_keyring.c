/* libFuzzer target for keyrings (ferry_keyring.h): a PEM public key or a
 * JSON keyring, as an operator's trust file on disk or a node's --trust
 * file. A keyring the parser accepts holds at most FERRY_KEYRING_MAX_KEYS
 * keys and copies whole;
 * a PEM key the point reader accepts is a valid point whose keyring, one
 * key, finds it trusted under its own key id. A violation aborts. */
#include "ferry_keyring.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_keyring *kr = NULL;
    if (ferry_keyring_parse(data, size, &kr, NULL) == FERRY_OK) {
        size_t n = ferry_keyring_count(kr);
        if (n > FERRY_KEYRING_MAX_KEYS)
            abort();
        struct ferry_keyring *copy = ferry_keyring_new();
        if (!copy)
            abort();
        ferry_keyring_copy(copy, kr);
        if (ferry_keyring_count(copy) != n)
            abort();
        ferry_keyring_free(copy);
        ferry_keyring_free(kr);
    }
    uint8_t point[FERRY_P256_POINT_LEN];
    if (ferry_pem_to_point(data, size, "fuzz", point, NULL) == FERRY_OK) {
        char kid[FERRY_KID_LEN + 1];
        ferry_kid_of_point(point, kid);
        struct ferry_keyring *one = ferry_keyring_new();
        if (!one || !ferry_kid_valid(kid) ||
            ferry_keyring_add(one, point, false, NULL) != FERRY_OK ||
            ferry_keyring_lookup(one, kid) != FERRY_OK)
            abort();
        ferry_keyring_free(one);
    }
    return 0;
}
