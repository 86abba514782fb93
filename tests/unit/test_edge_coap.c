/* ferry-edge's CoAP client (edge_coap.h) against a fake gateway: a plain UDP
 * socket in this process, on the same ferry_loop, that decodes each request
 * and answers exactly what a test tells it to, well-formed or not. */
#include "cunit_main.h"

#include "edge_coap.h"
#include "ferry_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define NODE    "node-7"
#define PRODUCT "meter"
#define MAX_MSG 64

/* CoAP header values (RFC 7252). */
#define T_CON         0
#define T_NON         1
#define T_ACK         2
#define CODE(c, d)    (((c) << 5) | (d))
#define OPT_OBSERVE   6
#define OPT_URI_PATH  11
#define OPT_URI_QUERY 15
#define OPT_BLOCK2    23

/* ---- the fake gateway --------------------------------------------------------- */

struct msg {
    unsigned type, code;
    uint16_t mid;
    uint8_t token[8];
    size_t tkl;
    char path[160];
    char query[80];
    bool observe;
    bool has_block2;
    uint32_t block2; /* raw option value */
    uint64_t at_ms;
    uint16_t from_port; /* the client's source port */
};

static struct fake {
    int fd;
    uint16_t port;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct msg m[MAX_MSG];
    size_t n;
} G;

static struct ferry_loop *loop;

/* One option's delta or length nibble and its extension. */
static bool opt_field(const uint8_t **p, const uint8_t *end, unsigned nib, uint32_t *out)
{
    if (nib < 13) {
        *out = nib;
    } else if (nib == 13) {
        if (*p >= end)
            return false;
        *out = 13u + *(*p)++;
    } else if (nib == 14) {
        if (end - *p < 2)
            return false;
        *out = 269u + ((uint32_t)(*p)[0] << 8 | (*p)[1]);
        *p += 2;
    } else {
        return false;
    }
    return true;
}

/* Appends a path segment or query item, with sep between items. */
static bool append(char *dst, size_t cap, char sep, const uint8_t *v, size_t len)
{
    size_t at = strlen(dst);
    if (at + len + 2 > cap)
        return false;
    if (at)
        dst[at++] = sep;
    memcpy(dst + at, v, len);
    dst[at + len] = '\0';
    return true;
}

static bool parse(const uint8_t *buf, size_t len, struct msg *m)
{
    memset(m, 0, sizeof(*m));
    if (len < 4 || (buf[0] >> 6) != 1)
        return false;
    m->type = (buf[0] >> 4) & 3;
    m->tkl = buf[0] & 15;
    m->code = buf[1];
    m->mid = (uint16_t)(buf[2] << 8 | buf[3]);
    if (m->tkl > 8 || len < 4 + m->tkl)
        return false;
    memcpy(m->token, buf + 4, m->tkl);
    const uint8_t *p = buf + 4 + m->tkl, *end = buf + len;
    uint32_t num = 0;
    while (p < end && *p != 0xff) {
        unsigned dn = *p >> 4, ln = *p & 15;
        p++;
        uint32_t delta, olen;
        if (!opt_field(&p, end, dn, &delta) || !opt_field(&p, end, ln, &olen) ||
            (size_t)(end - p) < olen)
            return false;
        num += delta;
        if (num == OPT_URI_PATH || num == OPT_URI_QUERY) {
            bool path = num == OPT_URI_PATH;
            if (!append(path ? m->path : m->query, path ? sizeof(m->path) : sizeof(m->query),
                        path ? '/' : '&', p, olen))
                return false;
        } else if (num == OPT_OBSERVE) {
            m->observe = true;
        } else if (num == OPT_BLOCK2) {
            m->has_block2 = true;
            for (uint32_t i = 0; i < olen; i++)
                m->block2 = m->block2 << 8 | p[i];
        }
        p += olen;
    }
    return true;
}

static void put_opt(uint8_t **p, unsigned *last, unsigned num, const uint8_t *v, size_t len)
{
    unsigned delta = num - *last;
    *last = num;
    uint8_t *h = (*p)++;
    unsigned dn = delta < 13 ? delta : 13, ln = len < 13 ? (unsigned)len : 13;
    *h = (uint8_t)(dn << 4 | ln);
    if (dn == 13)
        *(*p)++ = (uint8_t)(delta - 13);
    if (ln == 13)
        *(*p)++ = (uint8_t)(len - 13);
    memcpy(*p, v, len);
    *p += len;
}

/* Answers request m: piggybacked on an ACK when it was confirmable, as a NON
 * otherwise. block2: raw Block2 bytes (block2_len 0: no option). */
static void answer(const struct msg *m, unsigned code, const uint8_t *block2, size_t block2_len,
                   const uint8_t *payload, size_t len)
{
    uint8_t buf[1400];
    uint8_t *p = buf;
    unsigned type = m->type == T_CON ? T_ACK : T_NON;
    static uint16_t mid = 0x7000;
    uint16_t id = type == T_ACK ? m->mid : mid++;
    *p++ = (uint8_t)(1 << 6 | type << 4 | m->tkl);
    *p++ = (uint8_t)code;
    *p++ = (uint8_t)(id >> 8);
    *p++ = (uint8_t)id;
    memcpy(p, m->token, m->tkl);
    p += m->tkl;
    unsigned last = 0;
    if (block2_len)
        put_opt(&p, &last, OPT_BLOCK2, block2, block2_len);
    if (len) {
        *p++ = 0xff;
        memcpy(p, payload, len);
        p += len;
    }
    CU_ASSERT_EQUAL(sendto(G.fd, buf, (size_t)(p - buf), 0, (struct sockaddr *)&G.peer, G.peer_len),
                    p - buf);
}

static void on_fake(void *arg, uint32_t events)
{
    (void)arg;
    (void)events;
    uint8_t buf[2048];
    for (;;) {
        G.peer_len = sizeof(G.peer);
        ssize_t n = recvfrom(G.fd, buf, sizeof(buf), 0, (struct sockaddr *)&G.peer, &G.peer_len);
        if (n < 0)
            return;
        struct msg m;
        if (parse(buf, (size_t)n, &m) && G.n < MAX_MSG) {
            m.at_ms = ferry_now_ms();
            m.from_port = ntohs(((const struct sockaddr_in *)&G.peer)->sin_port);
            G.m[G.n++] = m;
        }
    }
}

/* The latest request whose path starts with `prefix` and that came after
 * index `from`; fatal when there is none. */
static const struct msg *find_req(const char *prefix, size_t from)
{
    for (size_t i = G.n; i-- > from;) {
        if (strncmp(G.m[i].path, prefix, strlen(prefix)) == 0 && G.m[i].code != 0 &&
            G.m[i].type != T_ACK)
            return &G.m[i];
    }
    static const struct msg none;
    CU_FAIL_FATAL("expected request missing");
    return &none;
}

/* ---- the client under test ----------------------------------------------------- */

static struct client {
    struct edge_coap *c;
    struct edge_coap_answer block[16];
    uint32_t block_req[16];
    uint8_t block_data[16][1024];
    size_t nblock;
    unsigned status_code;
    size_t nstatus;
    /* new_session: how often it ran, and the block request id (0: none)
     * the hook sends again, as the daemon's window does, under a fresh id. */
    size_t new_sessions;
    uint32_t resend_req;
} C;

static void on_manifest(void *arg, const uint8_t *env, size_t len)
{
    (void)arg;
    (void)env;
    (void)len;
}

static void on_no_manifest(void *arg)
{
    (void)arg;
}

static void on_block(void *arg, uint32_t req, const struct edge_coap_answer *a)
{
    (void)arg;
    if (C.nblock < 16) {
        C.block_req[C.nblock] = req;
        C.block[C.nblock] = *a;
        size_t n = a->len < 1024 ? a->len : 1024;
        memcpy(C.block_data[C.nblock], a->data, n);
        C.block[C.nblock].data = C.block_data[C.nblock];
        C.nblock++;
    }
}

static void on_status(void *arg, const struct edge_coap_answer *a)
{
    (void)arg;
    C.status_code = a->code;
    C.nstatus++;
}

static const uint8_t SHA[FERRY_SHA256_LEN] = {0xab, 0xcd};

static void on_new_session(void *arg)
{
    (void)arg;
    C.new_sessions++;
    if (C.resend_req)
        CU_ASSERT_EQUAL(edge_coap_get_block(C.c, SHA, 0, 1024, C.resend_req, NULL), FERRY_OK);
}

static void setup(void)
{
    memset(&G, 0, sizeof(G));
    memset(&C, 0, sizeof(C));
    CU_ASSERT_EQUAL_FATAL(ferry_loop_new(&loop, NULL), FERRY_OK);
    G.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CU_ASSERT_EQUAL_FATAL(bind(G.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    CU_ASSERT_EQUAL_FATAL(getsockname(G.fd, (struct sockaddr *)&a, &alen), 0);
    G.port = ntohs(a.sin_port);
    CU_ASSERT_EQUAL_FATAL(ferry_loop_add_fd(loop, G.fd, EPOLLIN, on_fake, NULL), FERRY_OK);
    char uri[64];
    snprintf(uri, sizeof(uri), "coap://127.0.0.1:%u", G.port);
    struct edge_coap_opts o = {
        .uri = uri,
        .product = PRODUCT,
        .node_id = NODE,
        .poll_ms = 3600000,
        .request_timeout_ms = 30000,
        .ack_timeout_ms = 1000,
        .seed = 7,
    };
    struct edge_coap_hooks h = {
        .manifest = on_manifest,
        .no_manifest = on_no_manifest,
        .block = on_block,
        .status = on_status,
        .new_session = on_new_session,
    };
    CU_ASSERT_EQUAL_FATAL(edge_coap_new(loop, &o, &h, &C.c, NULL), FERRY_OK);
}

static void teardown(void)
{
    edge_coap_free(C.c);
    ferry_loop_del_fd(loop, G.fd);
    close(G.fd);
    ferry_loop_free(loop);
}

static bool (*until)(void);

static void tick(void *arg)
{
    (void)arg;
    if (until())
        ferry_loop_stop(loop);
    else
        ferry_loop_timer(loop, 5, tick, NULL);
}

static void give_up(void *arg)
{
    (void)arg;
    ferry_loop_stop(loop);
}

/* Runs the loop until done() or timeout_ms; returns done(). */
static bool run_until(bool (*done)(void), uint64_t timeout_ms)
{
    until = done;
    uint64_t t1 = ferry_loop_timer(loop, 0, tick, NULL);
    uint64_t t2 = ferry_loop_timer(loop, timeout_ms, give_up, NULL);
    ferry_loop_run(loop);
    ferry_loop_cancel(loop, t1);
    ferry_loop_cancel(loop, t2);
    return done();
}

static size_t want_requests;
static bool got_requests(void)
{
    return G.n >= want_requests;
}

/* ---- tests ------------------------------------------------------------------------ */

/* Waits for the first manifest GET and answers it 4.04 (no release). */
static void manifest_answered(void)
{
    want_requests = 1;
    CU_ASSERT_FATAL(run_until(got_requests, 2000));
    answer(find_req("ferry/manifest/", 0), CODE(4, 4), NULL, 0, NULL, 0);
}

static size_t want_blocks;
static bool got_blocks(void)
{
    return C.nblock >= want_blocks;
}

static void manifest_request_names_the_node(void)
{
    setup();
    want_requests = 1;
    CU_ASSERT_FATAL(run_until(got_requests, 2000));
    const struct msg *m = find_req("ferry/manifest/", 0);
    CU_ASSERT_STRING_EQUAL(m->path, "ferry/manifest/" PRODUCT);
    CU_ASSERT_STRING_EQUAL(m->query, "n=" NODE);
    CU_ASSERT_TRUE(m->observe);
    CU_ASSERT_EQUAL(m->type, T_CON);
    teardown();
}

static void block_requests_are_non_confirmable_and_name_their_request(void)
{
    setup();
    manifest_answered();
    size_t before = G.n;
    CU_ASSERT_EQUAL_FATAL(edge_coap_get_block(C.c, SHA, 0, 1024, 17, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_coap_get_block(C.c, SHA, 3 * 512, 512, 18, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_coap_get_block(C.c, SHA, 100, 512, 19, NULL), FERRY_E_INVALID_ARG);
    want_requests = before + 2;
    CU_ASSERT_FATAL(run_until(got_requests, 2000));
    const struct msg *a = &G.m[before], *b = &G.m[before + 1];
    CU_ASSERT_EQUAL(a->type, T_NON);
    CU_ASSERT_EQUAL(b->type, T_NON);
    CU_ASSERT_EQUAL(a->code, CODE(0, 1));
    char want[96];
    snprintf(want, sizeof(want), "ferry/artifact/abcd%060d", 0);
    CU_ASSERT_STRING_EQUAL(a->path, want);
    CU_ASSERT_STRING_EQUAL(a->query, "n=" NODE);
    CU_ASSERT_TRUE(a->has_block2);
    CU_ASSERT_EQUAL(a->block2, 0x06);        /* NUM 0, SZX 6 */
    CU_ASSERT_EQUAL(b->block2, 3u << 4 | 5); /* NUM 3, SZX 5 */
    CU_ASSERT_EQUAL(a->tkl, 8);
    CU_ASSERT_NOT_EQUAL(memcmp(a->token, b->token, 8), 0);
    /* Answers in any order, one twice: each reaches the caller with the id
     * its request named. */
    uint8_t data[1024] = {1};
    uint8_t b2a[] = {0x0e}, b2b[] = {0x35};
    answer(b, CODE(2, 5), b2b, sizeof(b2b), data, 512);
    answer(a, CODE(2, 5), b2a, sizeof(b2a), data, 1024);
    answer(a, CODE(2, 5), b2a, sizeof(b2a), data, 1024);
    want_blocks = 3;
    CU_ASSERT_FATAL(run_until(got_blocks, 2000));
    CU_ASSERT_EQUAL(C.block_req[0], 18);
    CU_ASSERT_EQUAL(C.block[0].num, 3);
    CU_ASSERT_EQUAL(C.block[0].szx, 5);
    CU_ASSERT_EQUAL(C.block[0].len, 512);
    CU_ASSERT_EQUAL(C.block_req[1], 17);
    CU_ASSERT_TRUE(C.block[1].more);
    CU_ASSERT_EQUAL(C.block_req[2], 17);
    /* Nothing is retransmitted by libcoap. */
    size_t now = G.n;
    run_until(got_requests, 1500); /* want_requests is met already: returns at once */
    want_requests = now + 1;
    run_until(got_requests, 2500);
    CU_ASSERT_EQUAL(G.n, now);
    teardown();
}

static void reserved_szx_reaches_the_caller(void)
{
    setup();
    manifest_answered();
    size_t before = G.n;
    CU_ASSERT_EQUAL_FATAL(edge_coap_get_block(C.c, SHA, 1024, 1024, 5, NULL), FERRY_OK);
    want_requests = before + 1;
    CU_ASSERT_FATAL(run_until(got_requests, 2000));
    const struct msg *m = find_req("ferry/artifact/", before);
    uint8_t payload[1024] = {0};
    uint8_t b2[] = {0x1f}; /* NUM 1, M, SZX 7 */
    answer(m, CODE(2, 5), b2, sizeof(b2), payload, sizeof(payload));
    want_blocks = 1;
    CU_ASSERT_FATAL(run_until(got_blocks, 2000));
    CU_ASSERT_EQUAL(C.block_req[0], 5);
    CU_ASSERT_EQUAL(C.block[0].code, 205);
    CU_ASSERT_TRUE(C.block[0].has_block);
    CU_ASSERT_EQUAL(C.block[0].szx, 7);
    CU_ASSERT_EQUAL(C.block[0].num, 1);
    /* An answer with no Block2 at all says so. */
    answer(m, CODE(2, 5), NULL, 0, payload, 100);
    want_blocks = 2;
    CU_ASSERT_FATAL(run_until(got_blocks, 2000));
    CU_ASSERT_FALSE(C.block[1].has_block);
    CU_ASSERT_EQUAL(C.block[1].len, 100);
    teardown();
}

static void blocks_do_not_wait_behind_a_confirmable_request(void)
{
    setup();
    want_requests = 1; /* the manifest GET, left unanswered */
    CU_ASSERT_FATAL(run_until(got_requests, 2000));
    uint8_t rec[] = {0xa0};
    CU_ASSERT_EQUAL_FATAL(edge_coap_post_status(C.c, rec, sizeof(rec), NULL), FERRY_OK);
    size_t before = G.n;
    CU_ASSERT_EQUAL_FATAL(edge_coap_get_block(C.c, SHA, 0, 1024, 1, NULL), FERRY_OK);
    want_requests = before + 1;
    run_until(got_requests, 500);
    const struct msg *m = find_req("ferry/artifact/", before);
    /* And its answer is delivered while the confirmable ones still wait. */
    uint8_t data[1024] = {0};
    uint8_t b2[] = {0x0e};
    answer(m, CODE(2, 5), b2, sizeof(b2), data, sizeof(data));
    want_blocks = 1;
    CU_ASSERT(run_until(got_blocks, 500));
    CU_ASSERT_EQUAL(C.nstatus, 0);
    teardown();
}

static bool got_status(void)
{
    return C.nstatus > 0;
}

static void status_does_not_wait_behind_blocks(void)
{
    setup();
    manifest_answered();
    for (uint32_t i = 0; i < 8; i++)
        CU_ASSERT_EQUAL_FATAL(edge_coap_get_block(C.c, SHA, i * 1024, 1024, i + 1, NULL), FERRY_OK);
    size_t before = G.n;
    uint8_t rec[] = {0xa0};
    CU_ASSERT_EQUAL_FATAL(edge_coap_post_status(C.c, rec, sizeof(rec), NULL), FERRY_OK);
    want_requests = before + 9;
    run_until(got_requests, 500);
    const struct msg *m = find_req("ferry/status", before);
    CU_ASSERT_EQUAL(m->type, T_CON);
    CU_ASSERT_STRING_EQUAL(m->query, ""); /* the record names its node */
    answer(m, CODE(2, 4), NULL, 0, NULL, 0);
    CU_ASSERT(run_until(got_status, 500));
    CU_ASSERT_EQUAL(C.status_code, 204);
    teardown();
}

static bool got_block_request(void)
{
    for (size_t i = 0; i < G.n; i++)
        if (strncmp(G.m[i].path, "ferry/artifact/", 15) == 0)
            return true;
    return false;
}

static size_t first_from_new_port;
static bool got_request_from_new_port(void)
{
    for (size_t i = 1; i < G.n; i++)
        if (G.m[i].from_port != G.m[0].from_port) {
            first_from_new_port = i;
            return true;
        }
    return false;
}

/* A gateway that stops answering (a NAT gave the node a new port, and a
 * DTLS gateway drops what comes from it): after EDGE_COAP_SILENCE_ACKS
 * ACK_TIMEOUTs the client opens a new session from a new port, sends its
 * Observe registration again with the same token, reports the status out
 * as unanswered, and new requests get tokens of their own. Right after the
 * registration the caller hears that the new session is up and its block
 * request, lost with the old session, goes out on the new one at once,
 * under a fresh token and message id: the next message the gateway gets. */
static void silence_opens_a_new_session(void)
{
    setup();
    want_requests = 1; /* the manifest GET, never answered */
    CU_ASSERT_FATAL(run_until(got_requests, 2000));
    uint64_t t0 = G.m[0].at_ms;
    uint8_t rec[] = {0xa0};
    CU_ASSERT_EQUAL_FATAL(edge_coap_post_status(C.c, rec, sizeof(rec), NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_coap_get_block(C.c, SHA, 0, 1024, 41, NULL), FERRY_OK);
    C.resend_req = 42;
    CU_ASSERT_FATAL(run_until(got_block_request, 2000));
    const struct msg lost = *find_req("ferry/artifact/", 0);
    CU_ASSERT_EQUAL(C.new_sessions, 0);
    CU_ASSERT_FATAL(run_until(got_request_from_new_port, EDGE_COAP_SILENCE_ACKS * 1000 + 3000));
    /* The registration, then the block: nothing in between, whatever the
     * timing (both leave from one socket, the hook runs once the
     * registration is out). */
    want_requests = first_from_new_port + 2;
    CU_ASSERT(run_until(got_requests, 2000));
    CU_ASSERT_EQUAL(C.new_sessions, 1);
    CU_ASSERT_FATAL(G.n >= first_from_new_port + 2);
    const struct msg *resent = &G.m[first_from_new_port + 1];
    CU_ASSERT_EQUAL(resent->from_port, G.m[first_from_new_port].from_port);
    CU_ASSERT_STRING_EQUAL(resent->path, lost.path);
    CU_ASSERT_EQUAL(resent->type, T_NON);
    CU_ASSERT_EQUAL(resent->block2, lost.block2);
    CU_ASSERT_EQUAL(resent->tkl, lost.tkl);
    CU_ASSERT_NOT_EQUAL(memcmp(resent->token, lost.token, lost.tkl), 0);
    CU_ASSERT_NOT_EQUAL(resent->mid, lost.mid);
    /* Its answer reaches the caller under the id the hook gave it. */
    uint8_t data[1024] = {0};
    uint8_t b2[] = {0x0e};
    answer(resent, CODE(2, 5), b2, sizeof(b2), data, sizeof(data));
    want_blocks = 1;
    CU_ASSERT(run_until(got_blocks, 2000));
    CU_ASSERT_EQUAL(C.block_req[0], 42);
    const struct msg *again = &G.m[first_from_new_port];
    CU_ASSERT(again->at_ms - t0 >= EDGE_COAP_SILENCE_ACKS * 1000 - 50);
    CU_ASSERT_STRING_EQUAL(again->path, "ferry/manifest/" PRODUCT);
    CU_ASSERT_TRUE(again->observe);
    CU_ASSERT_EQUAL(again->tkl, G.m[0].tkl);
    CU_ASSERT_EQUAL(memcmp(again->token, G.m[0].token, again->tkl), 0);
    CU_ASSERT_EQUAL(C.nstatus, 1);
    CU_ASSERT_EQUAL(C.status_code, 0);
    /* The new session serves: a status posted now has a token of its own
     * (not the observation's) and its answer reaches the caller. (NSTART 1:
     * it would wait behind the unanswered registration.) */
    answer(again, CODE(4, 4), NULL, 0, NULL, 0);
    size_t before = G.n;
    C.nstatus = 0;
    CU_ASSERT_EQUAL_FATAL(edge_coap_post_status(C.c, rec, sizeof(rec), NULL), FERRY_OK);
    want_requests = before + 1;
    CU_ASSERT_FATAL(run_until(got_requests, 2000));
    const struct msg *m = find_req("ferry/status", before);
    CU_ASSERT_EQUAL(m->from_port, again->from_port);
    CU_ASSERT_FALSE(m->tkl == G.m[0].tkl && memcmp(m->token, G.m[0].token, m->tkl) == 0);
    answer(m, CODE(2, 4), NULL, 0, NULL, 0);
    CU_ASSERT(run_until(got_status, 1000));
    CU_ASSERT_EQUAL(C.status_code, 204);
    teardown();
}

const char *const ferry_suite_name = "edge_coap";
const struct ferry_test_case ferry_tests[] = {
    {"manifest request names the node", manifest_request_names_the_node},
    {"block requests are non-confirmable and name their request",
     block_requests_are_non_confirmable_and_name_their_request},
    {"reserved SZX reaches the caller", reserved_szx_reaches_the_caller},
    {"blocks do not wait behind a confirmable request",
     blocks_do_not_wait_behind_a_confirmable_request},
    {"status does not wait behind blocks", status_does_not_wait_behind_blocks},
    {"silence opens a new session", silence_opens_a_new_session},
    {NULL, NULL},
};
