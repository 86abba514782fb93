#include "cunit_main.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void hex_of(const uint8_t digest[FERRY_SHA256_LEN], char hex[FERRY_SHA256_HEX_LEN + 1])
{
    ferry_hex_encode(digest, FERRY_SHA256_LEN, hex);
}

/* FIPS 180-2 example messages and their published digests. */
static void sha256_known_answers(void)
{
    static const struct {
        const char *msg;
        const char *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t digest[FERRY_SHA256_LEN];
        char hex[FERRY_SHA256_HEX_LEN + 1];
        ferry_sha256(v[i].msg, strlen(v[i].msg), digest);
        hex_of(digest, hex);
        CU_ASSERT_STRING_EQUAL(hex, v[i].hex);
    }
}

/* One million 'a', fed in uneven pieces (FIPS 180-2, third example). */
static void sha256_streaming_million_a(void)
{
    static char chunk[997];
    memset(chunk, 'a', sizeof(chunk));
    struct ferry_sha256 h;
    ferry_sha256_init(&h);
    size_t left = 1000000;
    for (size_t step = 1; left > 0; step = (step * 7 + 13) % sizeof(chunk) + 1) {
        size_t n = step < left ? step : left;
        ferry_sha256_update(&h, chunk, n);
        left -= n;
    }
    uint8_t digest[FERRY_SHA256_LEN];
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_sha256_final(&h, digest);
    hex_of(digest, hex);
    CU_ASSERT_STRING_EQUAL(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void sha256_split_points_agree(void)
{
    uint8_t data[300], whole[FERRY_SHA256_LEN], parts[FERRY_SHA256_LEN];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 37 + 11);
    ferry_sha256(data, sizeof(data), whole);
    for (size_t cut = 0; cut <= sizeof(data); cut++) {
        struct ferry_sha256 h;
        ferry_sha256_init(&h);
        ferry_sha256_update(&h, data, cut);
        ferry_sha256_update(&h, data + cut, sizeof(data) - cut);
        ferry_sha256_final(&h, parts);
        CU_ASSERT_EQUAL(memcmp(whole, parts, sizeof(whole)), 0);
    }
}

static char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", ferry_test_tmpdir(), name);
    return path;
}

/* Larger than the 64 KiB read buffer and not a multiple of it. */
static void sha256_file_matches_buffer(void)
{
    size_t len = 3 * 65536 + 123;
    uint8_t *data = malloc(len);
    CU_ASSERT_FATAL(data != NULL);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    const char *path = tmp_path("big.bin");
    CU_ASSERT_FATAL(ferry_write_atomic(path, data, len, 0644, NULL) == FERRY_OK);

    uint8_t want[FERRY_SHA256_LEN], got[FERRY_SHA256_LEN];
    uint64_t size = 0;
    ferry_sha256(data, len, want);
    CU_ASSERT_EQUAL(ferry_sha256_file(path, got, &size, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(size, len);
    CU_ASSERT_EQUAL(memcmp(want, got, sizeof(want)), 0);
    free(data);
}

static void sha256_file_empty(void)
{
    const char *path = tmp_path("empty.bin");
    CU_ASSERT_FATAL(ferry_write_atomic(path, "", 0, 0644, NULL) == FERRY_OK);
    uint8_t want[FERRY_SHA256_LEN], got[FERRY_SHA256_LEN];
    uint64_t size = 99;
    ferry_sha256("", 0, want);
    CU_ASSERT_EQUAL(ferry_sha256_file(path, got, &size, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(size, 0);
    CU_ASSERT_EQUAL(memcmp(want, got, sizeof(want)), 0);
}

static void sha256_file_errors_leave_outputs(void)
{
    uint8_t got[FERRY_SHA256_LEN];
    memset(got, 0x5a, sizeof(got));
    uint64_t size = 7;
    struct ferry_diag d = {""};
    const char *missing = tmp_path("no-such-file");
    CU_ASSERT_EQUAL(ferry_sha256_file(missing, got, &size, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "no-such-file"));

    const char *dir = tmp_path("a-folder");
    CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
    CU_ASSERT_EQUAL(ferry_sha256_file(dir, got, &size, &d), FERRY_E_IO);
    CU_ASSERT_EQUAL(size, 7);
    CU_ASSERT_EQUAL(got[0], 0x5a);
    CU_ASSERT_EQUAL(got[FERRY_SHA256_LEN - 1], 0x5a);
}

const char *const ferry_suite_name = "sha256";
const struct ferry_test_case ferry_tests[] = {
    {"sha256_known_answers", sha256_known_answers},
    {"sha256_streaming_million_a", sha256_streaming_million_a},
    {"sha256_split_points_agree", sha256_split_points_agree},
    {"sha256_file_matches_buffer", sha256_file_matches_buffer},
    {"sha256_file_empty", sha256_file_empty},
    {"sha256_file_errors_leave_outputs", sha256_file_errors_leave_outputs},
    {NULL, NULL},
};
