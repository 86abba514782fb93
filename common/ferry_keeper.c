/* ferry_keeper: the MQTT session keeper (the policy is in the header).
 *
 * State, all on the loop thread: the broker list and where in it we are
 * (`idx`, `tried`: attempts in this round), the subscriptions with each
 * one's state on the current connection, and two timers: the next connection
 * attempt and the next try of refused subscriptions. `fit` says the
 * connected broker passed the fitness check; `up` that on_up was called for
 * this connection. */
#include "ferry_keeper.h"

#include "ferry_random.h"

#include "ferry_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_BACKOFF_MIN_MS  500u
#define DEFAULT_BACKOFF_MAX_MS  30000u
#define RESUB_MIN_MS            5000u
#define RESUB_MAX_MS            300000u
#define REASON_SHARED_NOT_SUP   0x9e
#define REASON_WILDCARD_NOT_SUP 0xa2
#define SHARE_PREFIX            "$share/"

enum sub_state {
    SUB_IDLE,        /* not asked for on this connection yet */
    SUB_PENDING,     /* asked for; token holds the request */
    SUB_GRANTED,     /* granted on this connection */
    SUB_REFUSED,     /* refused; asked again at retry_at */
    SUB_UNSUPPORTED, /* the broker cannot grant it: not asked again on it */
};

struct sub {
    char *filter;
    int qos;
    ferry_keeper_msg_cb on_message;
    void *arg;
    bool shared;
    enum sub_state state;
    int token;
    uint32_t retry_ms; /* the next delay after a refusal */
    uint64_t retry_at; /* ferry_now_ms() when a refused one is asked again */
    bool answered;     /* answered (granted or refused) on this connection */
};

struct ferry_keeper {
    struct ferry_loop *loop;
    struct ferry_mqtt *mqtt;
    struct ferry_keeper_events ev;
    char *name;
    char *username;
    char *password_file;
    bool persistent;
    struct ferry_keeper_needs needs;
    char **urls;
    bool *no_shared; /* per URL: the broker has no shared subscriptions */
    size_t nurls;
    size_t idx;   /* the broker of the attempt under way or of the link */
    size_t tried; /* failed attempts in this round */
    struct ferry_backoff backoff;
    uint64_t connect_timer;
    uint64_t resub_timer;
    struct sub *subs;
    size_t nsubs;
    bool started;
    bool connected; /* the client is connected (fit or not) */
    bool fit;       /* ... and the broker passed the fitness check */
    bool up;        /* ... and on_up was called for this connection */
    bool session_present;
    struct ferry_mqtt_caps caps;
};

/* ---- configuration ------------------------------------------------------ */

/* Calls cb for every URL of the list, split at commas, spaces trimmed. */
static enum ferry_err each_url(const struct ferry_strlist *l,
                               enum ferry_err (*cb)(void *arg, const char *url, size_t i,
                                                    struct ferry_diag *d),
                               void *arg, size_t *count, struct ferry_diag *d)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *p = l->v[i];
        for (;;) {
            while (*p == ' ')
                p++;
            size_t len = strcspn(p, ",");
            size_t trimmed = len;
            while (trimmed > 0 && p[trimmed - 1] == ' ')
                trimmed--;
            if (trimmed == 0)
                return ferry_fail(d, FERRY_E_INVALID_ARG, "--broker '%.200s' has an empty URL",
                                  l->v[i]);
            if (n == FERRY_KEEPER_MAX_BROKERS)
                return ferry_fail(d, FERRY_E_INVALID_ARG, "--broker: at most %d URLs",
                                  FERRY_KEEPER_MAX_BROKERS);
            char *url = strndup(p, trimmed);
            if (!url)
                return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
            enum ferry_err err = cb(arg, url, n, d);
            free(url);
            if (err != FERRY_OK)
                return err;
            n++;
            if (!p[len])
                break;
            p += len + 1;
        }
    }
    if (n == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--broker is required");
    *count = n;
    return FERRY_OK;
}

struct scheme_check {
    bool tls;
};

static enum ferry_err check_one(void *arg, const char *url, size_t i, struct ferry_diag *d)
{
    struct scheme_check *c = arg;
    bool tls = false;
    enum ferry_err err = ferry_mqtt_url_check(url, &tls, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "--broker");
        return err;
    }
    if (i == 0)
        c->tls = tls;
    else if (tls != c->tls)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--broker: '%.200s' is %s but the first URL is %s: every broker takes "
                          "the same scheme",
                          url, tls ? "mqtts://" : "mqtt://", c->tls ? "mqtts://" : "mqtt://");
    return FERRY_OK;
}

enum ferry_err ferry_keeper_conf_check(const struct ferry_keeper_conf *c, struct ferry_diag *d)
{
    struct scheme_check sc = {false};
    size_t n = 0;
    enum ferry_err err = each_url(&c->brokers, check_one, &sc, &n, d);
    if (err != FERRY_OK)
        return err;
    if (sc.tls && !c->ca_file)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--broker is mqtts:// and needs --ca-file to check the broker");
    if (!sc.tls && (c->ca_file || c->cert_file || c->key_file))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--ca-file, --cert-file and --key-file need an mqtts:// --broker");
    if (!c->cert_file != !c->key_file)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--cert-file and --key-file go together");
    if (c->username && (!c->username[0] || strlen(c->username) > 65535))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--mqtt-username must be 1 to 65535 bytes");
    if (c->password_file && !c->username)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--mqtt-password-file needs --mqtt-username (the broker checks the "
                          "password of a user)");
    if (c->password_file) {
        uint8_t *pw = NULL;
        size_t len = 0;
        err = ferry_keeper_read_password(c->password_file, &pw, &len, d);
        ferry_keeper_wipe(pw, len);
        if (err != FERRY_OK) {
            ferry_diag_prefix(d, "--mqtt-password-file");
            return err;
        }
    }
    return FERRY_OK;
}

void ferry_keeper_wipe(uint8_t *buf, size_t len)
{
    if (!buf)
        return;
    explicit_bzero(buf, len);
    free(buf);
}

enum ferry_err ferry_keeper_read_password(const char *path, uint8_t **out, size_t *len,
                                          struct ferry_diag *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return ferry_fail(d, errno == ENOENT ? FERRY_E_NOT_FOUND : FERRY_E_IO, "%s: %s", path,
                          strerror(errno));
    struct stat st;
    enum ferry_err err = FERRY_OK;
    uint8_t *buf = NULL;
    size_t got = 0;
    if (fstat(fd, &st) != 0) {
        err = ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        err = ferry_fail(d, FERRY_E_INVALID_ARG,
                         "%s may be read or written by every user of the host (mode %04o): "
                         "chmod o-rw it",
                         path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    /* Room for the longest password, its line end and one byte more, to
     * tell a file that is too long. */
    size_t cap = FERRY_KEEPER_PASSWORD_MAX + 3;
    buf = malloc(cap);
    if (!buf) {
        err = ferry_fail(d, FERRY_E_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0 || (got += (size_t)r) == cap)
            break;
    }
    uint8_t *nl = memchr(buf, '\n', got);
    size_t n = nl ? (size_t)(nl - buf) : got;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: the password is empty", path);
    else if (n > FERRY_KEEPER_PASSWORD_MAX)
        err = ferry_fail(d, FERRY_E_TOO_LARGE, "%s: the password is longer than %u bytes", path,
                         FERRY_KEEPER_PASSWORD_MAX);
    if (err == FERRY_OK) {
        explicit_bzero(buf + n, got - n);
        *out = buf;
        *len = n;
        buf = NULL;
    }
out:
    if (buf)
        ferry_keeper_wipe(buf, got);
    close(fd);
    return err;
}

/* ---- fitness ----------------------------------------------------------- */

bool ferry_keeper_fit(const struct ferry_keeper_needs *needs, const struct ferry_mqtt_caps *caps,
                      char *why, size_t whysz)
{
    if (needs->qos1 && caps->max_qos < 1)
        snprintf(why, whysz, "it offers QoS 0 only (Maximum QoS 0); Ferry needs QoS 1");
    else if (needs->retain && !caps->retain)
        snprintf(why, whysz,
                 "it keeps no retained messages (Retain Available 0); Ferry needs them for "
                 "releases, trust metadata and rollouts");
    else if (needs->wildcards && !caps->wildcards)
        snprintf(why, whysz,
                 "it takes no wildcard subscriptions (Wildcard Subscription Available 0); "
                 "Ferry subscribes to filters with '+'");
    else if (needs->max_packet && caps->max_packet && caps->max_packet < needs->max_packet)
        snprintf(why, whysz,
                 "it takes packets of %u bytes at most (Maximum Packet Size); Ferry sends up "
                 "to %zu",
                 caps->max_packet, needs->max_packet);
    else
        return true;
    return false;
}

bool ferry_keeper_filter_matches(const char *filter, const char *topic)
{
    if (strncmp(filter, SHARE_PREFIX, strlen(SHARE_PREFIX)) == 0) {
        const char *slash = strchr(filter + strlen(SHARE_PREFIX), '/');
        if (!slash)
            return false;
        filter = slash + 1;
    }
    return ferry_mqtt_topic_matches(filter, topic);
}

/* ---- subscriptions ------------------------------------------------------ */

static void refuse(struct ferry_keeper *k, struct sub *s, int code, const char *reason);
static void maybe_up(struct ferry_keeper *k);

static void schedule_resub(struct ferry_keeper *k);

static void send_sub(struct ferry_keeper *k, struct sub *s)
{
    if (s->shared && k->no_shared[k->idx]) {
        refuse(k, s, REASON_SHARED_NOT_SUP, "the broker has no shared subscriptions");
        return;
    }
    enum ferry_err err = ferry_mqtt_subscribe(k->mqtt, s->filter, s->qos, &s->token);
    if (err == FERRY_OK) {
        s->state = SUB_PENDING;
        return;
    }
    char why[96];
    snprintf(why, sizeof(why), "the subscribe could not be sent: %s", ferry_strerror(err));
    refuse(k, s, 0, why);
}

/* A refusal: logged, reported, and asked again later unless the broker
 * cannot ever grant it (see the header). */
static void refuse(struct ferry_keeper *k, struct sub *s, int code, const char *reason)
{
    bool permanent = code == REASON_SHARED_NOT_SUP || code == REASON_WILDCARD_NOT_SUP;
    if (code == REASON_SHARED_NOT_SUP && s->shared)
        k->no_shared[k->idx] = true;
    s->state = permanent ? SUB_UNSUPPORTED : SUB_REFUSED;
    s->answered = true;
    if (permanent) {
        ferry_log_err("%s: %s refused the subscription to %s for good: %s", k->name,
                      k->urls[k->idx], s->filter, reason);
    } else {
        if (!s->retry_ms)
            s->retry_ms = RESUB_MIN_MS;
        s->retry_at = ferry_now_ms() + s->retry_ms;
        ferry_log_err("%s: %s refused the subscription to %s: %s; asking again in %u s", k->name,
                      k->urls[k->idx], s->filter, reason, s->retry_ms / 1000);
        s->retry_ms = s->retry_ms >= RESUB_MAX_MS / 2 ? RESUB_MAX_MS : s->retry_ms * 2;
        schedule_resub(k);
    }
    /* The handler may unsubscribe, which moves the array: s is not used
     * after the call. */
    char *filter = strdup(s->filter);
    if (k->ev.on_refused && filter)
        k->ev.on_refused(k->ev.arg, filter, code, reason);
    free(filter);
}

static void on_resub_timer(void *arg)
{
    struct ferry_keeper *k = arg;
    k->resub_timer = 0;
    if (!k->fit)
        return;
    uint64_t now = ferry_now_ms();
    for (size_t i = 0; i < k->nsubs; i++) {
        if (k->subs[i].state == SUB_REFUSED && k->subs[i].retry_at <= now)
            send_sub(k, &k->subs[i]);
    }
    schedule_resub(k);
}

static void schedule_resub(struct ferry_keeper *k)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < k->nsubs; i++) {
        if (k->subs[i].state == SUB_REFUSED && k->subs[i].retry_at < next)
            next = k->subs[i].retry_at;
    }
    if (k->resub_timer) {
        ferry_loop_cancel(k->loop, k->resub_timer);
        k->resub_timer = 0;
    }
    if (next == UINT64_MAX || !k->fit)
        return;
    uint64_t now = ferry_now_ms();
    k->resub_timer = ferry_loop_timer(k->loop, next > now ? next - now : 0, on_resub_timer, k);
}

static struct sub *sub_by_token(struct ferry_keeper *k, int token)
{
    for (size_t i = 0; i < k->nsubs; i++) {
        if (k->subs[i].state == SUB_PENDING && k->subs[i].token == token)
            return &k->subs[i];
    }
    return NULL;
}

static void maybe_up(struct ferry_keeper *k)
{
    if (!k->fit || k->up)
        return;
    for (size_t i = 0; i < k->nsubs; i++) {
        if (!k->subs[i].answered)
            return;
    }
    k->up = true;
    ferry_backoff_reset(&k->backoff);
    k->tried = 0;
    ferry_log_info("%s: up on %s", k->name, k->urls[k->idx]);
    if (k->ev.on_up) {
        struct ferry_keeper_link link = {
            .url = k->urls[k->idx],
            .session_present = k->session_present,
            .caps = &k->caps,
        };
        k->ev.on_up(k->ev.arg, &link);
    }
}

static void subscribe_all(struct ferry_keeper *k)
{
    for (size_t i = 0; i < k->nsubs; i++) {
        k->subs[i].state = SUB_IDLE;
        k->subs[i].answered = false;
        k->subs[i].retry_ms = 0;
    }
    /* By index: a refusal's handler may add or drop subscriptions. */
    for (size_t i = 0; i < k->nsubs; i++) {
        if (k->subs[i].state == SUB_IDLE)
            send_sub(k, &k->subs[i]);
    }
}

/* ---- connecting --------------------------------------------------------- */

static void attempt(void *arg);

static void schedule_attempt(struct ferry_keeper *k, uint32_t delay_ms)
{
    if (k->connect_timer)
        ferry_loop_cancel(k->loop, k->connect_timer);
    k->connect_timer = ferry_loop_timer(k->loop, delay_ms, attempt, k);
}

/* The attempt on k->idx failed, or its link ended: the next broker now, or
 * after a back-off once a whole round failed. */
static void next_broker(struct ferry_keeper *k)
{
    k->idx = (k->idx + 1) % k->nurls;
    if (++k->tried < k->nurls) {
        schedule_attempt(k, 0);
        return;
    }
    k->tried = 0;
    uint32_t delay = ferry_backoff_next(&k->backoff, ferry_random_u32());
    if (k->nurls > 1)
        ferry_log_info("%s: no broker of %zu reachable; next round in %u ms", k->name, k->nurls,
                       delay);
    else
        ferry_log_info("%s: reconnecting in %u ms", k->name, delay);
    schedule_attempt(k, delay);
}

static void attempt(void *arg)
{
    struct ferry_keeper *k = arg;
    struct ferry_diag d = {{0}};
    uint8_t *pw = NULL;
    size_t pwlen = 0;
    k->connect_timer = 0;
    enum ferry_err err = FERRY_OK;
    if (k->password_file) {
        err = ferry_keeper_read_password(k->password_file, &pw, &pwlen, &d);
        if (err != FERRY_OK)
            ferry_diag_prefix(&d, "--mqtt-password-file");
    }
    if (err == FERRY_OK) {
        struct ferry_mqtt_attempt a = {
            .url = k->urls[k->idx], .password = pw, .password_len = pwlen};
        ferry_log_debug("%s: connecting to %s", k->name, k->urls[k->idx]);
        err = ferry_mqtt_connect_to(k->mqtt, &a, &d);
    }
    ferry_keeper_wipe(pw, pwlen);
    if (err != FERRY_OK) {
        ferry_log_warn("%s: cannot connect to %s: %s", k->name, k->urls[k->idx],
                       ferry_diag_str(&d, err));
        next_broker(k);
    }
}

static void on_connected(struct ferry_keeper *k, const struct ferry_mqtt_ev *ev)
{
    char why[256];
    k->connected = true;
    k->caps = ev->caps;
    k->session_present = ev->session_present;
    if (!ferry_keeper_fit(&k->needs, &ev->caps, why, sizeof(why))) {
        ferry_log_err("%s: broker %s cannot carry this program: %s; trying another", k->name,
                      k->urls[k->idx], why);
        ferry_mqtt_disconnect(k->mqtt, "the broker is unfit");
        return;
    }
    k->fit = true;
    if (!ev->caps.shared)
        k->no_shared[k->idx] = true;
    if (k->persistent && !ev->session_present)
        ferry_log_warn(
            "%s: %s holds no session for us (new, expired, or lost by the broker): what it "
            "queued for us is gone; subscribing again",
            k->name, k->urls[k->idx]);
    else
        ferry_log_info("%s: connected to %s (session %s)", k->name, k->urls[k->idx],
                       ev->session_present ? "resumed" : "new");
    subscribe_all(k);
    maybe_up(k);
}

static void on_link_down(struct ferry_keeper *k, const struct ferry_mqtt_ev *ev)
{
    bool was_up = k->up;
    bool was_fit = k->fit;
    k->connected = k->fit = k->up = false;
    if (k->resub_timer) {
        ferry_loop_cancel(k->loop, k->resub_timer);
        k->resub_timer = 0;
    }
    const char *reason = ev->reason[0] ? ev->reason : "no reason given";
    if (ev->type == FERRY_MQTT_EV_CONNECT_FAILED) {
        ferry_log_warn("%s: cannot connect to %s: %s", k->name, k->urls[k->idx], reason);
    } else if (was_fit) {
        /* A broker that closes the link over a shared subscription (ejabberd
         * 23.01) has none: remember it, and tell the program now. */
        if (ev->reason_code == REASON_SHARED_NOT_SUP) {
            k->no_shared[k->idx] = true;
            for (size_t i = 0; i < k->nsubs; i++) {
                if (k->subs[i].shared && k->subs[i].state == SUB_PENDING)
                    refuse(k, &k->subs[i], REASON_SHARED_NOT_SUP,
                           "the broker closed the link over it");
            }
        }
        ferry_log_warn("%s: connection lost to %s: %s", k->name, k->urls[k->idx], reason);
    }
    for (size_t i = 0; i < k->nsubs; i++) {
        if (k->subs[i].state != SUB_UNSUPPORTED)
            k->subs[i].state = SUB_IDLE;
    }
    if (was_up && k->ev.on_down)
        k->ev.on_down(k->ev.arg, reason);
    next_broker(k);
}

static void on_sub_answer(struct ferry_keeper *k, const struct ferry_mqtt_ev *ev)
{
    struct sub *s = sub_by_token(k, ev->token);
    if (!s)
        return; /* an unsubscribed filter's late answer */
    if (ev->type == FERRY_MQTT_EV_SUBSCRIBED) {
        s->state = SUB_GRANTED;
        s->answered = true;
        s->retry_ms = 0;
        if (ev->qos < s->qos)
            ferry_log_warn("%s: %s granted %s at QoS %d only (asked for %d)", k->name,
                           k->urls[k->idx], s->filter, ev->qos, s->qos);
    } else {
        refuse(k, s, ev->reason_code, ev->reason[0] ? ev->reason : "no reason given");
    }
    maybe_up(k);
}

static void on_message(struct ferry_keeper *k, const struct ferry_mqtt_ev *ev)
{
    for (size_t i = 0; i < k->nsubs; i++) {
        if (ferry_keeper_filter_matches(k->subs[i].filter, ev->topic)) {
            k->subs[i].on_message(k->subs[i].arg, ev);
            return;
        }
    }
    ferry_log_debug("%s: message on '%.200s' matches no subscription; dropped", k->name, ev->topic);
}

static void on_mqtt_fd(void *arg, uint32_t events)
{
    struct ferry_keeper *k = arg;
    (void)events;
    struct ferry_mqtt_ev *ev;
    while (ferry_mqtt_next(k->mqtt, &ev) == FERRY_OK) {
        switch (ev->type) {
        case FERRY_MQTT_EV_CONNECTED:
            on_connected(k, ev);
            break;
        case FERRY_MQTT_EV_CONNECT_FAILED:
        case FERRY_MQTT_EV_LOST:
            on_link_down(k, ev);
            break;
        case FERRY_MQTT_EV_MESSAGE:
            on_message(k, ev);
            break;
        case FERRY_MQTT_EV_PUBLISHED:
        case FERRY_MQTT_EV_PUBLISH_FAILED:
            if (k->ev.on_published)
                k->ev.on_published(k->ev.arg, ev->token, ev->type == FERRY_MQTT_EV_PUBLISHED,
                                   ev->reason);
            break;
        case FERRY_MQTT_EV_SUBSCRIBED:
        case FERRY_MQTT_EV_SUBSCRIBE_FAILED:
            on_sub_answer(k, ev);
            break;
        case FERRY_MQTT_EV_UNSUBSCRIBED:
            break;
        }
        ferry_mqtt_ev_free(ev);
    }
}

/* ---- construction -------------------------------------------------------- */

static enum ferry_err add_url(void *arg, const char *url, size_t i, struct ferry_diag *d)
{
    struct ferry_keeper *k = arg;
    (void)i;
    char **grown = realloc(k->urls, (k->nurls + 1) * sizeof(*grown));
    if (!grown)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    k->urls = grown;
    if (!(k->urls[k->nurls] = strdup(url)))
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    k->nurls++;
    return FERRY_OK;
}

static enum ferry_err dup_str(const char *s, char **out)
{
    if (!s)
        return FERRY_OK;
    *out = strdup(s);
    return *out ? FERRY_OK : FERRY_E_NOMEM;
}

enum ferry_err ferry_keeper_new(struct ferry_loop *loop, const struct ferry_keeper_opts *o,
                                const struct ferry_keeper_events *events, struct ferry_keeper **out,
                                struct ferry_diag *d)
{
    const struct ferry_keeper_conf *c = o->conf;
    enum ferry_err err = ferry_keeper_conf_check(c, d);
    if (err != FERRY_OK)
        return err;
    struct ferry_keeper *k = calloc(1, sizeof(*k));
    if (!k)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    k->loop = loop;
    if (events)
        k->ev = *events;
    k->persistent = o->persistent;
    k->needs = o->needs;
    k->backoff.min_ms = o->backoff_min_ms ? o->backoff_min_ms : DEFAULT_BACKOFF_MIN_MS;
    k->backoff.max_ms = o->backoff_max_ms ? o->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    size_t n = 0;
    if (dup_str(o->name ? o->name : "mqtt", &k->name) != FERRY_OK ||
        dup_str(c->username, &k->username) != FERRY_OK ||
        dup_str(c->password_file, &k->password_file) != FERRY_OK) {
        err = ferry_fail(d, FERRY_E_NOMEM, "out of memory");
        goto fail;
    }
    err = each_url(&c->brokers, add_url, k, &n, d);
    if (err != FERRY_OK)
        goto fail;
    if (!(k->no_shared = calloc(k->nurls, sizeof(*k->no_shared)))) {
        err = ferry_fail(d, FERRY_E_NOMEM, "out of memory");
        goto fail;
    }
    struct ferry_mqtt_opts mo = {
        .url = k->urls[0],
        .client_id = o->client_id,
        .ca_file = c->ca_file,
        .cert_file = c->cert_file,
        .key_file = c->key_file,
        .username = c->username,
        .clean_start = !o->persistent,
        .session_expiry = o->persistent ? o->session_expiry : 0,
        .keepalive = o->keepalive,
        .will_topic = o->will_topic,
        .will_payload = o->will_payload,
        .will_len = o->will_len,
        .will_retain = o->will_retain,
        .droppable = o->droppable,
    };
    err = ferry_mqtt_new(&mo, &k->mqtt, d);
    if (err != FERRY_OK)
        goto fail;
    err = ferry_loop_add_fd(loop, ferry_mqtt_fd(k->mqtt), EPOLLIN, on_mqtt_fd, k);
    if (err != FERRY_OK) {
        ferry_fail(d, err, "%s: cannot watch the MQTT client", k->name);
        ferry_mqtt_free(k->mqtt);
        k->mqtt = NULL;
        goto fail;
    }
    *out = k;
    return FERRY_OK;
fail:
    ferry_keeper_free(k);
    return err;
}

void ferry_keeper_free(struct ferry_keeper *k)
{
    if (!k)
        return;
    if (k->connect_timer)
        ferry_loop_cancel(k->loop, k->connect_timer);
    if (k->resub_timer)
        ferry_loop_cancel(k->loop, k->resub_timer);
    if (k->mqtt) {
        ferry_loop_del_fd(k->loop, ferry_mqtt_fd(k->mqtt));
        ferry_mqtt_free(k->mqtt);
    }
    for (size_t i = 0; i < k->nsubs; i++)
        free(k->subs[i].filter);
    free(k->subs);
    for (size_t i = 0; i < k->nurls; i++)
        free(k->urls[i]);
    free(k->urls);
    free(k->no_shared);
    free(k->name);
    free(k->username);
    free(k->password_file);
    free(k);
}

void ferry_keeper_start(struct ferry_keeper *k)
{
    if (k->started)
        return;
    k->started = true;
    attempt(k);
}

enum ferry_err ferry_keeper_subscribe(struct ferry_keeper *k, const struct ferry_keeper_sub *s)
{
    if (!s->filter || s->qos < 0 || s->qos > 2 || !s->on_message)
        return FERRY_E_INVALID_ARG;
    for (size_t i = 0; i < k->nsubs; i++) {
        if (strcmp(k->subs[i].filter, s->filter) == 0)
            return FERRY_E_INVALID_ARG;
    }
    struct sub *grown = realloc(k->subs, (k->nsubs + 1) * sizeof(*grown));
    if (!grown)
        return FERRY_E_NOMEM;
    k->subs = grown;
    struct sub *n = &k->subs[k->nsubs];
    memset(n, 0, sizeof(*n));
    if (!(n->filter = strdup(s->filter)))
        return FERRY_E_NOMEM;
    n->qos = s->qos;
    n->on_message = s->on_message;
    n->arg = s->arg;
    n->shared = strncmp(s->filter, SHARE_PREFIX, strlen(SHARE_PREFIX)) == 0;
    n->state = SUB_IDLE;
    k->nsubs++;
    if (k->fit) {
        /* Counted as answered for on_up: the link is up already, or comes
         * up with the others. */
        n->answered = k->up;
        send_sub(k, n);
    }
    return FERRY_OK;
}

void ferry_keeper_unsubscribe(struct ferry_keeper *k, const char *filter)
{
    for (size_t i = 0; i < k->nsubs; i++) {
        if (strcmp(k->subs[i].filter, filter) != 0)
            continue;
        if (k->fit && k->subs[i].state == SUB_GRANTED &&
            ferry_mqtt_unsubscribe(k->mqtt, filter, NULL) != FERRY_OK)
            ferry_log_debug("%s: could not unsubscribe from %s", k->name, filter);
        free(k->subs[i].filter);
        memmove(&k->subs[i], &k->subs[i + 1], (k->nsubs - i - 1) * sizeof(k->subs[0]));
        k->nsubs--;
        maybe_up(k);
        schedule_resub(k);
        return;
    }
}

bool ferry_keeper_is_up(const struct ferry_keeper *k)
{
    return k->up;
}

const char *ferry_keeper_url(const struct ferry_keeper *k)
{
    return k->connected ? k->urls[k->idx] : NULL;
}

enum ferry_err ferry_keeper_publish(struct ferry_keeper *k, const char *topic, const void *payload,
                                    size_t len, int qos, bool retain, int *token)
{
    if (!k->fit)
        return FERRY_E_BUSY;
    return ferry_mqtt_publish(k->mqtt, topic, payload, len, qos, retain, token);
}
