/* ferry_mqtt against a real mosquitto that this test starts on free
 * loopback ports: one plain listener, one TLS listener whose certificate
 * names 127.0.0.1, and one whose certificate names another host. Every wait
 * is bounded (FX_WAIT_MS) so a broken client fails instead of hanging; nothing
 * here asserts on timing. */
#include "cunit_main.h"

#include "ferry_mqtt.h"
#include "mqtt_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COLLECT 16

enum { PORT_PLAIN, PORT_TLS, PORT_TLS_WRONG_NAME, PORT_TLS_CLIENT_CERT, PORT_COUNT };

static struct fx_broker broker = {.pid = -1};
static int broker_ports[PORT_COUNT];
static bool broker_tls; /* certificates were made and TLS listeners run */
static char url_plain[64];

/* ---- broker ----------------------------------------------------------- */

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", ferry_test_tmpdir(), name);
}

/* A CA, a second unrelated CA, and two broker certificates signed by the
 * first: one for IP 127.0.0.1 and one for DNS wrong.example. */
static bool make_certs(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; exec >certs.log 2>&1;"
             "K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';"
             "openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 -subj /CN=ferry-test-ca;"
             "openssl req -x509 $K -keyout other.key -out other-ca.crt -days 2"
             " -subj /CN=ferry-other-ca;"
             "openssl req $K -keyout srv.key -out srv.csr -subj /CN=ferry-test-broker;"
             "printf 'subjectAltName=IP:127.0.0.1\\n' > ok.ext;"
             "printf 'subjectAltName=DNS:wrong.example\\n' > wrong.ext;"
             "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
             " -extfile ok.ext -out srv.crt;"
             "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
             " -extfile wrong.ext -out wrong.crt;"
             "openssl req $K -keyout client.key -out client.csr -subj /CN=ferry-test-client;"
             "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
             " -out client.crt",
             ferry_test_tmpdir());
    return system(cmd) == 0;
}

static bool write_broker_config(FILE *f, const int *ports, int n, void *arg)
{
    (void)n;
    (void)arg;
    char acl[512];
    tmp_path(acl, sizeof(acl), "acl");
    FILE *a = fopen(acl, "w");
    if (!a)
        return false;
    /* Anonymous clients may use everything except ferry-denied/. */
    fprintf(a, "topic readwrite #\ntopic deny ferry-denied/#\n");
    fclose(a);

    const char *dir = ferry_test_tmpdir();
    fprintf(f,
            "per_listener_settings false\nallow_anonymous true\nuser root\n"
            "persistence false\nacl_file %s\nlistener %d 127.0.0.1\n",
            acl, ports[PORT_PLAIN]);
    if (broker_tls) {
        static const struct {
            int port;
            const char *cert, *extra;
        } tls[] = {
            {PORT_TLS, "srv.crt", ""},
            {PORT_TLS_WRONG_NAME, "wrong.crt", ""},
            {PORT_TLS_CLIENT_CERT, "srv.crt", "require_certificate true\n"},
        };
        for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
            fprintf(f,
                    "listener %d 127.0.0.1\ncafile %s/ca.crt\ncertfile %s/%s\nkeyfile "
                    "%s/srv.key\n%s",
                    ports[tls[i].port], dir, dir, tls[i].cert, dir, tls[i].extra);
    }
    return true;
}

/* The broker is started on first use and stopped at exit. */
static bool broker_up(void)
{
    static bool tried;
    if (broker.pid > 0)
        return true;
    if (tried)
        return false;
    tried = true;
    broker_tls = make_certs();
    if (!broker_tls)
        fprintf(stderr, "test_mqtt: could not make certificates, TLS listeners off\n");
    if (!fx_broker_start(&broker, "mosquitto", broker_tls ? PORT_COUNT : 1, write_broker_config,
                         NULL))
        return false;
    memcpy(broker_ports, broker.ports, sizeof(broker_ports));
    snprintf(url_plain, sizeof(url_plain), "mqtt://127.0.0.1:%d", broker_ports[PORT_PLAIN]);
    return true;
}

/* ---- client helpers --------------------------------------------------- */

struct tclient {
    char id[96];
    struct ferry_mqtt_opts o;
};

static void tclient_init(struct tclient *c, const char *name)
{
    snprintf(c->id, sizeof(c->id), "ferry-test-%d-%s", (int)getpid(), name);
    c->o = (struct ferry_mqtt_opts){.url = url_plain, .client_id = c->id, .clean_start = true};
}

static void test_topic(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "ferry-test/%d/%s", (int)getpid(), name);
}

static struct ferry_mqtt *client_new(const struct tclient *c)
{
    struct ferry_mqtt *m = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_mqtt_new(&c->o, &m, &d);
    if (err) {
        fprintf(stderr, "ferry_mqtt_new(%s): %s\n", c->id, ferry_diag_str(&d, err));
        return NULL;
    }
    return m;
}

static long elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_nsec - start->tv_nsec) / 1000000L;
}

/* The next event, waiting on the eventfd as an event loop would; NULL
 * after FX_WAIT_MS without one. */
static struct ferry_mqtt_ev *wait_ev(struct ferry_mqtt *m)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct ferry_mqtt_ev *ev;
        if (ferry_mqtt_next(m, &ev) == FERRY_OK)
            return ev;
        long left = FX_WAIT_MS - elapsed_ms(&start);
        if (left <= 0)
            return NULL;
        struct pollfd p = {.fd = ferry_mqtt_fd(m), .events = POLLIN};
        poll(&p, 1, (int)left);
    }
}

static const char *ev_name(enum ferry_mqtt_ev_type t)
{
    static const char *const names[] = {"CONNECTED",  "CONNECT_FAILED",  "LOST",
                                        "MESSAGE",    "PUBLISHED",       "PUBLISH_FAILED",
                                        "SUBSCRIBED", "SUBSCRIBE_FAILED"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* The next event if it has the wanted type, else NULL (and a note). */
static struct ferry_mqtt_ev *expect_ev(struct ferry_mqtt *m, enum ferry_mqtt_ev_type want)
{
    struct ferry_mqtt_ev *ev = wait_ev(m);
    if (!ev) {
        fprintf(stderr, "expected %s, got nothing in %d ms\n", ev_name(want), FX_WAIT_MS);
        return NULL;
    }
    if (ev->type != want) {
        fprintf(stderr, "expected %s, got %s (%s)\n", ev_name(want), ev_name(ev->type), ev->reason);
        ferry_mqtt_ev_free(ev);
        return NULL;
    }
    return ev;
}

static bool connect_ok(struct ferry_mqtt *m, bool *session_present)
{
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_mqtt_connect(m, &d);
    if (err) {
        fprintf(stderr, "connect: %s\n", ferry_diag_str(&d, err));
        return false;
    }
    struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_CONNECTED);
    if (!ev)
        return false;
    if (session_present)
        *session_present = ev->session_present;
    ferry_mqtt_ev_free(ev);
    return ferry_mqtt_is_connected(m);
}

static bool subscribe_ok(struct ferry_mqtt *m, const char *filter, int qos)
{
    int token = -1;
    if (ferry_mqtt_subscribe(m, filter, qos, &token) != FERRY_OK)
        return false;
    struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_SUBSCRIBED);
    bool ok = ev && ev->token == token && ev->qos == qos;
    ferry_mqtt_ev_free(ev);
    return ok;
}

/* For a client whose only traffic is this publish. */
static bool publish_ok(struct ferry_mqtt *m, const char *topic, const void *data, size_t len,
                       bool retain)
{
    int token = -1;
    if (ferry_mqtt_publish(m, topic, data, len, 1, retain, &token) != FERRY_OK)
        return false;
    struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_PUBLISHED);
    bool ok = ev && ev->token == token;
    ferry_mqtt_ev_free(ev);
    return ok;
}

/* Waits for n events in whatever order they come; false on a timeout. */
static bool collect(struct ferry_mqtt *m, struct ferry_mqtt_ev **evs, int n)
{
    for (int i = 0; i < n; i++) {
        evs[i] = wait_ev(m);
        if (!evs[i]) {
            fprintf(stderr, "collect: %d of %d events arrived\n", i, n);
            return false;
        }
    }
    return true;
}

static struct ferry_mqtt_ev *find_ev(struct ferry_mqtt_ev **evs, int n,
                                     enum ferry_mqtt_ev_type type, int token)
{
    for (int i = 0; i < n; i++) {
        if (evs[i] && evs[i]->type == type && (token < 0 || evs[i]->token == token))
            return evs[i];
    }
    return NULL;
}

static void free_evs(struct ferry_mqtt_ev **evs, int n)
{
    for (int i = 0; i < n; i++) {
        ferry_mqtt_ev_free(evs[i]);
        evs[i] = NULL;
    }
}

static bool message_is(const struct ferry_mqtt_ev *ev, const char *topic, const void *data,
                       size_t len)
{
    return ev && ev->type == FERRY_MQTT_EV_MESSAGE && strcmp(ev->topic, topic) == 0 &&
           ev->len == len && memcmp(ev->payload, data, len) == 0;
}

/* Sockets of this process connected to the plain listener. */
static int broker_sockets(int *fds, int max)
{
    int n = 0;
    for (int fd = 3; fd < 1024 && n < max; fd++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 && peer.sin_family == AF_INET &&
            ntohs(peer.sin_port) == broker_ports[PORT_PLAIN])
            fds[n++] = fd;
    }
    return n;
}

/* ---- a scripted broker ------------------------------------------------ */

/* mosquitto 2.0.11 grants subscriptions that its ACL file denies, and closes
 * a taken-over session without a DISCONNECT packet, so these answers come
 * from a scripted broker (mqtt_fixture.h). */

static struct ferry_mqtt *fake_client(const struct fx_fake *fb)
{
    char url[64];
    snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", fb->port);
    struct tclient c;
    tclient_init(&c, "scripted");
    c.o.url = url;
    return client_new(&c);
}

/* ---- tests ------------------------------------------------------------ */

static void mqtt_rejects_bad_options(void)
{
    static const char *const bad_urls[] = {
        "http://127.0.0.1:1883", "tcp://127.0.0.1:1883", "mqtt://",          "mqtt://host:0",
        "mqtt://host:99999",     "mqtt://host:12x",      "mqtt://host/path", "mqtt://u@host",
        "mqtt://:1883",          "mqtts://a b",
    };
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        struct ferry_mqtt_opts o = {.url = bad_urls[i], .client_id = "x", .clean_start = true};
        struct ferry_mqtt *m = (struct ferry_mqtt *)&o; /* must stay untouched */
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(ferry_mqtt_new(&o, &m, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT_PTR_EQUAL(m, (struct ferry_mqtt *)&o);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "url"));
    }
    const struct ferry_mqtt_opts bad_opts[] = {
        {.url = "mqtt://127.0.0.1", .client_id = NULL, .clean_start = true},
        {.url = "mqtt://127.0.0.1", .client_id = "", .clean_start = true},
        {.url = "mqtt://127.0.0.1", .client_id = "x", .clean_start = false, .session_expiry = 0},
        {.url = "mqtt://127.0.0.1", .client_id = "x", .clean_start = true, .keepalive = -1},
        {.url = "mqtt://127.0.0.1", .client_id = "x", .clean_start = true, .will_topic = "a/#"},
        {.url = "mqtt://127.0.0.1",
         .client_id = "x",
         .clean_start = true,
         .will_topic = "a",
         .will_len = 3},
        {.url = NULL, .client_id = "x", .clean_start = true},
    };
    for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
        struct ferry_mqtt *m = NULL;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(ferry_mqtt_new(&bad_opts[i], &m, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_NOT_EQUAL(d.msg[0], 0);
    }

    /* TLS files must match the scheme and exist; each error names the file
     * or the flag, rather than failing every reconnect later. */
    struct tls_case {
        struct ferry_mqtt_opts o;
        enum ferry_err want;
        const char *named;
    } tls_cases[] = {
        {{.url = "mqtts://localhost:8883", .client_id = "x", .clean_start = true},
         FERRY_E_INVALID_ARG,
         "--ca-file"},
        {{.url = "mqtts://localhost:8883",
          .client_id = "x",
          .clean_start = true,
          .ca_file = "/nonexistent/ca.crt"},
         FERRY_E_NOT_FOUND,
         "/nonexistent/ca.crt"},
        {{.url = "mqtts://localhost:8883",
          .client_id = "x",
          .clean_start = true,
          .ca_file = "/proc/version",
          .cert_file = "/proc/version"},
         FERRY_E_INVALID_ARG,
         "--key-file"},
        {{.url = "mqtt://localhost:1883",
          .client_id = "x",
          .clean_start = true,
          .ca_file = "/proc/version"},
         FERRY_E_INVALID_ARG,
         "mqtts://"},
    };
    for (size_t i = 0; i < sizeof(tls_cases) / sizeof(tls_cases[0]); i++) {
        struct ferry_mqtt *m = NULL;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(ferry_mqtt_new(&tls_cases[i].o, &m, &d), tls_cases[i].want);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, tls_cases[i].named));
    }
    ferry_mqtt_free(NULL);
}

static void mqtt_connect_event_arrives(void)
{
    CU_ASSERT_FATAL(broker_up());
    struct tclient c;
    tclient_init(&c, "connect");
    struct ferry_mqtt *m = client_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_FALSE(ferry_mqtt_is_connected(m));
    struct ferry_mqtt_ev *none = NULL;
    CU_ASSERT_EQUAL(ferry_mqtt_next(m, &none), FERRY_E_NOT_FOUND);

    bool present = true;
    CU_ASSERT_TRUE(connect_ok(m, &present));
    CU_ASSERT_FALSE(present);
    /* Drained: the fd is reset and no longer readable. */
    CU_ASSERT_EQUAL(ferry_mqtt_next(m, &none), FERRY_E_NOT_FOUND);
    struct pollfd p = {.fd = ferry_mqtt_fd(m), .events = POLLIN};
    CU_ASSERT_EQUAL(poll(&p, 1, 0), 0);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ferry_mqtt_connect(m, &d), FERRY_E_BUSY);
    ferry_mqtt_free(m);
}

static void mqtt_publish_and_subscribe_check_arguments(void)
{
    CU_ASSERT_FATAL(broker_up());
    struct tclient c;
    tclient_init(&c, "args");
    struct ferry_mqtt *m = client_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(ferry_mqtt_publish(m, "a/b", "x", 1, 1, false, NULL), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(ferry_mqtt_subscribe(m, "a/b", 1, NULL), FERRY_E_BUSY);
    CU_ASSERT_FATAL(connect_ok(m, NULL));

    static const char *const bad_topics[] = {"", "a/+", "a/#", "+"};
    for (size_t i = 0; i < sizeof(bad_topics) / sizeof(bad_topics[0]); i++)
        CU_ASSERT_EQUAL(ferry_mqtt_publish(m, bad_topics[i], "x", 1, 1, false, NULL),
                        FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_mqtt_publish(m, NULL, "x", 1, 1, false, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_mqtt_publish(m, "a/b", "x", 1, 3, false, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_mqtt_publish(m, "a/b", "x", 1, -1, false, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_mqtt_publish(m, "a/b", NULL, 5, 1, false, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_mqtt_publish(m, "a/b", "x", FERRY_MQTT_MAX_PAYLOAD + 1u, 1, false, NULL),
                    FERRY_E_TOO_LARGE);

    static const char *const bad_filters[] = {"", "a/#/b", "a+", "a/b#", "#/a", "a/+b"};
    for (size_t i = 0; i < sizeof(bad_filters) / sizeof(bad_filters[0]); i++)
        CU_ASSERT_EQUAL(ferry_mqtt_subscribe(m, bad_filters[i], 1, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_mqtt_subscribe(m, "a/b", 3, NULL), FERRY_E_INVALID_ARG);

    /* Nothing above reached the broker, so nothing was queued. */
    struct ferry_mqtt_ev *none = NULL;
    CU_ASSERT_EQUAL(ferry_mqtt_next(m, &none), FERRY_E_NOT_FOUND);
    ferry_mqtt_free(m);
}

/* One publish to a topic the client itself subscribes to: the PUBLISHED
 * and MESSAGE events may come in either order. */
static void round_trip_one(struct ferry_mqtt *m, const char *topic, const uint8_t *data, size_t len)
{
    int token = -1;
    CU_ASSERT_EQUAL_FATAL(ferry_mqtt_publish(m, topic, data, len, 1, false, &token), FERRY_OK);
    struct ferry_mqtt_ev *evs[2] = {0};
    CU_ASSERT_FATAL(collect(m, evs, 2));
    CU_ASSERT_PTR_NOT_NULL(find_ev(evs, 2, FERRY_MQTT_EV_PUBLISHED, token));
    struct ferry_mqtt_ev *msg = find_ev(evs, 2, FERRY_MQTT_EV_MESSAGE, -1);
    CU_ASSERT_TRUE(message_is(msg, topic, data, len));
    if (msg) {
        CU_ASSERT_EQUAL(msg->qos, 1);
        CU_ASSERT_FALSE(msg->retained);
    }
    free_evs(evs, 2);
}

static void mqtt_round_trip_keeps_exact_bytes(void)
{
    CU_ASSERT_FATAL(broker_up());
    struct tclient c;
    tclient_init(&c, "roundtrip");
    char topic[128];
    test_topic(topic, sizeof(topic), "roundtrip");
    struct ferry_mqtt *m = client_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_FATAL(connect_ok(m, NULL));
    CU_ASSERT_FATAL(subscribe_ok(m, topic, 1));

    round_trip_one(m, topic, (const uint8_t *)"hello", 5);

    size_t len = 200 * 1024;
    uint8_t *big = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (uint8_t)((i * 31u) % 251u); /* zero every 251 bytes */
    memset(big + 1000, 0, 4096);
    round_trip_one(m, topic, big, len);
    free(big);

    round_trip_one(m, topic, (const uint8_t *)"", 0);
    ferry_mqtt_free(m);
}

static void mqtt_retained_reaches_later_subscriber(void)
{
    CU_ASSERT_FATAL(broker_up());
    struct tclient pc, sc;
    tclient_init(&pc, "retain-pub");
    tclient_init(&sc, "retain-sub");
    char topic[128];
    test_topic(topic, sizeof(topic), "retained");
    struct ferry_mqtt *pub = client_new(&pc);
    struct ferry_mqtt *sub = client_new(&sc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    CU_ASSERT_FATAL(connect_ok(pub, NULL));
    CU_ASSERT_FATAL(publish_ok(pub, topic, "kept", 4, true));

    CU_ASSERT_FATAL(connect_ok(sub, NULL));
    int token = -1;
    CU_ASSERT_EQUAL_FATAL(ferry_mqtt_subscribe(sub, topic, 1, &token), FERRY_OK);
    struct ferry_mqtt_ev *evs[2] = {0};
    CU_ASSERT_FATAL(collect(sub, evs, 2));
    CU_ASSERT_PTR_NOT_NULL(find_ev(evs, 2, FERRY_MQTT_EV_SUBSCRIBED, token));
    struct ferry_mqtt_ev *msg = find_ev(evs, 2, FERRY_MQTT_EV_MESSAGE, -1);
    CU_ASSERT_TRUE(message_is(msg, topic, "kept", 4));
    CU_ASSERT_TRUE(msg && msg->retained);
    free_evs(evs, 2);

    CU_ASSERT_TRUE(publish_ok(pub, topic, NULL, 0, true)); /* clears the retained message */
    ferry_mqtt_free(sub);
    ferry_mqtt_free(pub);
}

/* Paho has no way to drop a link abruptly, and a forked child cannot use
 * Paho once the parent's Paho threads exist (they are not in the child).
 * Shutting down the client's socket behind Paho's back does the same as a
 * crash: no DISCONNECT reaches the broker, which then publishes the will. */
static void mqtt_will_published_on_abrupt_loss(void)
{
    CU_ASSERT_FATAL(broker_up());
    char will_topic[128];
    test_topic(will_topic, sizeof(will_topic), "will");
    struct tclient oc, wc, lc;
    tclient_init(&oc, "will-observer");
    tclient_init(&wc, "will-holder");
    tclient_init(&lc, "will-late");
    wc.o.will_topic = will_topic;
    wc.o.will_payload = "gone\0!";
    wc.o.will_len = 6;
    wc.o.will_retain = true;

    struct ferry_mqtt *obs = client_new(&oc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obs);
    CU_ASSERT_FATAL(connect_ok(obs, NULL));
    CU_ASSERT_FATAL(subscribe_ok(obs, will_topic, 1));

    int before[64], after[64];
    int nb = broker_sockets(before, 64);
    struct ferry_mqtt *holder = client_new(&wc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(holder);
    CU_ASSERT_FATAL(connect_ok(holder, NULL));
    int na = broker_sockets(after, 64);
    int fresh = -1, nfresh = 0;
    for (int i = 0; i < na; i++) {
        bool old = false;
        for (int j = 0; j < nb; j++)
            old = old || before[j] == after[i];
        if (!old) {
            fresh = after[i];
            nfresh++;
        }
    }
    CU_ASSERT_EQUAL_FATAL(nfresh, 1);
    CU_ASSERT_EQUAL(shutdown(fresh, SHUT_RDWR), 0);

    struct ferry_mqtt_ev *lost = expect_ev(holder, FERRY_MQTT_EV_LOST);
    CU_ASSERT_PTR_NOT_NULL(lost);
    CU_ASSERT_TRUE(lost && lost->reason[0]);
    ferry_mqtt_ev_free(lost);
    CU_ASSERT_FALSE(ferry_mqtt_is_connected(holder));

    struct ferry_mqtt_ev *will = expect_ev(obs, FERRY_MQTT_EV_MESSAGE);
    CU_ASSERT_TRUE(message_is(will, will_topic, "gone\0!", 6));
    ferry_mqtt_ev_free(will);

    /* Retained too, so a subscriber that comes later learns it. */
    struct ferry_mqtt *late = client_new(&lc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(late);
    CU_ASSERT_FATAL(connect_ok(late, NULL));
    CU_ASSERT_EQUAL_FATAL(ferry_mqtt_subscribe(late, will_topic, 1, NULL), FERRY_OK);
    struct ferry_mqtt_ev *evs[2] = {0};
    CU_ASSERT_FATAL(collect(late, evs, 2));
    struct ferry_mqtt_ev *kept = find_ev(evs, 2, FERRY_MQTT_EV_MESSAGE, -1);
    CU_ASSERT_TRUE(message_is(kept, will_topic, "gone\0!", 6));
    CU_ASSERT_TRUE(kept && kept->retained);
    free_evs(evs, 2);

    ferry_mqtt_free(late);
    ferry_mqtt_free(holder);
    ferry_mqtt_free(obs);
}

static void mqtt_clean_disconnect_suppresses_will(void)
{
    CU_ASSERT_FATAL(broker_up());
    char will_topic[128];
    test_topic(will_topic, sizeof(will_topic), "will-clean");
    struct tclient oc, wc;
    tclient_init(&oc, "will-clean-observer");
    tclient_init(&wc, "will-clean-holder");
    wc.o.will_topic = will_topic;
    wc.o.will_payload = "gone";
    wc.o.will_len = 4;

    struct ferry_mqtt *obs = client_new(&oc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obs);
    CU_ASSERT_FATAL(connect_ok(obs, NULL));
    CU_ASSERT_FATAL(subscribe_ok(obs, will_topic, 1));
    struct ferry_mqtt *holder = client_new(&wc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(holder);
    CU_ASSERT_FATAL(connect_ok(holder, NULL));
    ferry_mqtt_free(holder);

    /* A marker published after the free arrives after any will would, so
     * the first message seen must be the marker. */
    round_trip_one(obs, will_topic, (const uint8_t *)"marker", 6);
    ferry_mqtt_free(obs);
}

static void mqtt_connect_refused_reports_reason(void)
{
    int port = fx_free_port(); /* nothing listens there once the probe socket is closed */
    CU_ASSERT_FATAL(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", port);
    struct ferry_mqtt_opts o = {.url = url, .client_id = "ferry-test-refused", .clean_start = true};
    struct ferry_mqtt *m = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_mqtt_new(&o, &m, &d), FERRY_OK);
    for (int attempt = 0; attempt < 2; attempt++) {
        CU_ASSERT_EQUAL_FATAL(ferry_mqtt_connect(m, &d), FERRY_OK);
        struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_CONNECT_FAILED);
        CU_ASSERT_PTR_NOT_NULL(ev);
        CU_ASSERT_TRUE(ev && strlen(ev->reason) > 0);
        if (ev)
            fprintf(stderr, "connect refused: %s\n", ev->reason);
        ferry_mqtt_ev_free(ev);
        CU_ASSERT_FALSE(ferry_mqtt_is_connected(m));
    }
    ferry_mqtt_free(m);
}

static void mqtt_persistent_session_keeps_qos1_messages(void)
{
    CU_ASSERT_FATAL(broker_up());
    char topic[128];
    test_topic(topic, sizeof(topic), "persistent");
    struct tclient sc, pc;
    tclient_init(&sc, "persistent");
    tclient_init(&pc, "persistent-pub");
    sc.o.clean_start = false;
    sc.o.session_expiry = 300;

    struct ferry_mqtt *sub = client_new(&sc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    bool present = true;
    CU_ASSERT_FATAL(connect_ok(sub, &present));
    CU_ASSERT_FALSE(present);
    CU_ASSERT_FATAL(subscribe_ok(sub, topic, 1));
    ferry_mqtt_free(sub);

    struct ferry_mqtt *pub = client_new(&pc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    CU_ASSERT_FATAL(connect_ok(pub, NULL));
    CU_ASSERT_FATAL(publish_ok(pub, topic, "while-away", 10, false));
    ferry_mqtt_free(pub);

    sub = client_new(&sc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    present = false;
    CU_ASSERT_FATAL(connect_ok(sub, &present));
    CU_ASSERT_TRUE(present);
    struct ferry_mqtt_ev *msg = expect_ev(sub, FERRY_MQTT_EV_MESSAGE);
    CU_ASSERT_TRUE(message_is(msg, topic, "while-away", 10));
    ferry_mqtt_ev_free(msg);

    /* A clean start drops the session. */
    ferry_mqtt_free(sub);
    sc.o.clean_start = true;
    sub = client_new(&sc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    present = true;
    CU_ASSERT_TRUE(connect_ok(sub, &present));
    CU_ASSERT_FALSE(present);
    ferry_mqtt_free(sub);
}

#define BP_COUNT 12
#define BP_SIZE  ((size_t)FERRY_MQTT_MAX_PAYLOAD - 1024)

static void fill_bp_payload(uint8_t *buf, int index)
{
    for (size_t i = 0; i < BP_SIZE; i++)
        buf[i] = (uint8_t)(i * 7u + (unsigned)index * 13u);
    buf[0] = (uint8_t)index;
}

/* More than FERRY_MQTT_QUEUE_MAX_BYTES arrives while the loop is not
 * draining. Once drained, every message is there exactly once, in order,
 * and promptly: a message left with Paho would wait for the next packet
 * (a keepalive, 30 s here), past FX_WAIT_MS. */
static void mqtt_backlog_over_cap_arrives_once_in_order(void)
{
    CU_ASSERT_FATAL(broker_up());
    CU_ASSERT_FATAL((size_t)BP_COUNT * BP_SIZE > FERRY_MQTT_QUEUE_MAX_BYTES);
    char topic[128];
    test_topic(topic, sizeof(topic), "backpressure");
    struct tclient sc, pc;
    tclient_init(&sc, "bp-sub");
    tclient_init(&pc, "bp-pub");
    struct ferry_mqtt *sub = client_new(&sc);
    struct ferry_mqtt *pub = client_new(&pc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    CU_ASSERT_FATAL(connect_ok(sub, NULL));
    CU_ASSERT_FATAL(subscribe_ok(sub, topic, 1));
    CU_ASSERT_FATAL(connect_ok(pub, NULL));

    uint8_t *buf = malloc(BP_SIZE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    int tokens[BP_COUNT];
    for (int i = 0; i < BP_COUNT; i++) {
        fill_bp_payload(buf, i);
        CU_ASSERT_EQUAL_FATAL(ferry_mqtt_publish(pub, topic, buf, BP_SIZE, 1, false, &tokens[i]),
                              FERRY_OK);
    }
    for (int i = 0; i < BP_COUNT; i++) {
        struct ferry_mqtt_ev *ev = expect_ev(pub, FERRY_MQTT_EV_PUBLISHED);
        CU_ASSERT_TRUE(ev && ev->token == tokens[i]);
        ferry_mqtt_ev_free(ev);
    }

    for (int i = 0; i < BP_COUNT; i++) {
        struct ferry_mqtt_ev *ev = expect_ev(sub, FERRY_MQTT_EV_MESSAGE);
        CU_ASSERT_PTR_NOT_NULL(ev);
        if (!ev)
            break;
        fill_bp_payload(buf, i);
        CU_ASSERT_EQUAL(ev->len, BP_SIZE);
        CU_ASSERT_EQUAL(ev->len > 0 ? ev->payload[0] : 0xff, i);
        CU_ASSERT_TRUE(message_is(ev, topic, buf, BP_SIZE));
        ferry_mqtt_ev_free(ev);
    }
    struct ferry_mqtt_ev *extra = NULL;
    CU_ASSERT_EQUAL(ferry_mqtt_next(sub, &extra), FERRY_E_NOT_FOUND);
    free(buf);
    ferry_mqtt_free(pub);
    ferry_mqtt_free(sub);
}

/* A peer floods droppable topics while the loop is not draining: the
 * queue stops growing at its cap (what is dropped, the protocol retries),
 * and every message on a topic that may not be dropped still arrives, once,
 * in order. Before, everything was queued and only a warning said so. */
static void mqtt_flood_on_droppable_topics_is_bounded(void)
{
    CU_ASSERT_FATAL(broker_up());
    char base[96], drop[128], keep[128], filter[128];
    test_topic(base, sizeof(base), "bounded");
    snprintf(drop, sizeof(drop), "%s/chunks/gw-1", base);
    snprintf(keep, sizeof(keep), "%s/release/fw", base);
    snprintf(filter, sizeof(filter), "%s/chunks/+", base);
    const char *droppable[] = {filter, NULL};
    struct tclient sc, pc;
    tclient_init(&sc, "flood-sub");
    tclient_init(&pc, "flood-pub");
    sc.o.droppable = droppable;
    sc.o.queue_max = 256 * 1024;
    struct ferry_mqtt *sub = client_new(&sc);
    struct ferry_mqtt *pub = client_new(&pc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    CU_ASSERT_FATAL(connect_ok(sub, NULL));
    char all[160];
    snprintf(all, sizeof(all), "%s/#", base);
    CU_ASSERT_FATAL(subscribe_ok(sub, all, 1));
    CU_ASSERT_FATAL(connect_ok(pub, NULL));

    enum { N = 64, SIZE = 32 * 1024 };
    uint8_t *buf = calloc(1, SIZE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    int tokens[N];
    for (int i = 0; i < N; i++) {
        buf[0] = (uint8_t)i;
        CU_ASSERT_EQUAL_FATAL(
            ferry_mqtt_publish(pub, i % 4 ? drop : keep, buf, SIZE, 1, false, &tokens[i]),
            FERRY_OK);
    }
    for (int i = 0; i < N; i++) {
        struct ferry_mqtt_ev *ev = expect_ev(pub, FERRY_MQTT_EV_PUBLISHED);
        CU_ASSERT_PTR_NOT_NULL(ev);
        ferry_mqtt_ev_free(ev);
    }
    /* Everything has reached the subscriber by now: drain. */
    int kept = 0, chunks = 0, last_kept = -1;
    for (;;) {
        struct ferry_mqtt_ev *ev = NULL;
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        while (ferry_mqtt_next(sub, &ev) != FERRY_OK && elapsed_ms(&start) < 1000) {
            struct pollfd p = {.fd = ferry_mqtt_fd(sub), .events = POLLIN};
            poll(&p, 1, 100);
        }
        if (!ev)
            break;
        if (ev->type == FERRY_MQTT_EV_MESSAGE && strcmp(ev->topic, keep) == 0) {
            CU_ASSERT(ev->payload[0] > last_kept);
            last_kept = ev->payload[0];
            kept++;
        } else if (ev->type == FERRY_MQTT_EV_MESSAGE) {
            chunks++;
        }
        ferry_mqtt_ev_free(ev);
    }
    CU_ASSERT_EQUAL(kept, N / 4);
    /* The queue holds at most its cap of droppable messages at a time. */
    CU_ASSERT(chunks <= (int)(sc.o.queue_max / SIZE) + 1);
    CU_ASSERT(chunks >= 1);
    CU_ASSERT_EQUAL(ferry_mqtt_dropped(sub), (uint64_t)(N - N / 4 - chunks));
    free(buf);
    ferry_mqtt_free(pub);
    ferry_mqtt_free(sub);
}

static void topic_filters_match_as_mqtt_says(void)
{
    static const struct {
        const char *filter, *topic;
        bool match;
    } cases[] = {
        {"a/b", "a/b", true},      {"a/b", "a/c", false},
        {"a/+", "a/b", true},      {"a/+", "a/b/c", false},
        {"a/+", "a", false},       {"a/+", "a/", true},
        {"a/#", "a", true},        {"a/#", "a/b/c", true},
        {"#", "a/b", true},        {"+/+", "a/b", true},
        {"+", "a/b", false},       {"a/+/c", "a/x/c", true},
        {"a/+/c", "a/x/d", false}, {"ab", "a", false},
        {"a", "ab", false},        {"f/stream/req/+", "f/stream/req/gw-1", true},
        {"a/b/#", "a/bc", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = ferry_mqtt_topic_matches(cases[i].filter, cases[i].topic);
        if (got != cases[i].match)
            fprintf(stderr, "'%s' vs '%s': got %d\n", cases[i].filter, cases[i].topic, got);
        CU_ASSERT_EQUAL(got, cases[i].match);
    }
}

/* mosquitto_pub stands in for a peer that ignores our size cap. */
static bool external_publish(const char *topic, size_t len, const char *fill)
{
    char file[512], cmd[1024];
    tmp_path(file, sizeof(file), "external-payload");
    FILE *f = fopen(file, "wb");
    if (!f)
        return false;
    for (size_t i = 0; i < len; i++)
        fputc(fill[i % strlen(fill)], f);
    if (fclose(f) != 0)
        return false;
    snprintf(cmd, sizeof(cmd),
             "mosquitto_pub -V 5 -h 127.0.0.1 -p %d -q 1 -t '%s' -f '%s' >/dev/null 2>&1",
             broker_ports[PORT_PLAIN], topic, file);
    return system(cmd) == 0;
}

static void mqtt_oversized_message_is_dropped(void)
{
    CU_ASSERT_FATAL(broker_up());
    char topic[128];
    test_topic(topic, sizeof(topic), "oversized");
    struct tclient sc;
    tclient_init(&sc, "oversized");
    struct ferry_mqtt *sub = client_new(&sc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    CU_ASSERT_FATAL(connect_ok(sub, NULL));
    CU_ASSERT_FATAL(subscribe_ok(sub, topic, 1));
    CU_ASSERT_FATAL(external_publish(topic, (size_t)FERRY_MQTT_MAX_PAYLOAD + 1, "big"));
    CU_ASSERT_FATAL(external_publish(topic, FERRY_MQTT_MAX_PAYLOAD, "max"));
    struct ferry_mqtt_ev *ev = expect_ev(sub, FERRY_MQTT_EV_MESSAGE);
    CU_ASSERT_TRUE(ev && ev->len == FERRY_MQTT_MAX_PAYLOAD && memcmp(ev->payload, "max", 3) == 0);
    ferry_mqtt_ev_free(ev);
    ferry_mqtt_free(sub);
}

static void mqtt_acl_denied_publish_fails(void)
{
    CU_ASSERT_FATAL(broker_up());
    struct tclient c;
    tclient_init(&c, "denied");
    struct ferry_mqtt *m = client_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_FATAL(connect_ok(m, NULL));
    int token = -1;
    CU_ASSERT_EQUAL_FATAL(ferry_mqtt_publish(m, "ferry-denied/x", "x", 1, 1, false, &token),
                          FERRY_OK);
    struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_PUBLISH_FAILED);
    CU_ASSERT_TRUE(ev && ev->token == token && strstr(ev->reason, "0x87"));
    if (ev)
        fprintf(stderr, "publish denied: %s\n", ev->reason);
    ferry_mqtt_ev_free(ev);
    CU_ASSERT_TRUE(ferry_mqtt_is_connected(m));
    ferry_mqtt_free(m);
}

static void mqtt_connack_refusal_is_connect_failed(void)
{
    struct fx_fake fb = {0};
    CU_ASSERT_FATAL(fx_fake_start(&fb, FX_REFUSE_CONNECT));
    struct ferry_mqtt *m = fake_client(&fb);
    CU_ASSERT_PTR_NOT_NULL(m);
    struct ferry_diag d = {{0}};
    if (m && ferry_mqtt_connect(m, &d) == FERRY_OK) {
        struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_CONNECT_FAILED);
        CU_ASSERT_TRUE(ev && strstr(ev->reason, "0x87"));
        if (ev)
            fprintf(stderr, "connect refused: %s\n", ev->reason);
        ferry_mqtt_ev_free(ev);
        CU_ASSERT_FALSE(ferry_mqtt_is_connected(m));
    } else {
        CU_FAIL("connect did not start");
    }
    ferry_mqtt_free(m);
    fx_fake_stop(&fb);
}

static void mqtt_suback_refusal_is_subscribe_failed(void)
{
    struct fx_fake fb = {0};
    CU_ASSERT_FATAL(fx_fake_start(&fb, FX_DENY_SUBSCRIBE));
    struct ferry_mqtt *m = fake_client(&fb);
    CU_ASSERT_PTR_NOT_NULL(m);
    int token = -1;
    if (m && connect_ok(m, NULL) &&
        ferry_mqtt_subscribe(m, "ferry/v1/secret/#", 1, &token) == FERRY_OK) {
        struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_SUBSCRIBE_FAILED);
        CU_ASSERT_TRUE(ev && ev->token == token && strstr(ev->reason, "0x87"));
        if (ev)
            fprintf(stderr, "subscribe refused: %s\n", ev->reason);
        ferry_mqtt_ev_free(ev);
        CU_ASSERT_TRUE(ferry_mqtt_is_connected(m));
    } else {
        CU_FAIL("could not connect and subscribe");
    }
    ferry_mqtt_free(m);
    fx_fake_stop(&fb);
}

static void mqtt_broker_disconnect_is_lost_with_reason(void)
{
    struct fx_fake fb = {0};
    CU_ASSERT_FATAL(fx_fake_start(&fb, FX_KICK));
    struct ferry_mqtt *m = fake_client(&fb);
    CU_ASSERT_PTR_NOT_NULL(m);
    if (m && connect_ok(m, NULL)) {
        struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_LOST);
        CU_ASSERT_TRUE(ev && strstr(ev->reason, "0x8e"));
        if (ev)
            fprintf(stderr, "kicked: %s\n", ev->reason);
        ferry_mqtt_ev_free(ev);
        CU_ASSERT_FALSE(ferry_mqtt_is_connected(m));
    } else {
        CU_FAIL("could not connect");
    }
    ferry_mqtt_free(m);
    fx_fake_stop(&fb);
}

/* Freeing with an attempt in flight, before and after the CONNECT went
 * out, must not leave a callback pointing at freed memory (ASan watches). */
static void mqtt_free_while_connecting_is_clean(void)
{
    for (int wait_for_connect = 0; wait_for_connect < 2; wait_for_connect++) {
        struct fx_fake fb = {0};
        CU_ASSERT_FATAL(fx_fake_start(&fb, FX_SILENT));
        struct ferry_mqtt *m = fake_client(&fb);
        CU_ASSERT_PTR_NOT_NULL(m);
        struct ferry_diag d = {{0}};
        CU_ASSERT_TRUE(m && ferry_mqtt_connect(m, &d) == FERRY_OK);
        for (int i = 0; wait_for_connect && !fb.got_connect && i < FX_WAIT_MS / 10; i++)
            fx_sleep_ms(10);
        if (wait_for_connect)
            CU_ASSERT_TRUE(fb.got_connect);
        CU_ASSERT_FALSE(m && ferry_mqtt_is_connected(m));
        ferry_mqtt_free(m);
        fx_fake_stop(&fb);
    }
}

static void mqtt_session_takeover_is_lost_then_reconnects(void)
{
    CU_ASSERT_FATAL(broker_up());
    struct tclient c;
    tclient_init(&c, "takeover");
    struct ferry_mqtt *first = client_new(&c);
    struct ferry_mqtt *second = client_new(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    CU_ASSERT_PTR_NOT_NULL_FATAL(second);
    CU_ASSERT_FATAL(connect_ok(first, NULL));
    CU_ASSERT_FATAL(connect_ok(second, NULL));

    /* mosquitto 2.0.11 just closes the old link, so any reason will do. */
    struct ferry_mqtt_ev *ev = expect_ev(first, FERRY_MQTT_EV_LOST);
    CU_ASSERT_TRUE(ev && ev->reason[0]);
    if (ev)
        fprintf(stderr, "taken over: %s\n", ev->reason);
    ferry_mqtt_ev_free(ev);
    CU_ASSERT_FALSE(ferry_mqtt_is_connected(first));
    CU_ASSERT_EQUAL(ferry_mqtt_publish(first, "a/b", "x", 1, 1, false, NULL), FERRY_E_BUSY);

    ferry_mqtt_free(second);
    CU_ASSERT_TRUE(connect_ok(first, NULL));
    ferry_mqtt_free(first);
}

/* cert may be NULL; "client" means client.crt with client.key. */
static struct ferry_mqtt *tls_client(const char *name, int port, const char *ca, const char *cert)
{
    char url[64], ca_path[512], cert_path[512], key_path[512];
    snprintf(url, sizeof(url), "mqtts://127.0.0.1:%d", port);
    snprintf(ca_path, sizeof(ca_path), "%s/%s", ferry_test_tmpdir(), ca);
    snprintf(cert_path, sizeof(cert_path), "%s/%s.crt", ferry_test_tmpdir(), cert ? cert : "");
    snprintf(key_path, sizeof(key_path), "%s/%s.key", ferry_test_tmpdir(), cert ? cert : "");
    struct tclient c;
    tclient_init(&c, name);
    c.o.url = url;
    c.o.ca_file = ca_path;
    c.o.cert_file = cert ? cert_path : NULL;
    c.o.key_file = cert ? key_path : NULL;
    return client_new(&c);
}

static void expect_connect_failed(struct ferry_mqtt *m, const char *what)
{
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_mqtt_connect(m, &d), FERRY_OK);
    struct ferry_mqtt_ev *ev = expect_ev(m, FERRY_MQTT_EV_CONNECT_FAILED);
    CU_ASSERT_TRUE(ev && ev->reason[0]);
    if (ev)
        fprintf(stderr, "%s: %s\n", what, ev->reason);
    ferry_mqtt_ev_free(ev);
    CU_ASSERT_FALSE(ferry_mqtt_is_connected(m));
}

static void mqtt_tls_verifies_broker_certificate_and_name(void)
{
    CU_ASSERT_FATAL(broker_up());
    CU_ASSERT_FATAL(broker_tls);

    struct ferry_mqtt *good = tls_client("tls-good", broker_ports[PORT_TLS], "ca.crt", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(good);
    CU_ASSERT_TRUE(connect_ok(good, NULL));
    char topic[128];
    test_topic(topic, sizeof(topic), "tls");
    CU_ASSERT_TRUE(subscribe_ok(good, topic, 1));
    round_trip_one(good, topic, (const uint8_t *)"over tls", 8);
    ferry_mqtt_free(good);

    struct ferry_mqtt *m =
        tls_client("tls-unknown-ca", broker_ports[PORT_TLS], "other-ca.crt", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    expect_connect_failed(m, "unknown CA");
    ferry_mqtt_free(m);

    /* Signed by the right CA for another host: only the name check fails. */
    m = tls_client("tls-wrong-name", broker_ports[PORT_TLS_WRONG_NAME], "ca.crt", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    expect_connect_failed(m, "wrong name");
    ferry_mqtt_free(m);
}

static void mqtt_tls_client_certificate(void)
{
    CU_ASSERT_FATAL(broker_up());
    CU_ASSERT_FATAL(broker_tls);
    struct ferry_mqtt *m =
        tls_client("tls-client-cert", broker_ports[PORT_TLS_CLIENT_CERT], "ca.crt", "client");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_TRUE(connect_ok(m, NULL));
    ferry_mqtt_free(m);

    m = tls_client("tls-no-client-cert", broker_ports[PORT_TLS_CLIENT_CERT], "ca.crt", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    expect_connect_failed(m, "no client certificate");
    ferry_mqtt_free(m);
}

const char *const ferry_suite_name = "mqtt";
const struct ferry_test_case ferry_tests[] = {
    {"mqtt_rejects_bad_options", mqtt_rejects_bad_options},
    {"mqtt_connect_event_arrives", mqtt_connect_event_arrives},
    {"mqtt_publish_and_subscribe_check_arguments", mqtt_publish_and_subscribe_check_arguments},
    {"mqtt_round_trip_keeps_exact_bytes", mqtt_round_trip_keeps_exact_bytes},
    {"mqtt_retained_reaches_later_subscriber", mqtt_retained_reaches_later_subscriber},
    {"mqtt_will_published_on_abrupt_loss", mqtt_will_published_on_abrupt_loss},
    {"mqtt_clean_disconnect_suppresses_will", mqtt_clean_disconnect_suppresses_will},
    {"mqtt_connect_refused_reports_reason", mqtt_connect_refused_reports_reason},
    {"mqtt_persistent_session_keeps_qos1_messages", mqtt_persistent_session_keeps_qos1_messages},
    {"mqtt_backlog_over_cap_arrives_once_in_order", mqtt_backlog_over_cap_arrives_once_in_order},
    {"mqtt_flood_on_droppable_topics_is_bounded", mqtt_flood_on_droppable_topics_is_bounded},
    {"topic_filters_match_as_mqtt_says", topic_filters_match_as_mqtt_says},
    {"mqtt_oversized_message_is_dropped", mqtt_oversized_message_is_dropped},
    {"mqtt_acl_denied_publish_fails", mqtt_acl_denied_publish_fails},
    {"mqtt_connack_refusal_is_connect_failed", mqtt_connack_refusal_is_connect_failed},
    {"mqtt_suback_refusal_is_subscribe_failed", mqtt_suback_refusal_is_subscribe_failed},
    {"mqtt_broker_disconnect_is_lost_with_reason", mqtt_broker_disconnect_is_lost_with_reason},
    {"mqtt_free_while_connecting_is_clean", mqtt_free_while_connecting_is_clean},
    {"mqtt_session_takeover_is_lost_then_reconnects",
     mqtt_session_takeover_is_lost_then_reconnects},
    {"mqtt_tls_verifies_broker_certificate_and_name",
     mqtt_tls_verifies_broker_certificate_and_name},
    {"mqtt_tls_client_certificate", mqtt_tls_client_certificate},
    {NULL, NULL},
};
