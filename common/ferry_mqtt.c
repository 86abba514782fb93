/* ferry_mqtt: Paho MQTTAsync (MQTT v5) behind an eventfd and a queue.
 *
 * Two views of the link are kept on purpose. Paho's threads track `link`
 * (under mu) so that each callback can tell whether it reports the outcome
 * of a connect attempt, the loss of an established link, or nothing new
 * (Paho may report one failure through two callbacks). The loop thread
 * tracks `connected`/`connecting`, updated only as it pops events, so what
 * ferry_mqtt_is_connected() says always agrees with the events the loop
 * has seen. Paho calls our callbacks with its own mutex held at times, so
 * no callback ever calls back into Paho, and no code here calls Paho while
 * holding mu. */
#include "ferry_mqtt.h"

#include "ferry_log.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MQTT_STRING_MAX       65535u /* MQTT's two-byte string length */
#define CLIENT_ID_MAX         256u
#define URL_MAX               512u
#define DEFAULT_KEEPALIVE_S   30
#define CONNECT_TIMEOUT_S     30
#define DISCONNECT_TIMEOUT_MS 2000 /* in-flight QoS 1 publishes get this long at free */
#define DISCONNECT_WAIT_MS    (DISCONNECT_TIMEOUT_MS + 3000)
#define WILL_QOS              1
#define PASSWORD_MAX          65535u /* MQTT binary data */

#define REASON_MAX sizeof(((struct ferry_mqtt_ev *)0)->reason)

enum link_state { LINK_IDLE, LINK_CONNECTING, LINK_UP };

struct ev_node {
    struct ferry_mqtt_ev ev; /* first, so ferry_mqtt_ev_free() can free the node */
    struct ev_node *next;
    size_t cost; /* bytes counted against FERRY_MQTT_QUEUE_MAX_BYTES */
};

struct ferry_mqtt {
    MQTTAsync cli;
    int efd;
    bool tls;
    char *url;           /* as the caller gave it, for messages */
    char *paho_url;      /* tcp:// or ssl:// form */
    uint32_t max_packet; /* loop thread: the connected broker's cap, 0: none */
    char *client_id;
    char *ca_file, *cert_file, *key_file, *username;
    char *will_topic;
    uint8_t *will_payload;
    size_t will_len;
    bool will_retain;
    bool clean_start;
    uint32_t session_expiry;
    int keepalive;
    char *droppable[FERRY_MQTT_DROPPABLE_MAX + 1]; /* NULL-terminated */
    size_t queue_max;

    /* Loop thread only. */
    bool connected, connecting;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    struct ev_node *head, *tail;
    size_t queued_bytes;
    enum link_state link;
    char tls_err[96];         /* last OpenSSL error of the current attempt */
    bool over_cap;            /* warned that the queue passed its cap; rearmed below half */
    uint64_t dropped;         /* messages dropped while the queue was full */
    uint64_t dropped_episode; /* ... in the current episode (over_cap) */
    bool disc_done;           /* the free-time disconnect has completed */
    char cur_url[128];        /* the URL of the attempt under way or the link */
    char disc_reason[128];    /* why ferry_mqtt_disconnect() ended the link */
};

/* Paho's text for a return code; never NULL. */
static const char *paho_str(int rc)
{
    const char *s = MQTTAsync_strerror(rc);
    return s ? s : "unknown failure";
}

/* ---- event queue (callers hold mu unless noted) ------------------------ */

static struct ev_node *node_new(enum ferry_mqtt_ev_type type)
{
    struct ev_node *n = calloc(1, sizeof(*n));
    if (n) {
        n->ev.type = type;
        n->cost = sizeof(*n);
    }
    return n;
}

static void push_locked(struct ferry_mqtt *m, struct ev_node *n)
{
    if (m->tail)
        m->tail->next = n;
    else
        m->head = n;
    m->tail = n;
    m->queued_bytes += n->cost;
    /* Written under mu so that ferry_mqtt_next() cannot reset the counter
     * between our push and our wake-up. EAGAIN (counter at its maximum)
     * still leaves the fd readable, which is all that matters. */
    uint64_t one = 1;
    ssize_t w = write(m->efd, &one, sizeof(one));
    (void)w;
}

/* Queues a state or outcome event with a formatted reason. A lost event
 * under memory exhaustion is logged; nothing better can be done on a Paho
 * thread. */
static void push_event_locked(struct ferry_mqtt *m, enum ferry_mqtt_ev_type type, int token,
                              int reason_code, const char *fmt, ...) FERRY_PRINTF(5, 6);
static void push_event_locked(struct ferry_mqtt *m, enum ferry_mqtt_ev_type type, int token,
                              int reason_code, const char *fmt, ...)
{
    struct ev_node *n = node_new(type);
    if (!n) {
        ferry_log_err("mqtt %s: out of memory, event %d lost", m->client_id, (int)type);
        return;
    }
    n->ev.token = token;
    n->ev.reason_code = reason_code;
    if (type == FERRY_MQTT_EV_CONNECT_FAILED || type == FERRY_MQTT_EV_LOST)
        snprintf(n->ev.url, sizeof(n->ev.url), "%s", m->cur_url);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(n->ev.reason, sizeof(n->ev.reason), fmt, ap);
        va_end(ap);
    }
    push_locked(m, n);
}

/* ---- failure descriptions -------------------------------------------- */

/* OpenSSL 3 error lines read "tid:error:code:lib:func:reason:file:line:";
 * the reason field is the part a person needs. */
static void tls_reason(const char *line, size_t len, char *out, size_t outsz)
{
    const char *fields[6] = {0};
    size_t nf = 0;
    fields[nf++] = line;
    for (size_t i = 0; i < len && nf < 6; i++) {
        if (line[i] == ':')
            fields[nf++] = line + i + 1;
    }
    const char *start = line;
    size_t n = len;
    if (nf == 6 && strncmp(fields[1], "error:", 6) == 0) {
        start = fields[5];
        const char *end = memchr(start, ':', len - (size_t)(start - line));
        n = end ? (size_t)(end - start) : len - (size_t)(start - line);
    }
    while (n > 0 && (start[n - 1] == '\n' || start[n - 1] == ' '))
        n--;
    snprintf(out, outsz, "%.*s", (int)n, start);
}

/* Appends to a reason, "; "-separated, truncating at the end of out. Going
 * through vsnprintf also keeps -O2's truncation warnings quiet: a cut reason
 * is fine. */
static void reason_add(char *out, size_t outsz, size_t *n, const char *fmt, ...) FERRY_PRINTF(4, 5);
static void reason_add(char *out, size_t outsz, size_t *n, const char *fmt, ...)
{
    if (*n + 3 >= outsz)
        return;
    if (*n) {
        memcpy(out + *n, "; ", 3);
        *n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *n, outsz - *n, fmt, ap);
    va_end(ap);
    if (w > 0)
        *n = *n + (size_t)w < outsz ? *n + (size_t)w : outsz - 1;
}

/* The broker's reason code in a failure, or 0: a refusing CONNACK arrives
 * as the code, other refusals as the reason. */
static int failure_code(const MQTTAsync_failureData5 *r)
{
    return (int)r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR           ? (int)r->reasonCode
           : r->code >= MQTTREASONCODE_UNSPECIFIED_ERROR && r->code <= 0xff ? r->code
                                                                            : 0;
}

static void describe_failure(struct ferry_mqtt *m, const MQTTAsync_failureData5 *r, char *out,
                             size_t outsz)
{
    size_t n = 0;
    out[0] = 0;
    if (r->code != MQTTASYNC_SUCCESS || r->message)
        reason_add(out, outsz, &n, "%s (code %d)", r->message ? r->message : paho_str(r->code),
                   r->code);
    int rc = failure_code(r);
    if (rc)
        reason_add(out, outsz, &n, "broker: %s (0x%02x)",
                   MQTTReasonCode_toString((enum MQTTReasonCodes)rc), (unsigned)rc);
    if (m->tls_err[0])
        reason_add(out, outsz, &n, "tls: %s", m->tls_err);
    /* Paho checks the host name after the handshake, and under TLS 1.3 a
     * refused client certificate arrives on a read it does not report: both
     * surface as a bare connect failure. Say what it may be. */
    if (m->tls && !m->tls_err[0] && r->code == MQTTASYNC_FAILURE)
        reason_add(out, outsz, &n, "%s",
                   "tls: handshake or verification failed without detail (broker host name "
                   "not in its certificate, client certificate refused or expired, or nothing "
                   "listening)");
    if (n == 0)
        snprintf(out, outsz, "failed, no reason given");
}

/* ---- Paho callbacks (Paho's threads) ---------------------------------- */

static int on_tls_error(const char *str, size_t len, void *ctx)
{
    struct ferry_mqtt *m = ctx;
    pthread_mutex_lock(&m->mu);
    tls_reason(str, len, m->tls_err, sizeof(m->tls_err));
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* A numeric CONNACK property, or dflt when the broker left it out. */
static int connack_value(MQTTProperties *p, enum MQTTPropertyCodes id, int dflt)
{
    return MQTTProperties_hasProperty(p, id) ? MQTTProperties_getNumericValue(p, id) : dflt;
}

static void read_caps(const struct ferry_mqtt *m, MQTTProperties *p, struct ferry_mqtt_caps *c)
{
    c->max_qos = connack_value(p, MQTTPROPERTY_CODE_MAXIMUM_QOS, 2);
    c->retain = connack_value(p, MQTTPROPERTY_CODE_RETAIN_AVAILABLE, 1) != 0;
    c->wildcards = connack_value(p, MQTTPROPERTY_CODE_WILDCARD_SUBSCRIPTION_AVAILABLE, 1) != 0;
    c->shared = connack_value(p, MQTTPROPERTY_CODE_SHARED_SUBSCRIPTION_AVAILABLE, 1) != 0;
    c->sub_ids = connack_value(p, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIERS_AVAILABLE, 1) != 0;
    c->max_packet = (uint32_t)connack_value(p, MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE, 0);
    c->receive_max = (uint16_t)connack_value(p, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM, 65535);
    c->keepalive = (uint32_t)connack_value(p, MQTTPROPERTY_CODE_SERVER_KEEP_ALIVE, m->keepalive);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData5 *r)
{
    struct ferry_mqtt *m = ctx;
    pthread_mutex_lock(&m->mu);
    if (m->link == LINK_CONNECTING) {
        struct ev_node *n = node_new(FERRY_MQTT_EV_CONNECTED);
        m->link = LINK_UP;
        if (n) {
            n->ev.session_present = r->alt.connect.sessionPresent != 0;
            read_caps(m, &r->properties, &n->ev.caps);
            snprintf(n->ev.url, sizeof(n->ev.url), "%s", m->cur_url);
            push_locked(m, n);
        } else {
            ferry_log_err("mqtt %s: out of memory, connected event lost", m->client_id);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* The link went away: reported once, as LOST if it was up or as the
 * attempt's failure if it never came up. */
static void link_down_locked(struct ferry_mqtt *m, const char *why, int reason_code)
{
    if (m->link == LINK_UP)
        push_event_locked(m, FERRY_MQTT_EV_LOST, 0, reason_code, "%s", why);
    else if (m->link == LINK_CONNECTING)
        push_event_locked(m, FERRY_MQTT_EV_CONNECT_FAILED, 0, reason_code, "%s", why);
    m->link = LINK_IDLE;
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    struct ferry_mqtt *m = ctx;
    char why[REASON_MAX];
    pthread_mutex_lock(&m->mu);
    describe_failure(m, r, why, sizeof(why));
    link_down_locked(m, why, failure_code(r));
    pthread_mutex_unlock(&m->mu);
}

static void on_connection_lost(void *ctx, char *cause)
{
    struct ferry_mqtt *m = ctx;
    pthread_mutex_lock(&m->mu);
    link_down_locked(m, cause ? cause : "connection lost", 0);
    pthread_mutex_unlock(&m->mu);
}

/* A v5 broker that closes the link says why first; Paho then closes the
 * socket without calling connectionLost, so this is the only notice. */
static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    struct ferry_mqtt *m = ctx;
    char why[REASON_MAX];
    (void)props;
    snprintf(why, sizeof(why), "broker disconnected: %s (0x%02x)", MQTTReasonCode_toString(rc),
             (unsigned)rc);
    pthread_mutex_lock(&m->mu);
    link_down_locked(m, why, (int)rc);
    pthread_mutex_unlock(&m->mu);
}

static struct ev_node *message_node(const char *topic, size_t tlen, const MQTTAsync_message *msg,
                                    size_t plen)
{
    struct ev_node *n = node_new(FERRY_MQTT_EV_MESSAGE);
    if (!n)
        return NULL;
    n->ev.topic = malloc(tlen + 1);
    n->ev.payload = malloc(plen ? plen : 1);
    if (!n->ev.topic || !n->ev.payload) {
        ferry_mqtt_ev_free(&n->ev);
        return NULL;
    }
    memcpy(n->ev.topic, topic, tlen);
    n->ev.topic[tlen] = 0;
    if (plen)
        memcpy(n->ev.payload, msg->payload, plen);
    n->ev.len = plen;
    n->ev.qos = msg->qos;
    n->ev.retained = msg->retained != 0;
    n->cost += tlen + 1 + plen;
    return n;
}

bool ferry_mqtt_topic_matches(const char *filter, const char *topic)
{
    const char *f = filter, *t = topic;
    for (;;) {
        size_t fl = strcspn(f, "/"), tl = strcspn(t, "/");
        if (fl == 1 && f[0] == '#')
            return true;
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
            return false;
        f += fl;
        t += tl;
        if (!*f && !*t)
            return true;
        if (!*t)
            return strcmp(f, "/#") == 0; /* "a/#" also matches "a" */
        if (!*f)
            return false;
        f++;
        t++;
    }
}

static bool droppable(const struct ferry_mqtt *m, const char *topic)
{
    for (size_t i = 0; m->droppable[i]; i++) {
        if (ferry_mqtt_topic_matches(m->droppable[i], topic))
            return true;
    }
    return false;
}

/* A message is queued whatever the queue holds, except one on a droppable
 * topic while the queue is full (see the header): Paho 1.3.12 has already
 * sent the PUBACK and keeps a refused message in its own unbounded list,
 * offering it again only when the next packet arrives for this client (one
 * keepalive later when the link is idle). Refusing would stall delivery
 * and save no memory; dropping what the protocol retries does. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct ferry_mqtt *m = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

    if (plen > FERRY_MQTT_MAX_PAYLOAD) {
        ferry_log_warn("mqtt %s: dropped a %zu-byte message on '%.64s': above the %u-byte cap",
                       m->client_id, plen, topic, FERRY_MQTT_MAX_PAYLOAD);
        goto consumed;
    }
    if (memchr(topic, 0, tlen)) {
        ferry_log_warn("mqtt %s: dropped a message whose topic '%.64s' holds a NUL byte",
                       m->client_id, topic);
        goto consumed;
    }

    pthread_mutex_lock(&m->mu);
    if (m->queued_bytes >= m->queue_max && droppable(m, topic)) {
        m->dropped++;
        if (m->dropped_episode++ == 0)
            ferry_log_warn("mqtt %s: %zu bytes of events wait for the loop (cap %zu): dropping "
                           "messages its protocol retries, from '%.64s' on",
                           m->client_id, m->queued_bytes, m->queue_max, topic);
        m->over_cap = true;
        pthread_mutex_unlock(&m->mu);
        goto consumed;
    }
    pthread_mutex_unlock(&m->mu);

    struct ev_node *n = message_node(topic, tlen, msg, plen);
    if (!n) {
        /* Paho keeps it and offers it again later: late beats lost. */
        ferry_log_err("mqtt %s: out of memory, message on '%.64s' left with Paho", m->client_id,
                      topic);
        return 0;
    }
    pthread_mutex_lock(&m->mu);
    push_locked(m, n);
    if (m->queued_bytes > m->queue_max && !m->over_cap) {
        m->over_cap = true;
        ferry_log_warn(
            "mqtt %s: %zu bytes of events wait for the loop (cap %zu) on topics it may not "
            "drop: the sender outruns us",
            m->client_id, m->queued_bytes, m->queue_max);
    }
    pthread_mutex_unlock(&m->mu);

consumed:
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_publish_ok(void *ctx, MQTTAsync_successData5 *r)
{
    struct ferry_mqtt *m = ctx;
    pthread_mutex_lock(&m->mu);
    if ((int)r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
        push_event_locked(m, FERRY_MQTT_EV_PUBLISH_FAILED, r->token, (int)r->reasonCode,
                          "broker: %s (0x%02x)", MQTTReasonCode_toString(r->reasonCode),
                          (unsigned)r->reasonCode);
    else
        push_event_locked(m, FERRY_MQTT_EV_PUBLISHED, r->token, 0, NULL);
    pthread_mutex_unlock(&m->mu);
}

static void on_publish_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    struct ferry_mqtt *m = ctx;
    char why[REASON_MAX];
    pthread_mutex_lock(&m->mu);
    describe_failure(m, r, why, sizeof(why));
    push_event_locked(m, FERRY_MQTT_EV_PUBLISH_FAILED, r->token, failure_code(r), "%s", why);
    pthread_mutex_unlock(&m->mu);
}

/* For one filter the SUBACK reason code is the granted QoS, or >= 0x80 for
 * a refusal (an ACL denial, say). */
static void on_subscribe_ok(void *ctx, MQTTAsync_successData5 *r)
{
    struct ferry_mqtt *m = ctx;
    int rc = (int)r->reasonCode;
    pthread_mutex_lock(&m->mu);
    if (rc >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
        push_event_locked(m, FERRY_MQTT_EV_SUBSCRIBE_FAILED, r->token, rc, "broker: %s (0x%02x)",
                          MQTTReasonCode_toString(r->reasonCode), (unsigned)rc);
    } else {
        struct ev_node *n = node_new(FERRY_MQTT_EV_SUBSCRIBED);
        if (n) {
            n->ev.token = r->token;
            n->ev.qos = rc;
            push_locked(m, n);
        } else {
            ferry_log_err("mqtt %s: out of memory, subscribed event lost", m->client_id);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

static void on_subscribe_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    struct ferry_mqtt *m = ctx;
    char why[REASON_MAX];
    pthread_mutex_lock(&m->mu);
    describe_failure(m, r, why, sizeof(why));
    push_event_locked(m, FERRY_MQTT_EV_SUBSCRIBE_FAILED, r->token, failure_code(r), "%s", why);
    pthread_mutex_unlock(&m->mu);
}

static void on_unsubscribe_ok(void *ctx, MQTTAsync_successData5 *r)
{
    struct ferry_mqtt *m = ctx;
    pthread_mutex_lock(&m->mu);
    push_event_locked(m, FERRY_MQTT_EV_UNSUBSCRIBED, r->token, 0, NULL);
    pthread_mutex_unlock(&m->mu);
}

/* Our own DISCONNECT (ferry_mqtt_disconnect()) went out, or could not: the
 * link is down either way, for the reason the caller gave. */
static void on_own_disconnect(void *ctx)
{
    struct ferry_mqtt *m = ctx;
    pthread_mutex_lock(&m->mu);
    link_down_locked(m, m->disc_reason, 0);
    pthread_mutex_unlock(&m->mu);
}

static void on_own_disconnect_ok(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    on_own_disconnect(ctx);
}

static void on_own_disconnect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)r;
    on_own_disconnect(ctx);
}

static void disconnect_done(struct ferry_mqtt *m)
{
    pthread_mutex_lock(&m->mu);
    m->disc_done = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->mu);
}

static void on_disconnect_ok(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    disconnect_done(ctx);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)r;
    disconnect_done(ctx);
}

/* ---- validation ------------------------------------------------------- */

/* "mqtt://host[:port]" -> "tcp://host:port", "mqtts://..." -> "ssl://...".
 * Paho 1.3.12 accepts mqtt:// and mqtts:// itself, but mapping here keeps
 * other schemes (ws://, plain host names) out and makes the port explicit. */
static enum ferry_err map_url(const char *url, char **out, bool *tls, struct ferry_diag *d)
{
    const char *scheme, *auth, *dflt_port;
    bool secure = strncmp(url, "mqtts://", 8) == 0;
    if (strncmp(url, "mqtt://", 7) == 0) {
        scheme = "tcp://";
        auth = url + 7;
        dflt_port = ":1883";
    } else if (secure) {
        scheme = "ssl://";
        auth = url + 8;
        dflt_port = ":8883";
    } else {
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "mqtt: url '%.200s' must start with mqtt:// or mqtts://", url);
    }
    size_t len = strlen(auth);
    if (memchr(auth, '@', len))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "mqtt: url '%.*s...' holds a user name or password: give them with "
                          "--mqtt-username and --mqtt-password-file instead (a password on the "
                          "command line is visible to every user of the host)",
                          (int)(auth - url), url);
    if (len == 0 || len > URL_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "mqtt: url '%.200s' needs a host of 1 to %u bytes", url, URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)auth[i];
        if (c <= 0x20 || c >= 0x7f || strchr("/?#@\\", c))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "mqtt: url '%.200s' must be scheme://host[:port] only", url);
    }
    const char *colon = strrchr(auth, ':');
    const char *bracket = strrchr(auth, ']');
    bool has_port = colon && (!bracket || colon > bracket);
    if (has_port) {
        const char *p = colon + 1;
        size_t plen = strlen(p);
        long port = plen >= 1 && plen <= 5 && strspn(p, "0123456789") == plen ? atol(p) : 0;
        if (colon == auth || port < 1 || port > 65535)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "mqtt: url '%.200s' has a bad host or port",
                              url);
    }
    size_t need = strlen(scheme) + len + strlen(dflt_port) + 1;
    char *s = malloc(need);
    if (!s)
        return ferry_fail(d, FERRY_E_NOMEM, "mqtt: out of memory");
    snprintf(s, need, "%s%s%s", scheme, auth, has_port ? "" : dflt_port);
    *out = s;
    *tls = secure;
    return FERRY_OK;
}

/* A topic name to publish to: non-empty, no wildcards, within MQTT's
 * string length. Paho checks UTF-8 itself. */
static bool topic_name_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    return n > 0 && n <= MQTT_STRING_MAX && !strpbrk(t, "+#");
}

/* A filter: '+' and '#' only as whole levels, '#' only last. */
static bool topic_filter_ok(const char *f)
{
    size_t n = f ? strlen(f) : 0;
    if (n == 0 || n > MQTT_STRING_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool level_start = i == 0 || f[i - 1] == '/';
        bool level_end = i + 1 == n || f[i + 1] == '/';
        if (f[i] == '+' && !(level_start && level_end))
            return false;
        if (f[i] == '#' && !(level_start && i + 1 == n))
            return false;
    }
    return true;
}

static enum ferry_err check_opts(const struct ferry_mqtt_opts *o, struct ferry_diag *d)
{
    if (!o->url)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "mqtt: url is missing");
    size_t idlen = o->client_id ? strlen(o->client_id) : 0;
    if (idlen == 0 || idlen > CLIENT_ID_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "mqtt: client id must be 1 to %u bytes",
                          CLIENT_ID_MAX);
    if (!o->clean_start && o->session_expiry == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "mqtt: client '%s': a persistent session needs session_expiry > 0",
                          o->client_id);
    size_t ndrop = 0;
    for (; o->droppable && o->droppable[ndrop]; ndrop++) {
        if (ndrop == FERRY_MQTT_DROPPABLE_MAX || !topic_filter_ok(o->droppable[ndrop]))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "mqtt: droppable filters must be at most %d valid filters",
                              FERRY_MQTT_DROPPABLE_MAX);
    }
    if (o->keepalive < 0 || o->keepalive > 65535)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "mqtt: keepalive %d is outside 0..65535",
                          o->keepalive);
    if (o->will_topic) {
        if (!topic_name_ok(o->will_topic))
            return ferry_fail(d, FERRY_E_INVALID_ARG, "mqtt: will topic '%.200s' is not valid",
                              o->will_topic);
        if (o->will_len > FERRY_MQTT_MAX_PAYLOAD || (o->will_len && !o->will_payload))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "mqtt: will payload of %zu bytes is not valid", o->will_len);
    }
    return FERRY_OK;
}

/* ---- construction ----------------------------------------------------- */

/* TLS settings must match the URL's scheme; checked after the URL parsed. */
static enum ferry_err check_tls_files(const struct ferry_mqtt_opts *o, bool tls,
                                      struct ferry_diag *d)
{
    if (tls) {
        /* Without a CA Paho would trust the system store, so any public CA's
         * certificate for the broker's name would pass: demand the fleet's. */
        if (!o->ca_file)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "mqtt: %s needs the CA that signed the broker's certificate "
                              "(--ca-file)",
                              o->url);
        if (!o->cert_file != !o->key_file)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "mqtt: a client certificate needs both --cert-file and --key-file");
        /* Checked here, once, so a typo is named instead of failing every
         * reconnect with a bare TLS error. */
        const char *files[] = {o->ca_file, o->cert_file, o->key_file};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            if (files[i] && access(files[i], R_OK) != 0)
                return ferry_fail(d, FERRY_E_NOT_FOUND, "mqtt: cannot read %s: %s", files[i],
                                  strerror(errno));
        }
    } else if (o->ca_file || o->cert_file || o->key_file) {
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "mqtt: TLS files were given but %s is not an mqtts:// URL", o->url);
    }
    return FERRY_OK;
}

static enum ferry_err dup_opt(const char *s, char **out)
{
    if (!s)
        return FERRY_OK;
    *out = strdup(s);
    return *out ? FERRY_OK : FERRY_E_NOMEM;
}

static enum ferry_err copy_opts(struct ferry_mqtt *m, const struct ferry_mqtt_opts *o)
{
    if (dup_opt(o->url, &m->url) || dup_opt(o->client_id, &m->client_id) ||
        dup_opt(o->ca_file, &m->ca_file) || dup_opt(o->cert_file, &m->cert_file) ||
        dup_opt(o->key_file, &m->key_file) || dup_opt(o->username, &m->username) ||
        dup_opt(o->will_topic, &m->will_topic))
        return FERRY_E_NOMEM;
    if (o->will_topic) {
        /* Never NULL, even when empty: Paho reads a NULL will as "no payload
         * given" rather than as an empty one. */
        m->will_payload = malloc(o->will_len ? o->will_len : 1);
        if (!m->will_payload)
            return FERRY_E_NOMEM;
        if (o->will_len)
            memcpy(m->will_payload, o->will_payload, o->will_len);
        m->will_len = o->will_len;
        m->will_retain = o->will_retain;
    }
    m->clean_start = o->clean_start;
    m->session_expiry = o->session_expiry;
    m->keepalive = o->keepalive ? o->keepalive : DEFAULT_KEEPALIVE_S;
    m->queue_max = o->queue_max ? o->queue_max : FERRY_MQTT_QUEUE_MAX_BYTES;
    for (size_t i = 0; o->droppable && o->droppable[i]; i++) {
        if (dup_opt(o->droppable[i], &m->droppable[i]) != FERRY_OK)
            return FERRY_E_NOMEM;
    }
    return FERRY_OK;
}

static enum ferry_err init_sync(struct ferry_mqtt *m)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return FERRY_E_NOMEM;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return FERRY_E_NOMEM;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        pthread_cond_destroy(&m->cond);
        return FERRY_E_NOMEM;
    }
    return FERRY_OK;
}

static enum ferry_err create_paho(struct ferry_mqtt *m, struct ferry_diag *d)
{
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    co.MQTTVersion = MQTTVERSION_5;
    co.sendWhileDisconnected = 0;
    /* Our journals are the durable store; Paho's file persistence is not. */
    int rc = MQTTAsync_createWithOptions(&m->cli, m->paho_url, m->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        m->cli = NULL;
        return ferry_fail(d, FERRY_E_INVALID_ARG, "mqtt: cannot create client '%s' for %s: %s",
                          m->client_id, m->url, paho_str(rc));
    }
    if (MQTTAsync_setCallbacks(m->cli, m, on_connection_lost, on_message, NULL) !=
            MQTTASYNC_SUCCESS ||
        MQTTAsync_setDisconnected(m->cli, m, on_disconnected) != MQTTASYNC_SUCCESS)
        return ferry_fail(d, FERRY_E_IO, "mqtt: cannot set callbacks for client '%s'",
                          m->client_id);
    return FERRY_OK;
}

enum ferry_err ferry_mqtt_new(const struct ferry_mqtt_opts *opts, struct ferry_mqtt **out,
                              struct ferry_diag *d)
{
    enum ferry_err err = check_opts(opts, d);
    if (err)
        return err;
    struct ferry_mqtt *m = calloc(1, sizeof(*m));
    if (!m)
        return ferry_fail(d, FERRY_E_NOMEM, "mqtt: out of memory");
    m->efd = -1;
    if (init_sync(m) != FERRY_OK) {
        free(m);
        return ferry_fail(d, FERRY_E_NOMEM, "mqtt: cannot create a mutex");
    }
    err = copy_opts(m, opts);
    if (err) {
        ferry_fail(d, err, "mqtt: out of memory");
        goto out;
    }
    err = map_url(opts->url, &m->paho_url, &m->tls, d);
    if (err)
        goto out;
    err = check_tls_files(opts, m->tls, d);
    if (err)
        goto out;
    m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m->efd < 0) {
        err = ferry_fail(d, FERRY_E_IO, "mqtt: eventfd: %s", strerror(errno));
        goto out;
    }
    err = create_paho(m, d);
out:
    if (err) {
        ferry_mqtt_free(m);
        return err;
    }
    *out = m;
    return FERRY_OK;
}

/* ---- teardown --------------------------------------------------------- */

static void wait_disconnect(struct ferry_mqtt *m)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += DISCONNECT_WAIT_MS / 1000;
    until.tv_nsec += (long)(DISCONNECT_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    while (!m->disc_done) {
        if (pthread_cond_timedwait(&m->cond, &m->mu, &until) == ETIMEDOUT) {
            ferry_log_warn("mqtt %s: disconnect did not complete in %d ms", m->client_id,
                           DISCONNECT_WAIT_MS);
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* A clean DISCONNECT tells the broker not to publish the will and lets
 * in-flight publishes finish; waiting for its completion also means no
 * network callback is still running when the client is destroyed. */
static void disconnect_paho(struct ferry_mqtt *m)
{
    if (!MQTTAsync_isConnected(m->cli))
        return;
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer5;
    o.timeout = DISCONNECT_TIMEOUT_MS;
    o.onSuccess5 = on_disconnect_ok;
    o.onFailure5 = on_disconnect_fail;
    o.context = m;
    pthread_mutex_lock(&m->mu);
    m->disc_done = false;
    pthread_mutex_unlock(&m->mu);
    if (MQTTAsync_disconnect(m->cli, &o) == MQTTASYNC_SUCCESS)
        wait_disconnect(m);
}

void ferry_mqtt_free(struct ferry_mqtt *m)
{
    if (!m)
        return;
    if (m->cli) {
        disconnect_paho(m);
        /* May run failure callbacks for queued commands, on this thread. */
        MQTTAsync_destroy(&m->cli);
    }
    struct ev_node *n = m->head;
    while (n) {
        struct ev_node *next = n->next;
        ferry_mqtt_ev_free(&n->ev);
        n = next;
    }
    if (m->efd >= 0)
        close(m->efd);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
    free(m->url);
    free(m->paho_url);
    free(m->client_id);
    free(m->ca_file);
    free(m->cert_file);
    free(m->key_file);
    free(m->username);
    free(m->will_topic);
    free(m->will_payload);
    for (size_t i = 0; m->droppable[i]; i++)
        free(m->droppable[i]);
    free(m);
}

/* ---- loop-thread API -------------------------------------------------- */

uint64_t ferry_mqtt_dropped(struct ferry_mqtt *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->dropped;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int ferry_mqtt_fd(const struct ferry_mqtt *m)
{
    return m->efd;
}

bool ferry_mqtt_is_connected(const struct ferry_mqtt *m)
{
    return m->connected;
}

static enum ferry_err start_connect(struct ferry_mqtt *m, MQTTAsync_connectOptions *co,
                                    const char *url, struct ferry_diag *d)
{
    pthread_mutex_lock(&m->mu);
    m->link = LINK_CONNECTING;
    m->tls_err[0] = 0;
    snprintf(m->cur_url, sizeof(m->cur_url), "%s", url);
    pthread_mutex_unlock(&m->mu);

    int rc = MQTTAsync_connect(m->cli, co);
    if (rc == MQTTASYNC_SUCCESS) {
        m->connecting = true;
        return FERRY_OK;
    }
    pthread_mutex_lock(&m->mu);
    m->link = LINK_IDLE;
    pthread_mutex_unlock(&m->mu);
    return ferry_fail(d, rc == MQTTASYNC_OPERATION_INCOMPLETE ? FERRY_E_BUSY : FERRY_E_IO,
                      "mqtt: client '%s' cannot start connecting to %s: %s (code %d)", m->client_id,
                      url, paho_str(rc), rc);
}

enum ferry_err ferry_mqtt_connect(struct ferry_mqtt *m, struct ferry_diag *d)
{
    return ferry_mqtt_connect_to(m, NULL, d);
}

enum ferry_err ferry_mqtt_url_check(const char *url, bool *tls, struct ferry_diag *d)
{
    char *paho = NULL;
    bool secure = false;
    enum ferry_err err = url ? map_url(url, &paho, &secure, d)
                             : ferry_fail(d, FERRY_E_INVALID_ARG, "mqtt: url is missing");
    free(paho);
    if (err == FERRY_OK && tls)
        *tls = secure;
    return err;
}

enum ferry_err ferry_mqtt_connect_to(struct ferry_mqtt *m, const struct ferry_mqtt_attempt *a,
                                     struct ferry_diag *d)
{
    if (m->connected || m->connecting)
        return ferry_fail(d, FERRY_E_BUSY, "mqtt: client '%s' is already %s", m->client_id,
                          m->connected ? "connected" : "connecting");
    const char *url = a && a->url ? a->url : m->url;
    char *paho_url = NULL;
    bool tls = false;
    if (url != m->url) {
        enum ferry_err err = map_url(url, &paho_url, &tls, d);
        if (err != FERRY_OK)
            return err;
        if (tls != m->tls) {
            free(paho_url);
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "mqtt: %.200s and %.200s differ in TLS: every broker of a client "
                              "takes the same scheme",
                              url, m->url);
        }
    }
    if (a && a->password && (!m->username || a->password_len > PASSWORD_MAX)) {
        free(paho_url);
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          m->username ? "mqtt: a password of more than %u bytes"
                                      : "mqtt: a password needs a user name (%u bytes at most)",
                          PASSWORD_MAX);
    }

    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;

    co.keepAliveInterval = m->keepalive;
    co.cleanstart = m->clean_start;
    co.connectTimeout = CONNECT_TIMEOUT_S;
    co.automaticReconnect = 0;
    co.username = m->username;
    co.onSuccess5 = on_connect_ok;
    co.onFailure5 = on_connect_fail;
    co.context = m;
    if (paho_url) {
        co.serverURIs = &paho_url;
        co.serverURIcount = 1;
    }
    if (a && a->password) {
        co.binarypwd.data = a->password;
        co.binarypwd.len = (int)a->password_len;
    }
    if (!m->clean_start) {
        MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
        p.value.integer4 = m->session_expiry;
        if (MQTTProperties_add(&props, &p) != 0) {
            free(paho_url);
            return ferry_fail(d, FERRY_E_NOMEM, "mqtt: out of memory");
        }
        co.connectProperties = &props;
    }
    if (m->will_topic) {
        will.topicName = m->will_topic;
        will.message = NULL;
        will.payload.data = m->will_payload;
        will.payload.len = (int)m->will_len;
        will.retained = m->will_retain;
        will.qos = WILL_QOS;
        co.will = &will;
    }
    if (m->tls) {
        ssl.trustStore = m->ca_file;
        ssl.keyStore = m->cert_file;
        ssl.privateKey = m->key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1; /* host name check; Paho's default is off */
        ssl.sslVersion = MQTT_SSL_VERSION_DEFAULT;
        ssl.ssl_error_cb = on_tls_error;
        ssl.ssl_error_context = m;
        co.ssl = &ssl;
    }
    /* Paho copies the options, properties, URL and password included. */
    enum ferry_err err = start_connect(m, &co, url, d);
    MQTTProperties_free(&props);
    free(paho_url);
    return err;
}

void ferry_mqtt_disconnect(struct ferry_mqtt *m, const char *reason)
{
    pthread_mutex_lock(&m->mu);
    snprintf(m->disc_reason, sizeof(m->disc_reason), "%s", reason ? reason : "closed by us");
    pthread_mutex_unlock(&m->mu);
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer5;
    o.timeout = DISCONNECT_TIMEOUT_MS;
    o.onSuccess5 = on_own_disconnect_ok;
    o.onFailure5 = on_own_disconnect_fail;
    o.context = m;
    /* Not connected (or no longer): the attempt, if any, reports itself. */
    if (MQTTAsync_disconnect(m->cli, &o) != MQTTASYNC_SUCCESS)
        ferry_log_debug("mqtt %s: nothing to disconnect", m->client_id);
}

enum ferry_err ferry_mqtt_next(struct ferry_mqtt *m, struct ferry_mqtt_ev **out)
{
    pthread_mutex_lock(&m->mu);
    struct ev_node *n = m->head;
    if (!n) {
        /* Reset under mu: a callback's push and its write cannot slip in
         * between the emptiness check and the reset. */
        uint64_t v;
        ssize_t r = read(m->efd, &v, sizeof(v));
        (void)r;
        pthread_mutex_unlock(&m->mu);
        return FERRY_E_NOT_FOUND;
    }
    m->head = n->next;
    if (!m->head)
        m->tail = NULL;
    m->queued_bytes -= n->cost;
    uint64_t episode = 0;
    if (m->over_cap && m->queued_bytes < m->queue_max / 2) {
        m->over_cap = false;
        episode = m->dropped_episode;
        m->dropped_episode = 0;
    }
    pthread_mutex_unlock(&m->mu);
    if (episode)
        ferry_log_warn("mqtt %s: the queue drained; %llu messages were dropped while it was full",
                       m->client_id, (unsigned long long)episode);

    switch (n->ev.type) {
    case FERRY_MQTT_EV_CONNECTED:
        m->connected = true;
        m->connecting = false;
        m->max_packet = n->ev.caps.max_packet;
        break;
    case FERRY_MQTT_EV_CONNECT_FAILED:
        m->connecting = false;
        break;
    case FERRY_MQTT_EV_LOST:
        m->connected = false;
        break;
    default:
        break;
    }
    n->next = NULL;
    *out = &n->ev;
    return FERRY_OK;
}

void ferry_mqtt_ev_free(struct ferry_mqtt_ev *ev)
{
    if (!ev)
        return;
    free(ev->topic);
    free(ev->payload);
    free(ev); /* the enclosing ev_node: ev is its first member */
}

static enum ferry_err paho_send_err(int rc)
{
    switch (rc) {
    case MQTTASYNC_SUCCESS:
        return FERRY_OK;
    case MQTTASYNC_DISCONNECTED:
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
    case MQTTASYNC_NO_MORE_MSGIDS:
    case MQTTASYNC_OPERATION_INCOMPLETE:
        return FERRY_E_BUSY;
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_NULL_PARAMETER:
    case MQTTASYNC_BAD_MQTT_OPTION:
        return FERRY_E_INVALID_ARG;
    default:
        return FERRY_E_IO;
    }
}

enum ferry_err ferry_mqtt_publish(struct ferry_mqtt *m, const char *topic, const void *payload,
                                  size_t len, int qos, bool retain, int *token)
{
    if (!topic_name_ok(topic) || qos < 0 || qos > 2 || (len && !payload))
        return FERRY_E_INVALID_ARG;
    if (len > FERRY_MQTT_MAX_PAYLOAD)
        return FERRY_E_TOO_LARGE;
    if (!m->connected)
        return FERRY_E_BUSY;
    if (m->max_packet && ferry_mqtt_packet_size(topic, len) > m->max_packet)
        return FERRY_E_TOO_LARGE;

    MQTTAsync_message msg = MQTTAsync_message_initializer;
    /* Paho copies the payload and never writes through this pointer. */
    msg.payload = (void *)(uintptr_t)(len ? payload : "");
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retain;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    /* QoS 0 has no acknowledgement to report. */
    if (qos > 0) {
        ro.onSuccess5 = on_publish_ok;
        ro.onFailure5 = on_publish_fail;
        ro.context = m;
    }
    int rc = MQTTAsync_sendMessage(m->cli, topic, &msg, &ro);
    enum ferry_err err = paho_send_err(rc);
    if (err == FERRY_E_IO)
        ferry_log_warn("mqtt %s: publish to '%.64s' failed: %s (code %d)", m->client_id, topic,
                       paho_str(rc), rc);
    if (err == FERRY_OK && token)
        *token = ro.token;
    return err;
}

enum ferry_err ferry_mqtt_subscribe(struct ferry_mqtt *m, const char *filter, int qos, int *token)
{
    if (!topic_filter_ok(filter) || qos < 0 || qos > 2)
        return FERRY_E_INVALID_ARG;
    if (!m->connected)
        return FERRY_E_BUSY;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = on_subscribe_ok;
    ro.onFailure5 = on_subscribe_fail;
    ro.context = m;
    ro.subscribeOptions.noLocal = 0;
    int rc = MQTTAsync_subscribe(m->cli, filter, qos, &ro);
    enum ferry_err err = paho_send_err(rc);
    if (err == FERRY_E_IO)
        ferry_log_warn("mqtt %s: subscribe to '%.64s' failed: %s (code %d)", m->client_id, filter,
                       paho_str(rc), rc);
    if (err == FERRY_OK && token)
        *token = ro.token;
    return err;
}

enum ferry_err ferry_mqtt_unsubscribe(struct ferry_mqtt *m, const char *filter, int *token)
{
    if (!topic_filter_ok(filter))
        return FERRY_E_INVALID_ARG;
    if (!m->connected)
        return FERRY_E_BUSY;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = on_unsubscribe_ok;
    ro.onFailure5 = on_subscribe_fail;
    ro.context = m;
    int rc = MQTTAsync_unsubscribe(m->cli, filter, &ro);
    enum ferry_err err = paho_send_err(rc);
    if (err == FERRY_OK && token)
        *token = ro.token;
    return err;
}

size_t ferry_mqtt_packet_size(const char *topic, size_t len)
{
    /* Topic length, packet identifier and an empty property length. */
    size_t rest = 2 + strlen(topic) + 2 + 1 + len;
    size_t varint = rest < 128 ? 1 : rest < 16384 ? 2 : rest < 2097152 ? 3 : 4;
    return 1 + varint + rest;
}
