/* The libcoap glue: option codecs on PDUs built here, the n= query, the log
 * bridge, and the loop registration on a real context and ferry_loop. */
#include "cunit_main.h"

#include "ferry_coapglue.h"
#include "ferry_fs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static coap_pdu_t *new_pdu(void)
{
    coap_pdu_t *p = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, 1, 1152);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* A PDU with one raw option value. */
static coap_pdu_t *with_option(coap_option_num_t opt, const void *v, size_t len)
{
    coap_pdu_t *p = new_pdu();
    CU_ASSERT_FATAL(coap_add_option(p, opt, len, v) != 0);
    return p;
}

static void blocks_round_trip_and_bad_ones_are_named(void)
{
    ferry_coapglue_up();
    struct ferry_diag d = {{0}};
    struct ferry_coapglue_block b = {0};
    bool present = true;
    coap_pdu_t *p = new_pdu();
    CU_ASSERT_EQUAL(ferry_coapglue_get_block(p, COAP_OPTION_BLOCK2, &present, &b, &d), FERRY_OK);
    CU_ASSERT(!present);
    coap_delete_pdu(p);

    const struct ferry_coapglue_block cases[] = {
        {0, 0, false}, {1, 6, true}, {4095, 4, false}, {FERRY_COAPGLUE_BLOCK_NUM_MAX, 6, true}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = new_pdu();
        CU_ASSERT_FATAL(ferry_coapglue_add_block(p, COAP_OPTION_BLOCK1, &cases[i]));
        memset(&b, 0xff, sizeof(b));
        CU_ASSERT_EQUAL(ferry_coapglue_get_block(p, COAP_OPTION_BLOCK1, &present, &b, &d),
                        FERRY_OK);
        CU_ASSERT(present);
        CU_ASSERT_EQUAL(b.num, cases[i].num);
        CU_ASSERT_EQUAL(b.szx, cases[i].szx);
        CU_ASSERT_EQUAL(b.more, cases[i].more);
        /* Block2 is another option. */
        CU_ASSERT_EQUAL(ferry_coapglue_get_block(p, COAP_OPTION_BLOCK2, &present, &b, &d),
                        FERRY_OK);
        CU_ASSERT(!present);
        coap_delete_pdu(p);
    }
    /* Out of range: nothing added. */
    p = new_pdu();
    struct ferry_coapglue_block big = {FERRY_COAPGLUE_BLOCK_NUM_MAX + 1, 6, false};
    struct ferry_coapglue_block bert = {1, 7, false};
    CU_ASSERT(!ferry_coapglue_add_block(p, COAP_OPTION_BLOCK2, &big));
    CU_ASSERT(!ferry_coapglue_add_block(p, COAP_OPTION_BLOCK2, &bert));
    CU_ASSERT_EQUAL(ferry_coapglue_get_block(p, COAP_OPTION_BLOCK2, &present, &b, &d), FERRY_OK);
    CU_ASSERT(!present);
    coap_delete_pdu(p);

    /* SZX 7 (BERT) is for TCP. */
    uint8_t szx7[] = {0x17};
    p = with_option(COAP_OPTION_BLOCK2, szx7, sizeof(szx7));
    CU_ASSERT_EQUAL(ferry_coapglue_get_block(p, COAP_OPTION_BLOCK2, &present, &b, &d),
                    FERRY_E_MALFORMED);
    CU_ASSERT(present);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "Block2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "SZX 7"));
    coap_delete_pdu(p);
    /* Four bytes: a number beyond 20 bits. */
    uint8_t four[] = {0x01, 0x00, 0x00, 0x06};
    p = with_option(COAP_OPTION_BLOCK1, four, sizeof(four));
    CU_ASSERT_EQUAL(ferry_coapglue_get_block(p, COAP_OPTION_BLOCK1, &present, &b, &d),
                    FERRY_E_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "Block1"));
    coap_delete_pdu(p);
    /* Twice (libcoap will not add it twice, so parse a datagram: a CON GET
     * with no token and Block2 = 1/0/64 two times). */
    const uint8_t twice[] = {0x40, 0x01, 0x00, 0x01, 0xd1, 23 - 13, 0x12, 0x01, 0x12};
    p = coap_pdu_init(0, 0, 0, 1152);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_FATAL(coap_pdu_parse(COAP_PROTO_UDP, twice, sizeof(twice), p) != 0);
    CU_ASSERT_EQUAL(ferry_coapglue_get_block(p, COAP_OPTION_BLOCK2, &present, &b, &d),
                    FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "twice"));
    coap_delete_pdu(p);
    ferry_coapglue_down();
}

static void unsigned_options_are_shortest_and_capped(void)
{
    ferry_coapglue_up();
    struct ferry_diag d = {{0}};
    const uint64_t values[] = {0, 1, 255, 256, 65535, 1u << 24, UINT32_MAX};
    const size_t lengths[] = {0, 1, 1, 2, 2, 4, 4};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        coap_pdu_t *p = new_pdu();
        CU_ASSERT_FATAL(ferry_coapglue_add_uint(p, COAP_OPTION_MAXAGE, values[i]));
        coap_opt_iterator_t it;
        coap_opt_t *o = coap_check_option(p, COAP_OPTION_MAXAGE, &it);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL(coap_opt_length(o), lengths[i]);
        bool present = false;
        uint64_t v = 99;
        CU_ASSERT_EQUAL(ferry_coapglue_get_uint(p, COAP_OPTION_MAXAGE, FERRY_COAPGLUE_MAX_AGE_BYTES,
                                                &present, &v, &d),
                        FERRY_OK);
        CU_ASSERT(present);
        CU_ASSERT_EQUAL(v, values[i]);
        coap_delete_pdu(p);
    }
    coap_pdu_t *p = new_pdu();
    bool present = true;
    uint64_t v = 99;
    CU_ASSERT_EQUAL(
        ferry_coapglue_get_uint(p, COAP_OPTION_SIZE2, FERRY_COAPGLUE_SIZE2_BYTES, &present, &v, &d),
        FERRY_OK);
    CU_ASSERT(!present);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_FATAL(ferry_coapglue_add_uint(p, COAP_OPTION_SIZE2, UINT64_C(1) << 32));
    CU_ASSERT_EQUAL(
        ferry_coapglue_get_uint(p, COAP_OPTION_SIZE2, FERRY_COAPGLUE_SIZE2_BYTES, &present, &v, &d),
        FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "Size2"));
    coap_delete_pdu(p);
    ferry_coapglue_down();
}

static void etags_come_from_the_digest(void)
{
    ferry_coapglue_up();
    uint8_t sha[FERRY_SHA256_LEN];
    for (size_t i = 0; i < sizeof(sha); i++)
        sha[i] = (uint8_t)(0xa0 + i);
    CU_ASSERT_EQUAL(ferry_coapglue_etag_of(sha), UINT64_C(0xa0a1a2a3a4a5a6a7));
    coap_pdu_t *p = new_pdu();
    CU_ASSERT_FATAL(ferry_coapglue_add_etag(p, sha));
    CU_ASSERT(ferry_coapglue_etag_is(p, sha));
    uint8_t other[FERRY_SHA256_LEN];
    memcpy(other, sha, sizeof(other));
    other[7] ^= 1;
    CU_ASSERT(!ferry_coapglue_etag_is(p, other));
    coap_delete_pdu(p);
    /* Leading zero bytes are dropped on the wire. */
    memset(sha, 0, 6);
    p = new_pdu();
    CU_ASSERT_FATAL(ferry_coapglue_add_etag(p, sha));
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(p, COAP_OPTION_ETAG, &it);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(coap_opt_length(o), 2);
    CU_ASSERT(memcmp(coap_opt_value(o), sha + 6, 2) == 0);
    CU_ASSERT(ferry_coapglue_etag_is(p, sha));
    coap_delete_pdu(p);
    /* Never 0, which libcoap reads as "make one up". */
    memset(sha, 0, sizeof(sha));
    CU_ASSERT_EQUAL(ferry_coapglue_etag_of(sha), 1);
    p = new_pdu();
    CU_ASSERT(!ferry_coapglue_etag_is(p, sha)); /* none at all */
    coap_delete_pdu(p);
    ferry_coapglue_down();
}

static void a_request_names_its_node_in_n(void)
{
    ferry_coapglue_up();
    struct ferry_diag d = {{0}};
    char node[FERRY_ID_MAX + 1] = "unset";
    bool present = true;
    coap_pdu_t *p = new_pdu();
    CU_ASSERT_EQUAL(ferry_coapglue_get_node_query(p, node, &present, &d), FERRY_OK);
    CU_ASSERT(!present);
    CU_ASSERT_STRING_EQUAL(node, "unset");
    CU_ASSERT_FATAL(coap_add_option(p, COAP_OPTION_URI_QUERY, 5, (const uint8_t *)"x=abc") != 0);
    CU_ASSERT_FATAL(ferry_coapglue_add_node_query(p, "meter-0042"));
    CU_ASSERT_FATAL(coap_add_option(p, COAP_OPTION_URI_QUERY, 1, (const uint8_t *)"n") != 0);
    CU_ASSERT_EQUAL(ferry_coapglue_get_node_query(p, node, &present, &d), FERRY_OK);
    CU_ASSERT(present);
    CU_ASSERT_STRING_EQUAL(node, "meter-0042");
    /* Twice is refused, even with the same value. */
    CU_ASSERT_FATAL(ferry_coapglue_add_node_query(p, "meter-0042"));
    CU_ASSERT_EQUAL(ferry_coapglue_get_node_query(p, node, &present, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "twice"));
    coap_delete_pdu(p);

    p = new_pdu();
    CU_ASSERT(!ferry_coapglue_add_node_query(p, "../etc"));
    CU_ASSERT(!ferry_coapglue_add_node_query(p, ""));
    coap_delete_pdu(p);
    char too_long[FERRY_ID_MAX + 8];
    memset(too_long, 'a', sizeof(too_long));
    memcpy(too_long, "n=", 2);
    const struct {
        const char *v;
        size_t len;
    } bad[] = {{"n=", 2},
               {"n=a b", 5},
               {"n=.x", 4},
               {"n=a\0b", 5},
               {"n=a/b", 5},
               {"n=a&b", 5},
               {too_long, FERRY_ID_MAX + 3}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = with_option(COAP_OPTION_URI_QUERY, bad[i].v, bad[i].len);
        d.msg[0] = '\0';
        CU_ASSERT_EQUAL(ferry_coapglue_get_node_query(p, node, &present, &d), FERRY_E_MALFORMED);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "n="));
        coap_delete_pdu(p);
    }
    /* The longest identifier fits. */
    char longest[FERRY_ID_MAX + 1];
    memset(longest, 'z', FERRY_ID_MAX);
    longest[FERRY_ID_MAX] = '\0';
    p = new_pdu();
    CU_ASSERT_FATAL(ferry_coapglue_add_node_query(p, longest));
    CU_ASSERT_EQUAL(ferry_coapglue_get_node_query(p, node, &present, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(node, longest);
    coap_delete_pdu(p);
    ferry_coapglue_down();
}

static void libcoap_logs_through_ferry_log(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/log.txt", ferry_test_tmpdir());
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    ferry_log_init("glue-test", FERRY_LOG_INFO);
    ferry_coapglue_up();
    coap_log_impl(4, "a warning from libcoap\n");
    coap_log_impl(7, "a debug line nobody asked for\n");
    ferry_coapglue_down();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    uint8_t *text = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_read_file(path, 1 << 16, &text, &len, NULL) == FERRY_OK);
    const char *t = (const char *)text;
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "warn  glue-test: coap: a warning from libcoap\n"));
    /* libcoap's own newline is dropped, not shown as a control character. */
    CU_ASSERT_PTR_NULL(strstr(t, "libcoap?"));
    /* libcoap's debug lines are not even formatted at info. */
    CU_ASSERT_PTR_NULL(strstr(t, "nobody asked"));
    free(text);
}

struct pass_count {
    struct ferry_coapglue_io *io;
    int passes;
    bool saw_in_pass;
};

static void count_pass(void *arg)
{
    struct pass_count *c = arg;
    c->passes++;
    /* Runs after libcoap, outside its handlers. */
    c->saw_in_pass |= ferry_coapglue_io_in_pass(c->io);
}

static void stop_loop(void *arg)
{
    ferry_loop_stop(arg);
}

static void a_kick_runs_one_pass_from_the_loop(void)
{
    struct ferry_loop *loop = NULL;
    CU_ASSERT_FATAL(ferry_loop_new(&loop, NULL) == FERRY_OK);
    ferry_coapglue_up();
    coap_context_t *ctx = coap_new_context(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    struct ferry_coapglue_io io;
    struct pass_count c = {.io = &io};
    CU_ASSERT_FATAL(ferry_coapglue_io_start(&io, loop, ctx, count_pass, &c, NULL) == FERRY_OK);
    CU_ASSERT(!ferry_coapglue_io_in_pass(&io));
    /* Two kicks before the loop turns are one pass. */
    ferry_coapglue_io_kick(&io);
    ferry_coapglue_io_kick(&io);
    CU_ASSERT_EQUAL(c.passes, 0);
    CU_ASSERT_FATAL(ferry_loop_timer(loop, 50, stop_loop, loop) != 0);
    ferry_loop_run(loop);
    CU_ASSERT_EQUAL(c.passes, 1);
    CU_ASSERT(!c.saw_in_pass);
    ferry_coapglue_io_process(&io);
    CU_ASSERT_EQUAL(c.passes, 2);
    /* A kick pending when it stops never runs. */
    ferry_coapglue_io_kick(&io);
    ferry_coapglue_io_stop(&io);
    ferry_coapglue_io_stop(&io);
    CU_ASSERT_FATAL(ferry_loop_timer(loop, 50, stop_loop, loop) != 0);
    ferry_loop_run(loop);
    CU_ASSERT_EQUAL(c.passes, 2);
    coap_free_context(ctx);
    struct ferry_coapglue_io zeroed;
    memset(&zeroed, 0, sizeof(zeroed));
    ferry_coapglue_io_stop(&zeroed);
    ferry_coapglue_down();
    ferry_loop_free(loop);
}

const struct ferry_test_case ferry_tests[] = {
    {"blocks_round_trip_and_bad_ones_are_named", blocks_round_trip_and_bad_ones_are_named},
    {"unsigned_options_are_shortest_and_capped", unsigned_options_are_shortest_and_capped},
    {"etags_come_from_the_digest", etags_come_from_the_digest},
    {"a_request_names_its_node_in_n", a_request_names_its_node_in_n},
    {"libcoap_logs_through_ferry_log", libcoap_logs_through_ferry_log},
    {"a_kick_runs_one_pass_from_the_loop", a_kick_runs_one_pass_from_the_loop},
    {NULL, NULL},
};

const char *const ferry_suite_name = "coapglue";
