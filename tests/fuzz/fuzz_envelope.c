/* libFuzzer target for the release verification path: the same bytes go to
 * the envelope, manifest and keyring parsers and to full verification with
 * a fixed keyring. Whatever parses must also survive an encode/parse round
 * trip unchanged; a violation aborts, which libFuzzer reports as a crash. */
#include "ferry_envelope.h"
#include "ferry_keyring.h"
#include "ferry_manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Public half of a fuzz-only key (private scalar: SHA-256("ferry-fuzz"), kid
 * 4c1f802fbe657eb1). corpus/envelope/envelope-*.json are signed with it, so
 * the seeds reach the checks that come after the signature. */
static const uint8_t fuzz_point[FERRY_P256_POINT_LEN] = {
    0x04, 0x25, 0xff, 0x47, 0xff, 0xaa, 0x10, 0x37, 0x25, 0x51, 0x49, 0xf0, 0xca,
    0xf3, 0x49, 0x76, 0x2f, 0x65, 0xfc, 0x32, 0x39, 0x38, 0xd6, 0x3f, 0x30, 0x8b,
    0x5c, 0xb9, 0x56, 0x11, 0xfb, 0x97, 0xc7, 0x16, 0x52, 0x45, 0x4a, 0x2d, 0x81,
    0x5b, 0x48, 0x9b, 0x19, 0x7f, 0x67, 0x5e, 0xef, 0x4d, 0xa2, 0x6d, 0xc6, 0x7e,
    0x0e, 0x05, 0x05, 0xbc, 0xde, 0x2f, 0x87, 0xf6, 0xe8, 0x25, 0x29, 0x2d, 0xf5,
};

static const struct ferry_keyring *fuzz_keyring(void)
{
    static struct ferry_keyring *kr;
    if (!kr) {
        kr = ferry_keyring_new();
        if (!kr || ferry_keyring_add(kr, fuzz_point, false, NULL) != FERRY_OK)
            abort();
    }
    return kr;
}

/* encode(parse(x)) must parse, and encoding that must give the same text. */
static void manifest_round_trip(const uint8_t *data, size_t size)
{
    struct ferry_manifest m, again;
    char *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;
    if (ferry_manifest_parse(data, size, &m, NULL) != FERRY_OK)
        return;
    if (ferry_manifest_encode(&m, &text, &len, NULL) != FERRY_OK ||
        ferry_manifest_parse((const uint8_t *)text, len, &again, NULL) != FERRY_OK ||
        ferry_manifest_encode(&again, &text2, &len2, NULL) != FERRY_OK || len != len2 ||
        memcmp(text, text2, len) != 0)
        abort();
    free(text2);
    free(text);
}

static void envelope_round_trip(const uint8_t *data, size_t size)
{
    struct ferry_envelope *env = NULL, *again = NULL;
    char *text = NULL;
    size_t len = 0;
    if (ferry_envelope_parse(data, size, &env, NULL) != FERRY_OK)
        return;
    if (ferry_envelope_encode(env->manifest, env->manifest_len, env->kid, env->sig, &text, &len,
                              NULL) != FERRY_OK ||
        ferry_envelope_parse((const uint8_t *)text, len, &again, NULL) != FERRY_OK ||
        strcmp(env->kid, again->kid) != 0 || memcmp(env->sig, again->sig, sizeof(env->sig)) != 0 ||
        env->manifest_len != again->manifest_len ||
        memcmp(env->manifest, again->manifest, env->manifest_len) != 0)
        abort();
    manifest_round_trip(env->manifest, env->manifest_len);
    ferry_envelope_free(again);
    ferry_envelope_free(env);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ferry_verify_policy pol = {
        .now = 1700000100,
        .clock_skew = 300,
        .hw_model = "mx-100",
        .hw_revision = "A",
        .min_seq = 1,
        .max_artifact_size = 1 << 20,
    };
    struct ferry_keyring *kr = NULL;
    struct ferry_manifest out;

    envelope_round_trip(data, size);
    manifest_round_trip(data, size);
    if (ferry_keyring_parse(data, size, &kr, NULL) == FERRY_OK) {
        if (ferry_keyring_count(kr) == 0)
            abort();
        ferry_keyring_free(kr);
    }
    if (ferry_envelope_verify(data, size, fuzz_keyring(), &pol, &out, NULL) == FERRY_OK &&
        (out.seq < pol.min_seq || out.size > pol.max_artifact_size))
        abort();
    return 0;
}
