/* The MQTT session keeper (ferry_keeper.h): its settings and password file,
 * its fitness rule, and its policy against real mosquitto brokers (several
 * URLs and failover, a password file, a session the broker lost) and a
 * scripted broker for what mosquitto never does (a refused subscription, a
 * CONNACK that lacks a feature, a DISCONNECT over a shared subscription).
 * Every wait is bounded; nothing asserts on timing beyond "within WAIT". */
#include "cunit_main.h"

#include "ferry_keeper.h"
#include "mqtt_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT FX_WAIT_MS

/* ---- a program on the keeper ---------------------------------------------- */

struct prog {
    struct ferry_loop *loop;
    struct ferry_keeper *k;
    struct ferry_keeper_conf conf;
    char *urls[4];
    int ups, downs;
    bool last_session_present;
    char last_url[128];
    int refused;
    int refused_code;
    char refused_filter[128];
    int got_a, got_b;
    char last_payload[64];
};

static void p_up(void *arg, const struct ferry_keeper_link *l)
{
    struct prog *p = arg;
    p->ups++;
    p->last_session_present = l->session_present;
    snprintf(p->last_url, sizeof(p->last_url), "%s", l->url);
}

static void p_down(void *arg, const char *reason)
{
    struct prog *p = arg;
    (void)reason;
    p->downs++;
}

static void p_refused(void *arg, const char *filter, int code, const char *reason)
{
    struct prog *p = arg;
    (void)reason;
    p->refused++;
    p->refused_code = code;
    snprintf(p->refused_filter, sizeof(p->refused_filter), "%s", filter);
}

static void p_msg_a(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct prog *p = arg;
    p->got_a++;
    snprintf(p->last_payload, sizeof(p->last_payload), "%.*s", (int)ev->len,
             (const char *)ev->payload);
}

static void p_msg_b(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct prog *p = arg;
    (void)ev;
    p->got_b++;
}

/* A keeper over the given URLs (NULL-terminated), named name. */
static bool prog_new_as(struct prog *p, const char *name, const char *const *urls, bool persistent,
                        const struct ferry_keeper_needs *needs, const char *user,
                        const char *pwfile)
{
    memset(p, 0, sizeof(*p));
    size_t n = 0;
    for (; urls[n] && n < 4; n++)
        p->urls[n] = (char *)(uintptr_t)urls[n];
    p->conf.brokers.v = p->urls;
    p->conf.brokers.n = n;
    p->conf.username = (char *)(uintptr_t)user;
    p->conf.password_file = (char *)(uintptr_t)pwfile;
    struct ferry_diag d = {{0}};
    if (ferry_loop_new(&p->loop, &d) != FERRY_OK)
        return false;
    char id[96];
    snprintf(id, sizeof(id), "ferry-keeper-test-%d-%s", (int)getpid(), name);
    struct ferry_keeper_opts o = {
        .conf = &p->conf,
        .client_id = id,
        .name = name,
        .persistent = persistent,
        .session_expiry = persistent ? 3600 : 0,
        .backoff_min_ms = 100,
        .backoff_max_ms = 400,
    };
    if (needs)
        o.needs = *needs;
    struct ferry_keeper_events ev = {
        .arg = p, .on_up = p_up, .on_down = p_down, .on_refused = p_refused};
    enum ferry_err err = ferry_keeper_new(p->loop, &o, &ev, &p->k, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "ferry_keeper_new: %s\n", ferry_diag_str(&d, err));
    return err == FERRY_OK;
}

static bool prog_new(struct prog *p, const char *name, const char *const *urls, bool persistent,
                     const struct ferry_keeper_needs *needs)
{
    return prog_new_as(p, name, urls, persistent, needs, NULL, NULL);
}

static void prog_free(struct prog *p)
{
    ferry_keeper_free(p->k);
    ferry_loop_free(p->loop);
}

static bool sub(struct prog *p, const char *filter, ferry_keeper_msg_cb cb)
{
    struct ferry_keeper_sub s = {filter, 1, cb, p};
    return ferry_keeper_subscribe(p->k, &s) == FERRY_OK;
}

struct waiter {
    struct ferry_loop *loop;
    bool (*cond)(const struct prog *p);
    const struct prog *p;
    uint64_t timer;
};

static void poll_cond(void *arg)
{
    struct waiter *w = arg;
    w->timer = 0;
    if (w->cond(w->p))
        ferry_loop_stop(w->loop);
    else
        w->timer = ferry_loop_timer(w->loop, 20, poll_cond, w);
}

static void stop_loop(void *arg)
{
    ferry_loop_stop(arg);
}

/* Runs p's loop until cond holds or ms pass; whether it held. */
static bool run_until(struct prog *p, bool (*cond)(const struct prog *p), int ms)
{
    struct waiter w = {p->loop, cond, p, 0};
    poll_cond(&w);
    if (cond(p)) {
        ferry_loop_cancel(p->loop, w.timer);
        return true;
    }
    uint64_t t = ferry_loop_timer(p->loop, (uint64_t)ms, stop_loop, p->loop);
    ferry_loop_run(p->loop);
    ferry_loop_cancel(p->loop, t);
    ferry_loop_cancel(p->loop, w.timer);
    return cond(p);
}

static int target_ups;
static bool ups_reached(const struct prog *p)
{
    return p->ups >= target_ups;
}
static bool is_down(const struct prog *p)
{
    return !ferry_keeper_is_up(p->k);
}
static int target_msgs;
static bool got_a_reached(const struct prog *p)
{
    return p->got_a >= target_msgs;
}

static bool wait_ups(struct prog *p, int n)
{
    target_ups = n;
    return run_until(p, ups_reached, WAIT);
}

static bool external_pub(int port, const char *topic, const char *msg)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "mosquitto_pub -h 127.0.0.1 -p %d -q 1 -t '%s' -m '%s'", port, topic,
             msg);
    return system(cmd) == 0;
}

static void url_of(char *buf, size_t n, int port)
{
    snprintf(buf, n, "mqtt://127.0.0.1:%d", port);
}

/* ---- settings -------------------------------------------------------------- */

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_EQUAL(chmod(path, mode), 0);
}

static enum ferry_err check(const char *brokers, const char *user, const char *pwfile,
                            const char *ca, struct ferry_diag *d)
{
    char *v[1] = {(char *)(uintptr_t)brokers};
    struct ferry_keeper_conf c = {.brokers = {v, 1},
                                  .username = (char *)(uintptr_t)user,
                                  .password_file = (char *)(uintptr_t)pwfile,
                                  .ca_file = (char *)(uintptr_t)ca};
    memset(d, 0, sizeof(*d));
    return ferry_keeper_conf_check(&c, d);
}

static void keeper_settings_name_what_is_wrong(void)
{
    char pw[512], open_pw[512], empty[512];
    snprintf(pw, sizeof(pw), "%s/pw", ferry_test_tmpdir());
    snprintf(open_pw, sizeof(open_pw), "%s/pw-open", ferry_test_tmpdir());
    snprintf(empty, sizeof(empty), "%s/pw-empty", ferry_test_tmpdir());
    write_file(pw, "s3cret\n", 0600);
    write_file(open_pw, "s3cret\n", 0644);
    write_file(empty, "\n", 0600);
    struct ferry_diag d;
    CU_ASSERT_EQUAL(check("mqtt://a:1883", NULL, NULL, NULL, &d), FERRY_OK);
    CU_ASSERT_EQUAL(check("mqtt://a:1883, mqtt://b:1884,mqtt://c", "u", pw, NULL, &d), FERRY_OK);
    CU_ASSERT_EQUAL(check("mqtt://a,mqtts://b", NULL, NULL, "ca.crt", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "same scheme"));
    CU_ASSERT_EQUAL(check("mqtt://a,,mqtt://b", NULL, NULL, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "empty"));
    CU_ASSERT_EQUAL(check("mqtt://user:pass@a", NULL, NULL, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--mqtt-password-file"));
    CU_ASSERT_PTR_NULL(strstr(d.msg, "pass@")); /* the password is not echoed */
    CU_ASSERT_EQUAL(check("mqtt://a", NULL, pw, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--mqtt-username"));
    CU_ASSERT_EQUAL(check("mqtt://a", "u", open_pw, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--mqtt-password-file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "every user"));
    CU_ASSERT_EQUAL(check("mqtt://a", "u", empty, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(check("mqtt://a", "u", "/nonexistent/pw", NULL, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_EQUAL(check("mqtts://a", NULL, NULL, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--ca-file"));
    char many[1024] = "";
    for (int i = 0; i <= FERRY_KEEPER_MAX_BROKERS; i++)
        strcat(many, i ? ",mqtt://h" : "mqtt://h");
    CU_ASSERT_EQUAL(check(many, NULL, NULL, NULL, &d), FERRY_E_INVALID_ARG);
}

static void keeper_password_is_the_first_line(void)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"s3cret\n", "s3cret"},
        {"s3cret", "s3cret"},
        {"tok.en.sig\r\nsecond line\n", "tok.en.sig"},
        {"with space \n", "with space "},
    };
    char path[512];
    snprintf(path, sizeof(path), "%s/pw-lines", ferry_test_tmpdir());
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, cases[i].text, 0640);
        uint8_t *pw = NULL;
        size_t len = 0;
        CU_ASSERT_EQUAL_FATAL(ferry_keeper_read_password(path, &pw, &len, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(len, strlen(cases[i].want));
        CU_ASSERT_EQUAL(memcmp(pw, cases[i].want, len), 0);
        ferry_keeper_wipe(pw, len);
    }
    /* A token longer than MQTT can carry is refused, not cut. */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (unsigned i = 0; i < FERRY_KEEPER_PASSWORD_MAX + 1; i++)
        fputc('x', f);
    fclose(f);
    uint8_t *pw = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(ferry_keeper_read_password(path, &pw, &len, NULL), FERRY_E_TOO_LARGE);
}

static void keeper_fitness_names_what_a_broker_lacks(void)
{
    const struct ferry_keeper_needs needs = {
        .qos1 = true, .retain = true, .wildcards = true, .max_packet = 70000};
    const struct ferry_mqtt_caps all = {
        .max_qos = 2, .retain = true, .wildcards = true, .shared = true, .max_packet = 0};
    char why[256];
    CU_ASSERT_TRUE(ferry_keeper_fit(&needs, &all, why, sizeof(why)));
    struct ferry_mqtt_caps c = all;
    c.max_qos = 0;
    CU_ASSERT_FALSE(ferry_keeper_fit(&needs, &c, why, sizeof(why)));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "QoS"));
    c = all;
    c.retain = false;
    CU_ASSERT_FALSE(ferry_keeper_fit(&needs, &c, why, sizeof(why)));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "Retain Available"));
    c = all;
    c.wildcards = false;
    CU_ASSERT_FALSE(ferry_keeper_fit(&needs, &c, why, sizeof(why)));
    c = all;
    c.max_packet = 65536;
    CU_ASSERT_FALSE(ferry_keeper_fit(&needs, &c, why, sizeof(why)));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "70000"));
    c.max_packet = 70000;
    CU_ASSERT_TRUE(ferry_keeper_fit(&needs, &c, why, sizeof(why)));
    /* No shared subscriptions is not unfit: the program falls back. */
    c = all;
    c.shared = false;
    CU_ASSERT_TRUE(ferry_keeper_fit(&needs, &c, why, sizeof(why)));
    const struct ferry_keeper_needs none = {0};
    c.max_qos = 0;
    c.retain = c.wildcards = false;
    c.max_packet = 10;
    CU_ASSERT_TRUE(ferry_keeper_fit(&none, &c, why, sizeof(why)));
}

static void keeper_shared_filters_match_on_the_topic_part(void)
{
    CU_ASSERT_TRUE(ferry_keeper_filter_matches("$share/g/a/+/c", "a/b/c"));
    CU_ASSERT_TRUE(ferry_keeper_filter_matches("a/#", "a/b/c"));
    CU_ASSERT_FALSE(ferry_keeper_filter_matches("$share/g/a/+", "a/b/c"));
    CU_ASSERT_FALSE(ferry_keeper_filter_matches("$share/g", "g"));
    CU_ASSERT_FALSE(ferry_keeper_filter_matches("$share/g/x/#", "a/b"));
}

/* ---- against mosquitto --------------------------------------------------------- */

static void keeper_dispatches_each_message_to_its_subscription(void)
{
    struct fx_broker b;
    CU_ASSERT_FATAL(fx_broker_start(&b, "dispatch", 1, fx_plain_conf, NULL));
    char url[64], ta[96], tb[96];
    url_of(url, sizeof(url), b.ports[0]);
    snprintf(ta, sizeof(ta), "k%d/a/+", (int)getpid());
    snprintf(tb, sizeof(tb), "k%d/b/#", (int)getpid());
    const char *urls[] = {url, NULL};
    struct prog p;
    CU_ASSERT_FATAL(prog_new(&p, "dispatch", urls, false, NULL));
    CU_ASSERT_FATAL(sub(&p, ta, p_msg_a));
    CU_ASSERT_FATAL(sub(&p, tb, p_msg_b));
    ferry_keeper_start(p.k);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    CU_ASSERT_STRING_EQUAL(p.last_url, url);
    CU_ASSERT_STRING_EQUAL(ferry_keeper_url(p.k), url);
    char t[96];
    snprintf(t, sizeof(t), "k%d/a/1", (int)getpid());
    CU_ASSERT_TRUE(external_pub(b.ports[0], t, "one"));
    snprintf(t, sizeof(t), "k%d/b/x/y", (int)getpid());
    CU_ASSERT_TRUE(external_pub(b.ports[0], t, "two"));
    target_msgs = 1;
    CU_ASSERT_TRUE(run_until(&p, got_a_reached, WAIT));
    fx_sleep_ms(200);
    run_until(&p, got_a_reached, 100);
    CU_ASSERT_EQUAL(p.got_a, 1);
    CU_ASSERT_EQUAL(p.got_b, 1);
    CU_ASSERT_STRING_EQUAL(p.last_payload, "one");
    /* Unsubscribed: b's messages no longer arrive, a's still do. */
    ferry_keeper_unsubscribe(p.k, tb);
    fx_sleep_ms(200);
    run_until(&p, got_a_reached, 200);
    CU_ASSERT_TRUE(external_pub(b.ports[0], t, "three"));
    snprintf(t, sizeof(t), "k%d/a/2", (int)getpid());
    CU_ASSERT_TRUE(external_pub(b.ports[0], t, "four"));
    target_msgs = 2;
    CU_ASSERT_TRUE(run_until(&p, got_a_reached, WAIT));
    CU_ASSERT_EQUAL(p.got_b, 1);
    prog_free(&p);
    fx_broker_stop(&b);
}

/* Brokers in turn: a dead one is skipped, a lost one makes the next one
 * take over, and every subscription is made there again. */
static void keeper_fails_over_to_the_next_broker(void)
{
    struct fx_broker a, b;
    CU_ASSERT_FATAL(fx_broker_start(&a, "turn-a", 1, fx_plain_conf, NULL));
    CU_ASSERT_FATAL(fx_broker_start(&b, "turn-b", 1, fx_plain_conf, NULL));
    char dead[64], ua[64], ub[64], topic[96], filter[96];
    url_of(dead, sizeof(dead), fx_free_port()); /* nothing listens there */
    url_of(ua, sizeof(ua), a.ports[0]);
    url_of(ub, sizeof(ub), b.ports[0]);
    snprintf(filter, sizeof(filter), "k%d/turn/+", (int)getpid());
    snprintf(topic, sizeof(topic), "k%d/turn/x", (int)getpid());
    const char *urls[] = {dead, ua, ub, NULL};
    struct prog p;
    CU_ASSERT_FATAL(prog_new(&p, "turn", urls, false, NULL));
    CU_ASSERT_FATAL(sub(&p, filter, p_msg_a));
    ferry_keeper_start(p.k);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    CU_ASSERT_STRING_EQUAL(p.last_url, ua);

    fx_broker_stop(&a);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 2));
    CU_ASSERT_EQUAL(p.downs, 1);
    CU_ASSERT_STRING_EQUAL(p.last_url, ub);
    CU_ASSERT_TRUE(external_pub(b.ports[0], topic, "after failover"));
    target_msgs = 1;
    CU_ASSERT_TRUE(run_until(&p, got_a_reached, WAIT));
    CU_ASSERT_STRING_EQUAL(p.last_payload, "after failover");

    /* And back: with b gone and a back, a takes over again. */
    CU_ASSERT_FATAL(fx_broker_restart(&a));
    fx_broker_stop(&b);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 3));
    CU_ASSERT_STRING_EQUAL(p.last_url, ua);
    /* With none reachable it stays down and keeps trying, no spin: the
     * round back-off (100 to 400 ms here) paces the attempts. */
    fx_broker_stop(&a);
    target_ups = 4;
    CU_ASSERT_FALSE(run_until(&p, ups_reached, 1500));
    CU_ASSERT_TRUE(is_down(&p));
    prog_free(&p);
}

static bool write_passwd(const char *user, const char *pass)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "mosquitto_passwd -c -b '%s/passwd' '%s' '%s' >/dev/null 2>&1",
             ferry_test_tmpdir(), user, pass);
    return system(cmd) == 0;
}

/* The password is read from its file at every attempt: a wrong one keeps
 * the program out, the rotated right one lets it in without a restart. */
static void keeper_authenticates_with_a_password_file(void)
{
    CU_ASSERT_FATAL(write_passwd("gw-1", "right-password"));
    char conf[1024], pwfile[512], url[64], filter[96], topic[96];
    snprintf(conf, sizeof(conf), "allow_anonymous false\npassword_file %s/passwd\n",
             ferry_test_tmpdir());
    struct fx_broker b;
    CU_ASSERT_FATAL(fx_broker_start(&b, "auth", 1, fx_plain_conf, conf));
    url_of(url, sizeof(url), b.ports[0]);
    snprintf(pwfile, sizeof(pwfile), "%s/gw-1.password", ferry_test_tmpdir());
    write_file(pwfile, "wrong-password\n", 0600);
    snprintf(filter, sizeof(filter), "k%d/auth/+", (int)getpid());
    snprintf(topic, sizeof(topic), "k%d/auth/x", (int)getpid());

    const char *urls[] = {url, NULL};
    struct prog p;
    CU_ASSERT_FATAL(prog_new_as(&p, "auth", urls, false, NULL, "gw-1", pwfile));
    CU_ASSERT_FATAL(sub(&p, filter, p_msg_a));
    ferry_keeper_start(p.k);
    target_ups = 1;
    CU_ASSERT_FALSE(run_until(&p, ups_reached, 1500));

    write_file(pwfile, "right-password\n", 0600);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "mosquitto_pub -h 127.0.0.1 -p %d -u gw-1 -P right-password -q 1 -t '%s' -m ok",
             b.ports[0], topic);
    CU_ASSERT_EQUAL(system(cmd), 0);
    target_msgs = 1;
    CU_ASSERT_TRUE(run_until(&p, got_a_reached, WAIT));
    prog_free(&p);
    fx_broker_stop(&b);
}

/* A broker restarted without persistence lost the session: the keeper says
 * so and subscribes again, so messages flow as before. */
static void keeper_subscribes_again_when_the_broker_lost_the_session(void)
{
    struct fx_broker b;
    CU_ASSERT_FATAL(fx_broker_start(&b, "session", 1, fx_plain_conf, NULL));
    char url[64], filter[96], topic[96];
    url_of(url, sizeof(url), b.ports[0]);
    snprintf(filter, sizeof(filter), "k%d/session/+", (int)getpid());
    snprintf(topic, sizeof(topic), "k%d/session/x", (int)getpid());
    const char *urls[] = {url, NULL};
    struct prog p;
    CU_ASSERT_FATAL(prog_new(&p, "session", urls, true, NULL));
    CU_ASSERT_FATAL(sub(&p, filter, p_msg_a));
    ferry_keeper_start(p.k);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    CU_ASSERT_FALSE(p.last_session_present);
    CU_ASSERT_FATAL(fx_broker_restart(&b));
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 2));
    CU_ASSERT_FALSE(p.last_session_present); /* lost with the broker's memory */
    CU_ASSERT_EQUAL(p.downs, 1);
    CU_ASSERT_TRUE(external_pub(b.ports[0], topic, "still heard"));
    target_msgs = 1;
    CU_ASSERT_TRUE(run_until(&p, got_a_reached, WAIT));
    prog_free(&p);
    fx_broker_stop(&b);
}

/* ---- against a scripted broker -------------------------------------------------- */

static int target_subscribes;
static const struct fx_fake *watched;
static bool subscribes_reached(const struct prog *p)
{
    (void)p;
    return watched->subscribes >= target_subscribes;
}

/* A refused subscription: an error, the rest works and the link comes up,
 * and it is asked for again later. */
static void keeper_retries_a_refused_subscription_while_the_rest_works(void)
{
    struct fx_fake fb = {0};
    CU_ASSERT_FATAL(fx_fake_start(&fb, FX_GRANT));
    char url[64];
    url_of(url, sizeof(url), fb.port);
    const char *urls[] = {url, NULL};
    struct prog p;
    CU_ASSERT_FATAL(prog_new(&p, "refused", urls, false, NULL));
    CU_ASSERT_FATAL(sub(&p, "ok/+", p_msg_a));
    CU_ASSERT_FATAL(sub(&p, "denied/+", p_msg_b));
    ferry_keeper_start(p.k);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    CU_ASSERT_EQUAL(p.refused, 1);
    CU_ASSERT_EQUAL(p.refused_code, 0x87);
    CU_ASSERT_STRING_EQUAL(p.refused_filter, "denied/+");
    CU_ASSERT_TRUE(ferry_keeper_is_up(p.k));
    /* Asked again after 5 s on the same connection; the granted one not. */
    watched = &fb;
    target_subscribes = 3;
    CU_ASSERT_TRUE(run_until(&p, subscribes_reached, 8000));
    CU_ASSERT_EQUAL(fb.denied, 2);
    CU_ASSERT_EQUAL(fb.connections, 1);
    CU_ASSERT_EQUAL(p.ups, 1);
    prog_free(&p);
    fx_fake_stop(&fb);
}

/* CONNACK properties: Retain Available 0 (0x25 0x00). */
static void keeper_skips_a_broker_that_lacks_what_the_program_needs(void)
{
    struct fx_fake fb = {0};
    fb.props[0] = 0x25;
    fb.props[1] = 0x00;
    fb.nprops = 2;
    CU_ASSERT_FATAL(fx_fake_start(&fb, FX_GRANT));
    struct fx_broker b;
    CU_ASSERT_FATAL(fx_broker_start(&b, "fit", 1, fx_plain_conf, NULL));
    char unfit[64], fit[64];
    url_of(unfit, sizeof(unfit), fb.port);
    url_of(fit, sizeof(fit), b.ports[0]);
    const char *urls[] = {unfit, fit, NULL};
    const struct ferry_keeper_needs needs = {.qos1 = true, .retain = true};
    struct prog p;
    CU_ASSERT_FATAL(prog_new(&p, "fit", urls, false, &needs));
    CU_ASSERT_FATAL(sub(&p, "fit/+", p_msg_a));
    ferry_keeper_start(p.k);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    CU_ASSERT_STRING_EQUAL(p.last_url, fit);
    CU_ASSERT_TRUE(fb.got_connect);
    CU_ASSERT_EQUAL(fb.subscribes, 0); /* nothing was trusted to it */
    prog_free(&p);
    fx_fake_stop(&fb);
    fx_broker_stop(&b);
}

/* A broker that closes the link over a shared subscription (ejabberd
 * 23.01): reported refused with 0x9e once, never sent to it again, and the
 * rest comes up on it. */
static void keeper_reports_a_broker_without_shared_subscriptions(void)
{
    struct fx_fake fb = {0};
    CU_ASSERT_FATAL(fx_fake_start(&fb, FX_KICK_ON_SHARED));
    char url[64];
    url_of(url, sizeof(url), fb.port);
    const char *urls[] = {url, NULL};
    struct prog p;
    CU_ASSERT_FATAL(prog_new(&p, "noshare", urls, false, NULL));
    CU_ASSERT_FATAL(sub(&p, "plain/+", p_msg_a));
    CU_ASSERT_FATAL(sub(&p, "$share/g/work/+", p_msg_b));
    ferry_keeper_start(p.k);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    CU_ASSERT_TRUE(p.refused >= 1); /* at the kick, and again at the next connection */
    CU_ASSERT_EQUAL(p.refused_code, 0x9e);
    CU_ASSERT_STRING_EQUAL(p.refused_filter, "$share/g/work/+");
    CU_ASSERT_EQUAL(fb.shared_seen, 1);
    CU_ASSERT_EQUAL(fb.connections, 2);
    CU_ASSERT_EQUAL(p.downs, 0); /* it never was up on the first link */
    prog_free(&p);
    fx_fake_stop(&fb);

    /* Shared Subscription Available 0 (0x2a 0x00): never sent at all. */
    fb.props[0] = 0x2a;
    fb.props[1] = 0x00;
    fb.nprops = 2;
    CU_ASSERT_FATAL(fx_fake_start(&fb, FX_GRANT));
    url_of(url, sizeof(url), fb.port);
    CU_ASSERT_FATAL(prog_new(&p, "noshare2", urls, false, NULL));
    CU_ASSERT_FATAL(sub(&p, "plain/+", p_msg_a));
    CU_ASSERT_FATAL(sub(&p, "$share/g/work/+", p_msg_b));
    ferry_keeper_start(p.k);
    CU_ASSERT_TRUE_FATAL(wait_ups(&p, 1));
    CU_ASSERT_EQUAL(p.refused, 1);
    CU_ASSERT_EQUAL(p.refused_code, 0x9e);
    CU_ASSERT_EQUAL(fb.shared_seen, 0);
    CU_ASSERT_EQUAL(fb.connections, 1);
    prog_free(&p);
    fx_fake_stop(&fb);
}

const char *const ferry_suite_name = "keeper";
const struct ferry_test_case ferry_tests[] = {
    {"keeper_settings_name_what_is_wrong", keeper_settings_name_what_is_wrong},
    {"keeper_password_is_the_first_line", keeper_password_is_the_first_line},
    {"keeper_fitness_names_what_a_broker_lacks", keeper_fitness_names_what_a_broker_lacks},
    {"keeper_shared_filters_match_on_the_topic_part",
     keeper_shared_filters_match_on_the_topic_part},
    {"keeper_dispatches_each_message_to_its_subscription",
     keeper_dispatches_each_message_to_its_subscription},
    {"keeper_fails_over_to_the_next_broker", keeper_fails_over_to_the_next_broker},
    {"keeper_authenticates_with_a_password_file", keeper_authenticates_with_a_password_file},
    {"keeper_subscribes_again_when_the_broker_lost_the_session",
     keeper_subscribes_again_when_the_broker_lost_the_session},
    {"keeper_retries_a_refused_subscription_while_the_rest_works",
     keeper_retries_a_refused_subscription_while_the_rest_works},
    {"keeper_skips_a_broker_that_lacks_what_the_program_needs",
     keeper_skips_a_broker_that_lacks_what_the_program_needs},
    {"keeper_reports_a_broker_without_shared_subscriptions",
     keeper_reports_a_broker_without_shared_subscriptions},
    {NULL, NULL},
};
