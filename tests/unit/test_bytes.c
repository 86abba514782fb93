/* The byte-order codecs (ferry_bytes.h) and the random sources
 * (ferry_random.h). */
#include "cunit_main.h"

#include "ferry_bytes.h"
#include "ferry_random.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static void big_endian_byte_order(void)
{
    uint8_t b[8];
    ferry_put_be64(b, UINT64_C(0x0102030405060708));
    CU_ASSERT_EQUAL(memcmp(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8), 0);
    CU_ASSERT_EQUAL(ferry_get_be64(b), UINT64_C(0x0102030405060708));
    CU_ASSERT_EQUAL(ferry_get_be32(b), 0x01020304u);
    CU_ASSERT_EQUAL(ferry_get_be16(b), 0x0102u);
    ferry_put_be32(b, 0xa1b2c3d4u);
    CU_ASSERT_EQUAL(memcmp(b, "\xa1\xb2\xc3\xd4", 4), 0);
    ferry_put_be16(b, 0xfffe);
    CU_ASSERT_EQUAL(memcmp(b, "\xff\xfe", 2), 0);
    ferry_put_be_n(b, 0x123456, 3);
    CU_ASSERT_EQUAL(memcmp(b, "\x12\x34\x56", 3), 0);
    CU_ASSERT_EQUAL(ferry_get_be_n(b, 3), 0x123456u);
}

static void little_endian_byte_order(void)
{
    uint8_t b[8];
    ferry_put_le64(b, UINT64_C(0x0102030405060708));
    CU_ASSERT_EQUAL(memcmp(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8), 0);
    CU_ASSERT_EQUAL(ferry_get_le64(b), UINT64_C(0x0102030405060708));
    CU_ASSERT_EQUAL(ferry_get_le32(b), 0x05060708u);
    CU_ASSERT_EQUAL(ferry_get_le16(b), 0x0708u);
    ferry_put_le32(b, 0xa1b2c3d4u);
    CU_ASSERT_EQUAL(memcmp(b, "\xd4\xc3\xb2\xa1", 4), 0);
    ferry_put_le16(b, 0xfffe);
    CU_ASSERT_EQUAL(memcmp(b, "\xfe\xff", 2), 0);
    ferry_put_le_n(b, 0x123456, 3);
    CU_ASSERT_EQUAL(memcmp(b, "\x56\x34\x12", 3), 0);
    CU_ASSERT_EQUAL(ferry_get_le_n(b, 3), 0x123456u);
}

static void every_width_round_trips(void)
{
    const uint64_t values[] = {0,
                               1,
                               0x80,
                               0xff,
                               0x100,
                               0xffff,
                               0x10000,
                               UINT32_MAX,
                               UINT64_C(0x100000000),
                               UINT64_MAX,
                               UINT64_C(0x8000000000000000)};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        for (size_t n = 1; n <= 8; n++) {
            uint8_t b[9] = {0};
            uint64_t mask = n == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * n)) - 1;
            ferry_put_be_n(b, values[i], n);
            CU_ASSERT_EQUAL(b[n], 0); /* nothing past the width */
            CU_ASSERT_EQUAL(ferry_get_be_n(b, n), values[i] & mask);
            ferry_put_le_n(b, values[i], n);
            CU_ASSERT_EQUAL(b[n], 0);
            CU_ASSERT_EQUAL(ferry_get_le_n(b, n), values[i] & mask);
        }
    }
}

static void prng_is_reproducible_and_never_stuck(void)
{
    struct ferry_prng a, b, zero;
    ferry_prng_seed(&a, 42);
    ferry_prng_seed(&b, 42);
    ferry_prng_seed(&zero, 0);
    uint64_t first = ferry_prng_next(&a);
    CU_ASSERT_EQUAL(first, ferry_prng_next(&b));
    bool differ = false;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = ferry_prng_next(&a);
        CU_ASSERT_EQUAL(x, ferry_prng_next(&b));
        differ |= x != first;
        CU_ASSERT_NOT_EQUAL(ferry_prng_next(&zero), 0); /* seed 0 is not a fixed point */
    }
    CU_ASSERT_TRUE(differ);
}

static void prng_spreads_over_small_ranges(void)
{
    /* Jitter takes values modulo small numbers: each residue shows up. */
    struct ferry_prng p;
    ferry_prng_seed(&p, 7);
    unsigned seen[10] = {0};
    for (int i = 0; i < 10000; i++)
        seen[ferry_prng_next(&p) % 10]++;
    for (int i = 0; i < 10; i++)
        CU_ASSERT_TRUE(seen[i] > 800 && seen[i] < 1200);
}

static void random_fills_and_differs(void)
{
    uint8_t a[64], b[64];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    ferry_random_fill(a, sizeof(a));
    ferry_random_fill(b, sizeof(b));
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);
    uint8_t last = a[63];
    ferry_random_fill(a, 0); /* nothing asked, nothing written */
    CU_ASSERT_EQUAL(a[63], last);
    CU_ASSERT_NOT_EQUAL(ferry_random_u64(), ferry_random_u64());
}

const char *const ferry_suite_name = "bytes";
const struct ferry_test_case ferry_tests[] = {
    {"big_endian_byte_order", big_endian_byte_order},
    {"little_endian_byte_order", little_endian_byte_order},
    {"every_width_round_trips", every_width_round_trips},
    {"prng_is_reproducible_and_never_stuck", prng_is_reproducible_and_never_stuck},
    {"prng_spreads_over_small_ranges", prng_spreads_over_small_ranges},
    {"random_fills_and_differs", random_fills_and_differs},
    {NULL, NULL},
};
