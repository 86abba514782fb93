#include "cunit_main.h"

#include "cloud_http_access.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ACT_TOKEN  "0123456789abcdef0123456789abcdef"
#define READ_TOKEN "fedcba9876543210fedcba98"

/* A token file with text and mode in the test's folder; its path. */
static const char *token_file(const char *name, const char *text, mode_t mode)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", ferry_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static struct cloud_http_tokens *load(const char *name, const char *text, mode_t mode,
                                      enum ferry_err want, const char *says)
{
    struct cloud_http_tokens *t = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cloud_http_tokens_load(token_file(name, text, mode), &t, &d);
    CU_ASSERT_EQUAL(err, want);
    if (says && !strstr(d.msg, says)) {
        fprintf(stderr, "\n'%s' does not say '%s'\n", d.msg, says);
        CU_FAIL("the error does not name the problem");
    }
    return t;
}

static void a_token_file_names_its_tokens(void)
{
    struct cloud_http_tokens *t =
        load("ok", "# operators\n\nops:" ACT_TOKEN "\n" READ_TOKEN "\n", 0600, FERRY_OK, NULL);
    const char *name = NULL;
    CU_ASSERT_TRUE(cloud_http_tokens_match(t, ACT_TOKEN, strlen(ACT_TOKEN), &name));
    CU_ASSERT_STRING_EQUAL(name, "ops");
    CU_ASSERT_TRUE(cloud_http_tokens_match(t, READ_TOKEN, strlen(READ_TOKEN), &name));
    CU_ASSERT_STRING_EQUAL(name, "token-4");
    /* A prefix, a longer token and a one-byte change are all strangers. */
    CU_ASSERT_FALSE(cloud_http_tokens_match(t, ACT_TOKEN, strlen(ACT_TOKEN) - 1, NULL));
    CU_ASSERT_FALSE(cloud_http_tokens_match(t, ACT_TOKEN "0", strlen(ACT_TOKEN) + 1, NULL));
    CU_ASSERT_FALSE(cloud_http_tokens_match(t, "1123456789abcdef0123456789abcdef", 32, NULL));
    CU_ASSERT_FALSE(cloud_http_tokens_match(NULL, ACT_TOKEN, strlen(ACT_TOKEN), NULL));
    cloud_http_tokens_free(t);
}

static void a_bad_token_file_is_refused_naming_why(void)
{
    CU_ASSERT_PTR_NULL(load("open", "ops:" ACT_TOKEN "\n", 0644, FERRY_E_INVALID_ARG, "o-rwx"));
    CU_ASSERT_PTR_NULL(load("short", "ops:short\n", 0600, FERRY_E_INVALID_ARG, "line 1"));
    CU_ASSERT_PTR_NULL(load("empty", "# nothing\n", 0600, FERRY_E_INVALID_ARG, "no token"));
    CU_ASSERT_PTR_NULL(
        load("twice", "a:" ACT_TOKEN "\na:" READ_TOKEN "\n", 0600, FERRY_E_INVALID_ARG, "line 2"));
    struct cloud_http_tokens *t = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_http_tokens_load("/nonexistent/tokens", &t, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "/nonexistent/tokens"));
}

static void reading_and_acting_are_separate_rights(void)
{
    struct cloud_http_tokens *act = load("act", "ops:" ACT_TOKEN "\n", 0600, FERRY_OK, NULL);
    struct cloud_http_tokens *rd = load("read", "viewer:" READ_TOKEN "\n", 0600, FERRY_OK, NULL);
    const char *who = NULL;
    /* Loopback, no read tokens: reads are open, actions need the token. */
    struct cloud_http_access a = {.act = act, .read = NULL, .loopback = true};
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_READ, NULL, &who), CLOUD_HTTP_ALLOWED);
    CU_ASSERT_STRING_EQUAL(who, "");
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_ACT, NULL, &who), CLOUD_HTTP_NO_TOKEN);
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_ACT, "Bearer " ACT_TOKEN "x", &who),
                    CLOUD_HTTP_BAD_TOKEN);
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_ACT, "Basic b3BzOmZvbw==", &who),
                    CLOUD_HTTP_BAD_TOKEN);
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_ACT, "bearer  " ACT_TOKEN, &who),
                    CLOUD_HTTP_ALLOWED);
    CU_ASSERT_STRING_EQUAL(who, "ops");
    /* With read tokens, a read needs one; a read token cannot act. */
    a.read = rd;
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_READ, NULL, &who), CLOUD_HTTP_NO_TOKEN);
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_READ, "Bearer " READ_TOKEN, &who),
                    CLOUD_HTTP_ALLOWED);
    CU_ASSERT_STRING_EQUAL(who, "viewer");
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_READ, "Bearer " ACT_TOKEN, &who),
                    CLOUD_HTTP_ALLOWED);
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_ACT, "Bearer " READ_TOKEN, &who),
                    CLOUD_HTTP_READ_ONLY);
    /* Off loopback, reads need a token even without read tokens. */
    a = (struct cloud_http_access){.act = act, .read = NULL, .loopback = false};
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_READ, NULL, &who), CLOUD_HTTP_NO_TOKEN);
    /* Without action tokens nobody acts, whatever they send. */
    a = (struct cloud_http_access){.act = NULL, .read = rd, .loopback = true};
    CU_ASSERT_EQUAL(cloud_http_authorize(&a, CLOUD_HTTP_ACT, "Bearer " ACT_TOKEN, &who),
                    CLOUD_HTTP_ACTIONS_OFF);
    cloud_http_tokens_free(act);
    cloud_http_tokens_free(rd);
}

static void listen_addresses_and_their_rules(void)
{
    struct cloud_http_addr a;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_http_addr_parse("8080", &a, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(a.text, "127.0.0.1:8080");
    CU_ASSERT_TRUE(a.loopback);
    CU_ASSERT_EQUAL(cloud_http_addr_parse(":0", &a, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(a.text, "127.0.0.1:0");
    CU_ASSERT_EQUAL(cloud_http_addr_parse("localhost:80", &a, NULL), FERRY_OK);
    CU_ASSERT_TRUE(a.loopback);
    CU_ASSERT_EQUAL(cloud_http_addr_parse("[::1]:443", &a, NULL), FERRY_OK);
    CU_ASSERT_TRUE(a.ipv6 && a.loopback);
    CU_ASSERT_STRING_EQUAL(a.text, "[::1]:443");
    CU_ASSERT_EQUAL(cloud_http_addr_parse("[::ffff:127.0.0.2]:1", &a, NULL), FERRY_OK);
    CU_ASSERT_TRUE(a.loopback);
    CU_ASSERT_EQUAL(cloud_http_addr_parse("10.0.0.1:443", &a, NULL), FERRY_OK);
    CU_ASSERT_FALSE(a.loopback);
    /* Plain HTTP off loopback needs --http-insecure, and reads a token file. */
    CU_ASSERT_EQUAL(cloud_http_listen_check(&a, false, false, true, false, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--http-insecure"));
    CU_ASSERT_EQUAL(cloud_http_listen_check(&a, false, true, true, false, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_http_listen_check(&a, true, false, false, false, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "token"));
    CU_ASSERT_EQUAL(cloud_http_listen_check(&a, true, false, false, true, NULL), FERRY_OK);
    static const char *const bad[] = {"",          "300.1.1.1:80", "host.example:80",
                                      "::1:80",    "[::1]80",      "127.0.0.1:65536",
                                      "1.2.3.4:x", "127.0.0.1:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d.msg[0] = '\0';
        CU_ASSERT_EQUAL(cloud_http_addr_parse(bad[i], &a, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--http"));
    }
}

const char *const ferry_suite_name = "http_access";
const struct ferry_test_case ferry_tests[] = {
    {"a token file names its tokens", a_token_file_names_its_tokens},
    {"a bad token file is refused naming why", a_bad_token_file_is_refused_naming_why},
    {"reading and acting are separate rights", reading_and_acting_are_separate_rights},
    {"listen addresses and their rules", listen_addresses_and_their_rules},
    {NULL, NULL},
};
