#include "cunit_main.h"

#include "ferry_fs.h"
#include "ferry_names.h"
#include "gw_psk.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY16 "00112233445566778899aabbccddeeff"

static struct gw_psk *parse_ok(const char *text)
{
    struct gw_psk *t = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = gw_psk_parse("keys", text, strlen(text), &t, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "unexpected: %s\n", ferry_diag_str(&d, err));
    CU_ASSERT_FATAL(err == FERRY_OK);
    return t;
}

/* Parses text that must fail with err, and checks the message names each of
 * the given fragments (line number, node, reason). */
static void parse_fails(const char *text, enum ferry_err want, const char *frag1, const char *frag2)
{
    struct gw_psk *t = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = gw_psk_parse("keys", text, strlen(text), &t, &d);
    CU_ASSERT_EQUAL(err, want);
    CU_ASSERT_PTR_NULL(t);
    if (frag1 && !strstr(d.msg, frag1))
        fprintf(stderr, "message '%s' lacks '%s'\n", d.msg, frag1);
    CU_ASSERT(!frag1 || strstr(d.msg, frag1) != NULL);
    CU_ASSERT(!frag2 || strstr(d.msg, frag2) != NULL);
}

static bool has_key(const struct gw_psk *t, const char *id, const uint8_t *key, size_t len)
{
    size_t got = 0;
    const uint8_t *k = gw_psk_find(t, (const uint8_t *)id, strlen(id), &got);
    return k && got == len && memcmp(k, key, len) == 0;
}

static void keys_comments_and_blanks_parse(void)
{
    struct gw_psk *t = parse_ok("# Ferry node keys\n"
                                "\n"
                                "node-1 " KEY16 "\n"
                                "   \t# indented comment\n"
                                "\tnode_2\t\t" KEY16 KEY16 "   # trailing comment\r\n"
                                "N.3 AABBCCDDEEFF00112233445566778899"); /* no final newline */
    CU_ASSERT_EQUAL(gw_psk_count(t), 3);
    uint8_t k1[16], k2[32], k3[16];
    for (int i = 0; i < 16; i++)
        k1[i] = (uint8_t)(i * 0x11);
    memcpy(k2, k1, 16);
    memcpy(k2 + 16, k1, 16);
    const uint8_t k3v[] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
                           0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99};
    memcpy(k3, k3v, 16);
    CU_ASSERT(has_key(t, "node-1", k1, 16));
    CU_ASSERT(has_key(t, "node_2", k2, 32));
    CU_ASSERT(has_key(t, "N.3", k3, 16));
    gw_psk_free(t);
}

static void lookup_is_exact_on_wire_identities(void)
{
    struct gw_psk *t = parse_ok("node-1 " KEY16 "\nnode-10 " KEY16 KEY16 "\n");
    size_t len = 0;
    const uint8_t with_nul[] = {'n', 'o', 'd', 'e', '-', '1', 0};
    CU_ASSERT_PTR_NULL(gw_psk_find(t, (const uint8_t *)"node-", 5, &len));
    CU_ASSERT_PTR_NULL(gw_psk_find(t, with_nul, sizeof(with_nul), &len));
    CU_ASSERT_PTR_NULL(gw_psk_find(t, (const uint8_t *)"NODE-1", 6, &len));
    CU_ASSERT_PTR_NULL(gw_psk_find(t, (const uint8_t *)"node-1", 0, &len));
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NOT_NULL(gw_psk_find(t, (const uint8_t *)"node-10", 7, &len));
    CU_ASSERT_EQUAL(len, 32);
    CU_ASSERT_PTR_NOT_NULL(gw_psk_find(t, (const uint8_t *)"node-1", 6, &len));
    CU_ASSERT_EQUAL(len, 16);
    gw_psk_free(t);
}

static void key_length_limits_are_inclusive(void)
{
    char text[256];
    char hex[2 * GW_PSK_KEY_MAX + 3];
    for (size_t bytes = GW_PSK_KEY_MIN - 1; bytes <= GW_PSK_KEY_MAX + 1; bytes++) {
        memset(hex, 'a', 2 * bytes);
        hex[2 * bytes] = '\0';
        snprintf(text, sizeof(text), "n %s\n", hex);
        struct gw_psk *t = NULL;
        struct ferry_diag d = {{0}};
        enum ferry_err err = gw_psk_parse("keys", text, strlen(text), &t, &d);
        bool fits = bytes >= GW_PSK_KEY_MIN && bytes <= GW_PSK_KEY_MAX;
        CU_ASSERT_EQUAL(err, fits ? FERRY_OK : FERRY_E_MALFORMED);
        if (!fits)
            CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "must be 16..64 bytes"));
        gw_psk_free(t);
    }
}

static void bad_lines_are_named(void)
{
    parse_fails("node-1 " KEY16 "\nnode-2 0011\n", FERRY_E_MALFORMED, "keys:2:", "'node-2'");
    parse_fails("node-1\n", FERRY_E_MALFORMED, "keys:1:", "no key for 'node-1'");
    parse_fails("node-1 " KEY16 " extra\n", FERRY_E_MALFORMED, "keys:1:", "after the key");
    parse_fails("\n\nnode-1 0g112233445566778899aabbccddeeff\n", FERRY_E_MALFORMED,
                "keys:3:", "not hexadecimal");
    parse_fails("node-1 " KEY16 "1\n", FERRY_E_MALFORMED, "keys:1:", "33 hex digits");
    parse_fails("node/1 " KEY16 "\n", FERRY_E_MALFORMED, "keys:1:", "'node/1'");
    parse_fails(".hidden " KEY16 "\n", FERRY_E_MALFORMED, "keys:1:", "not an identifier");
    parse_fails("# a\nnode-1 " KEY16 "\nnode-1 " KEY16 "\n", FERRY_E_MALFORMED,
                "keys:3:", "already has a key (line 2)");
    parse_fails("", FERRY_E_MALFORMED, "no keys", NULL);
    parse_fails("# only comments\n\n", FERRY_E_MALFORMED, "no keys", NULL);
    char longid[FERRY_ID_MAX + 2 + sizeof(KEY16) + 2];
    memset(longid, 'x', FERRY_ID_MAX + 1);
    snprintf(longid + FERRY_ID_MAX + 1, sizeof(longid) - FERRY_ID_MAX - 1, " %s", KEY16);
    parse_fails(longid, FERRY_E_MALFORMED, "keys:1:", "longer than 64");
    /* A NUL byte in the middle of a line. */
    const char withnul[] = "node-1 00112233\0"
                           "445566778899aabbccddeeff\n";
    struct gw_psk *t = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_psk_parse("keys", withnul, sizeof(withnul) - 1, &t, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "NUL"));
    CU_ASSERT_PTR_NULL(t);
}

static void files_are_read_and_capped(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/keys.txt", ferry_test_tmpdir());
    const char *text = "node-9 " KEY16 "\n";
    CU_ASSERT_FATAL(ferry_write_atomic(path, text, strlen(text), 0600, NULL) == FERRY_OK);
    struct gw_psk *t = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_psk_load(path, &t, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(gw_psk_count(t), 1);
    gw_psk_free(t);

    /* Errors from a file carry its path. */
    const char *bad = "node-9 00\n";
    CU_ASSERT_FATAL(ferry_write_atomic(path, bad, strlen(bad), 0600, NULL) == FERRY_OK);
    t = NULL;
    CU_ASSERT_EQUAL(gw_psk_load(path, &t, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "keys.txt:1:"));
    CU_ASSERT_PTR_NULL(t);

    size_t big = GW_PSK_FILE_MAX + 1;
    char *huge = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    memset(huge, '#', big);
    CU_ASSERT_FATAL(ferry_write_atomic(path, huge, big, 0600, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_psk_load(path, &t, &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "psk"));
    CU_ASSERT_EQUAL(gw_psk_parse("mem", huge, big, &t, &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_PTR_NULL(t);
    free(huge);

    snprintf(path, sizeof(path), "%s/absent.txt", ferry_test_tmpdir());
    CU_ASSERT_EQUAL(gw_psk_load(path, &t, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "absent.txt"));
    CU_ASSERT_PTR_NULL(t);
    gw_psk_free(NULL);
}

const struct ferry_test_case ferry_tests[] = {
    {"keys_comments_and_blanks_parse", keys_comments_and_blanks_parse},
    {"lookup_is_exact_on_wire_identities", lookup_is_exact_on_wire_identities},
    {"key_length_limits_are_inclusive", key_length_limits_are_inclusive},
    {"bad_lines_are_named", bad_lines_are_named},
    {"files_are_read_and_capped", files_are_read_and_capped},
    {NULL, NULL},
};

const char *const ferry_suite_name = "gw_psk";
