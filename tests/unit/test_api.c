#include "cunit_main.h"

#include "ferry_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum ferry_err action(const char *body, struct ferry_api_action *out, struct ferry_diag *d)
{
    return ferry_api_action_from_json((const uint8_t *)body, strlen(body), out, d);
}

static void an_action_body_is_optional_and_read_whole(void)
{
    struct ferry_api_action a;
    memset(&a, 'x', sizeof(a));
    CU_ASSERT_EQUAL(action("", &a, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(a.reason, "");
    CU_ASSERT_STRING_EQUAL(a.by, "");
    CU_ASSERT_EQUAL(action("{}", &a, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(a.reason, "");
    CU_ASSERT_EQUAL(action("{\"reason\":\"canary looks slow\",\"by\":\"Zoë\"}", &a, NULL),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(a.reason, "canary looks slow");
    CU_ASSERT_STRING_EQUAL(a.by, "Zoë");
}

static void what_is_wrong_with_a_body_is_named(void)
{
    static const struct {
        const char *body, *says;
    } bad[] = {
        {"{\"reason\":\"x\",\"force\":true}", "unknown field 'force'"},
        {"{\"reason\":1}", "'reason' must be a string"},
        {"{\"reason\":\"\"}", "'reason' must be 1..200 bytes"},
        {"{\"by\":\"a\\nb\"}", "'by' must not hold control characters"},
        {"{\"reason\":\"a\\u001b[2J\"}", "'reason' must not hold control characters"},
        {"{\"reason\":\"a\",\"reason\":\"b\"}", "duplicate"},
        {"[\"pause\"]", "expected a JSON object"},
        {"{\"reason\":", "request body"},
        {"{\"reason\":\"a\"} x", "request body"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_api_action a;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(action(bad[i].body, &a, &d), FERRY_E_MALFORMED);
        if (!strstr(d.msg, bad[i].says))
            fprintf(stderr, "body %s: message '%s' lacks '%s'\n", bad[i].body, d.msg, bad[i].says);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, bad[i].says));
    }
    char *big = malloc(FERRY_API_BODY_MAX + 64);
    CU_ASSERT_FATAL(big != NULL);
    int n = snprintf(big, FERRY_API_BODY_MAX + 64, "{\"reason\":\"");
    memset(big + n, 'a', FERRY_API_BODY_MAX);
    strcpy(big + n + FERRY_API_BODY_MAX, "\"}");
    struct ferry_api_action a;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(action(big, &a, &d), FERRY_E_TOO_LARGE);
    free(big);
    /* 201 bytes of reason: within the body's cap, beyond the field's. */
    char text[260];
    memset(text, 0, sizeof(text));
    strcpy(text, "{\"reason\":\"");
    memset(text + strlen(text), 'r', FERRY_API_REASON_MAX + 1);
    strcat(text, "\"}");
    CU_ASSERT_EQUAL(action(text, &a, &d), FERRY_E_MALFORMED);
}

const char *const ferry_suite_name = "api";
const struct ferry_test_case ferry_tests[] = {
    {"an action body is optional and read whole", an_action_body_is_optional_and_read_whole},
    {"what is wrong with a body is named", what_is_wrong_with_a_body_is_named},
    {NULL, NULL},
};
