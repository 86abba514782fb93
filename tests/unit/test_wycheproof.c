/* Project Wycheproof's ECDSA P-256 / SHA-256 vectors in IEEE P1363 form
 * (raw r || s), every one through ferry_es256_verify. */
#include "cunit_main.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_keyring.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VECTORS       "wycheproof/ecdsa_secp256r1_sha256_p1363_test.json"
#define VECTORS_MAX   (16 * 1024 * 1024)
#define HEX_FIELD_MAX 4096 /* bytes; the longest message in the file is far shorter */

struct tally {
    unsigned run, valid_ok, invalid_rejected, rejected_by_length, acceptable, acceptable_taken;
    unsigned wrong;
};

/* Hex string of any even length into a new buffer; NULL-safe on bad input. */
static uint8_t *from_hex(const char *hex, size_t *len)
{
    size_t n = hex ? strlen(hex) : 0;
    if (!hex || n % 2 || n / 2 > HEX_FIELD_MAX)
        return NULL;
    uint8_t *out = malloc(n / 2 + 1);
    if (out && n > 0 && ferry_hex_decode(hex, out, n / 2) != FERRY_OK) {
        free(out);
        return NULL;
    }
    *len = n / 2;
    return out;
}

static const char *str_of(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static void run_one(const uint8_t point[FERRY_P256_POINT_LEN], const cJSON *t, struct tally *tl)
{
    size_t msg_len = 0, sig_len = 0;
    const char *result = str_of(t, "result");
    uint8_t *msg = from_hex(str_of(t, "msg"), &msg_len);
    uint8_t *sig = from_hex(str_of(t, "sig"), &sig_len);
    CU_ASSERT_FATAL(msg && sig && result);
    bool accepted = false;
    /* Our policy: an ES256 signature is exactly 64 bytes; any other length
     * is refused before any arithmetic. */
    if (sig_len == FERRY_ES256_SIG_LEN)
        accepted = ferry_es256_verify(point, msg, msg_len, sig) == FERRY_OK;
    else
        tl->rejected_by_length++;
    tl->run++;
    if (strcmp(result, "valid") == 0) {
        tl->valid_ok += accepted;
        tl->wrong += !accepted;
    } else if (strcmp(result, "invalid") == 0) {
        tl->invalid_rejected += !accepted;
        tl->wrong += accepted;
    } else {
        tl->acceptable++;
        tl->acceptable_taken += accepted;
    }
    if ((strcmp(result, "valid") == 0) != accepted && strcmp(result, "acceptable") != 0) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "tcId");
        fprintf(stderr, "\n    tcId %d (%s, %s): we %s it\n", id ? id->valueint : -1, result,
                str_of(t, "comment"), accepted ? "accepted" : "rejected");
    }
    free(sig);
    free(msg);
}

static void run_group(const cJSON *group, struct tally *tl)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(group, "publicKey");
    size_t point_len = 0;
    uint8_t *point = from_hex(str_of(key, "uncompressed"), &point_len);
    CU_ASSERT_FATAL(point != NULL);
    CU_ASSERT_EQUAL_FATAL(point_len, FERRY_P256_POINT_LEN);
    CU_ASSERT_STRING_EQUAL(str_of(key, "curve"), "secp256r1");
    CU_ASSERT_STRING_EQUAL(str_of(group, "sha"), "SHA-256");
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(group, "tests"))
    {
        run_one(point, t, tl);
    }
    free(point);
}

static void wycheproof_ecdsa_p256_p1363(void)
{
    const char *path = ferry_testdata_path(VECTORS);
    if (!path) {
        fprintf(stderr, "SKIP: Wycheproof vectors absent, ES256 checked only by other tests\n");
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_read_file(path, VECTORS_MAX, &buf, &len, NULL) == FERRY_OK);
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    CU_ASSERT_FATAL(root != NULL);

    struct tally tl = {0};
    const cJSON *group;
    cJSON_ArrayForEach(group, cJSON_GetObjectItemCaseSensitive(root, "testGroups"))
    {
        run_group(group, &tl);
    }
    const cJSON *declared = cJSON_GetObjectItemCaseSensitive(root, "numberOfTests");
    fprintf(stderr,
            "\n    wycheproof: %u vectors: %u valid accepted, %u invalid rejected (%u for a "
            "length other than 64 bytes), %u wrong\n",
            tl.run, tl.valid_ok, tl.invalid_rejected, tl.rejected_by_length, tl.wrong);
    if (tl.acceptable)
        fprintf(stderr,
                "    wycheproof: %u 'acceptable' vectors, %u accepted (policy: only exactly "
                "64-byte r||s with r, s in [1, n-1] verifies)\n",
                tl.acceptable, tl.acceptable_taken);
    CU_ASSERT(tl.run > 0);
    CU_ASSERT(cJSON_IsNumber(declared) && tl.run == (unsigned)declared->valueint);
    CU_ASSERT_EQUAL(tl.wrong, 0);
    CU_ASSERT_EQUAL(tl.valid_ok + tl.invalid_rejected + tl.acceptable, tl.run);
    cJSON_Delete(root);
}

const char *const ferry_suite_name = "wycheproof";
const struct ferry_test_case ferry_tests[] = {
    {"wycheproof_ecdsa_p256_p1363", wycheproof_ecdsa_p256_p1363},
    {NULL, NULL},
};
