#include "gw_uplink.h"

#include "ferry_log.h"
#include "ferry_random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define SESSION_EXPIRY_S (7u * 24u * 3600u)
#define BACKOFF_MIN_MS   500u
#define BACKOFF_MAX_MS   30000u

struct gw_uplink {
    struct ferry_loop *loop;
    struct ferry_mqtt *mqtt;
    struct gw_uplink_handlers h;
    char *fleet;
    char *id;
    char t_release[FERRY_TOPIC_MAX]; /* filter: release/+ */
    char t_root[FERRY_TOPIC_MAX];    /* filter: root/+ */
    char t_ts[FERRY_TOPIC_MAX];      /* filter: timestamp/+ */
    char t_data[FERRY_TOPIC_MAX];
    char t_ack[FERRY_TOPIC_MAX];
    char t_presence[FERRY_TOPIC_MAX];
    char t_rollout[FERRY_TOPIC_MAX]; /* filter: rollout/<id>/+ */
    struct ferry_backoff backoff;
    uint64_t reconnect_timer;
    int pending_subs;
    bool up;
};

static void try_connect(void *arg);

static void schedule_reconnect(struct gw_uplink *u)
{
    if (u->reconnect_timer)
        return;
    uint32_t delay = ferry_backoff_next(&u->backoff, ferry_random_u32());
    LOG_INFO("uplink: reconnecting in %u ms", delay);
    u->reconnect_timer = ferry_loop_timer(u->loop, delay, try_connect, u);
}

static void try_connect(void *arg)
{
    struct gw_uplink *u = arg;
    struct ferry_diag d = {{0}};
    u->reconnect_timer = 0;
    enum ferry_err err = ferry_mqtt_connect(u->mqtt, &d);
    if (err != FERRY_OK) {
        LOG_WARN("uplink: connect: %s", ferry_diag_str(&d, err));
        schedule_reconnect(u);
    }
}

static void set_down(struct gw_uplink *u)
{
    bool was_up = u->up;
    u->up = false;
    if (was_up && u->h.on_down)
        u->h.on_down(u->h.arg);
}

static void subscribe_all(struct gw_uplink *u)
{
    const struct {
        const char *filter;
        int qos;
    } subs[] = {{u->t_release, 1}, {u->t_data, 0}, {u->t_ack, 1},
                {u->t_root, 1},    {u->t_ts, 1},   {u->t_rollout, 1}};
    u->pending_subs = 0;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (ferry_mqtt_subscribe(u->mqtt, subs[i].filter, subs[i].qos, NULL) == FERRY_OK)
            u->pending_subs++;
        else
            LOG_ERR("uplink: cannot subscribe to %s", subs[i].filter);
    }
}

static void on_connected(struct gw_uplink *u, bool session_present)
{
    LOG_INFO("uplink: connected (session %s)", session_present ? "resumed" : "new");
    ferry_backoff_reset(&u->backoff);
    static const char online[] = "online";
    if (ferry_mqtt_publish(u->mqtt, u->t_presence, online, sizeof(online) - 1, 1, true, NULL) !=
        FERRY_OK)
        LOG_WARN("uplink: could not publish presence");
    /* Subscribe on every connect: a session the broker dropped (expiry,
     * restart without persistence) must not leave the gateway deaf. */
    subscribe_all(u);
}

/* True if topic matches filter "…/+" with an identifier as its last level,
 * copied into level. */
static bool under(const char *topic, const char *filter, char level[FERRY_ID_MAX + 1])
{
    size_t prefix = strlen(filter) - 1; /* "…/" without the '+' */
    return strncmp(topic, filter, prefix) == 0 && !strchr(topic + prefix, '/') &&
           ferry_topic_last_level(topic, level, FERRY_ID_MAX + 1) == FERRY_OK &&
           ferry_id_valid(level);
}

static void on_message(struct gw_uplink *u, const struct ferry_mqtt_ev *ev)
{
    if (strcmp(ev->topic, u->t_data) == 0) {
        if (u->h.on_chunk)
            u->h.on_chunk(u->h.arg, ev->payload, ev->len);
        return;
    }
    if (strcmp(ev->topic, u->t_ack) == 0) {
        if (u->h.on_status_ack)
            u->h.on_status_ack(u->h.arg, ev->payload, ev->len);
        return;
    }
    char level[FERRY_ID_MAX + 1];
    if (under(ev->topic, u->t_rollout, level)) {
        if (u->h.on_rollout)
            u->h.on_rollout(u->h.arg, level, ev->payload, ev->len);
        return;
    }
    if (under(ev->topic, u->t_release, level)) {
        if (u->h.on_release)
            u->h.on_release(u->h.arg, level, ev->payload, ev->len);
        return;
    }
    if (under(ev->topic, u->t_root, level)) {
        if (u->h.on_root)
            u->h.on_root(u->h.arg, level, ev->payload, ev->len);
        return;
    }
    if (under(ev->topic, u->t_ts, level)) {
        if (u->h.on_timestamp)
            u->h.on_timestamp(u->h.arg, level, ev->payload, ev->len);
        return;
    }
    LOG_WARN("uplink: message on unexpected topic '%s' ignored", ev->topic);
}

static void sub_done(struct gw_uplink *u)
{
    if (u->pending_subs > 0 && --u->pending_subs == 0 && !u->up) {
        u->up = true;
        LOG_INFO("uplink: subscribed, link up");
        if (u->h.on_up)
            u->h.on_up(u->h.arg);
    }
}

static void on_mqtt_fd(void *arg, uint32_t events)
{
    struct gw_uplink *u = arg;
    (void)events;
    struct ferry_mqtt_ev *ev;
    while (ferry_mqtt_next(u->mqtt, &ev) == FERRY_OK) {
        switch (ev->type) {
        case FERRY_MQTT_EV_CONNECTED:
            on_connected(u, ev->session_present);
            break;
        case FERRY_MQTT_EV_CONNECT_FAILED:
            LOG_WARN("uplink: connect to broker failed: %s", ev->reason);
            set_down(u);
            schedule_reconnect(u);
            break;
        case FERRY_MQTT_EV_LOST:
            LOG_WARN("uplink: connection lost: %s", ev->reason);
            set_down(u);
            schedule_reconnect(u);
            break;
        case FERRY_MQTT_EV_MESSAGE:
            on_message(u, ev);
            break;
        case FERRY_MQTT_EV_PUBLISHED:
        case FERRY_MQTT_EV_PUBLISH_FAILED:
            if (u->h.on_published)
                u->h.on_published(u->h.arg, ev->token, ev->type == FERRY_MQTT_EV_PUBLISHED);
            break;
        case FERRY_MQTT_EV_SUBSCRIBED:
            sub_done(u);
            break;
        case FERRY_MQTT_EV_SUBSCRIBE_FAILED:
            /* Refused by the broker (ACL): retrying will not help, but the
             * operator must see it, and the other subscriptions still work. */
            LOG_ERR("uplink: subscription refused: %s", ev->reason);
            sub_done(u);
            break;
        }
        ferry_mqtt_ev_free(ev);
    }
}

enum ferry_err gw_uplink_new(struct ferry_loop *loop, const struct gw_uplink_opts *opts,
                             const struct gw_uplink_handlers *h, struct gw_uplink **out,
                             struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    struct gw_uplink *u = calloc(1, sizeof(*u));
    if (!u)
        return ferry_fail(d, FERRY_E_NOMEM, "uplink: out of memory");
    u->loop = loop;
    u->h = *h;
    u->backoff.min_ms = BACKOFF_MIN_MS;
    u->backoff.max_ms = BACKOFF_MAX_MS;
    u->fleet = strdup(opts->fleet);
    u->id = strdup(opts->gateway_id);
    if (!u->fleet || !u->id) {
        err = ferry_fail(d, FERRY_E_NOMEM, "uplink: out of memory");
        goto fail;
    }
    if (ferry_topic(u->t_release, sizeof(u->t_release), FERRY_TOPIC_RELEASE, u->fleet, "+", NULL) !=
            FERRY_OK ||
        ferry_topic(u->t_data, sizeof(u->t_data), FERRY_TOPIC_STREAM_DATA, u->fleet, u->id, NULL) !=
            FERRY_OK ||
        ferry_topic(u->t_ack, sizeof(u->t_ack), FERRY_TOPIC_STATUS_ACK, u->fleet, u->id, NULL) !=
            FERRY_OK ||
        ferry_topic(u->t_presence, sizeof(u->t_presence), FERRY_TOPIC_PRESENCE, u->fleet, u->id,
                    NULL) != FERRY_OK ||
        ferry_topic(u->t_root, sizeof(u->t_root), FERRY_TOPIC_META_ROOT, u->fleet, "+", NULL) !=
            FERRY_OK ||
        ferry_topic(u->t_ts, sizeof(u->t_ts), FERRY_TOPIC_META_TIMESTAMP, u->fleet, "+", NULL) !=
            FERRY_OK ||
        ferry_topic(u->t_rollout, sizeof(u->t_rollout), FERRY_TOPIC_ROLLOUT, u->fleet, u->id,
                    "+") != FERRY_OK) {
        err = ferry_fail(d, FERRY_E_INVALID_ARG,
                         "uplink: fleet '%s' or gateway id '%s' is not a valid identifier",
                         opts->fleet, opts->gateway_id);
        goto fail;
    }
    char client_id[FERRY_TOPIC_MAX];
    snprintf(client_id, sizeof(client_id), "ferry-gw-%s-%s", u->fleet, u->id);
    static const char offline[] = "offline";
    /* Chunks are asked for again on a timeout, and an unacknowledged batch
     * is resent: those two may be dropped under a flood (ferry_mqtt.h). */
    const char *droppable[] = {u->t_data, u->t_ack, NULL};
    struct ferry_mqtt_opts mo = {
        .url = opts->broker,
        .client_id = client_id,
        .ca_file = opts->ca_file,
        .cert_file = opts->cert_file,
        .key_file = opts->key_file,
        .clean_start = false,
        .session_expiry = SESSION_EXPIRY_S,
        .keepalive = 20,
        .will_topic = u->t_presence,
        .will_payload = offline,
        .will_len = sizeof(offline) - 1,
        .will_retain = true,
        .droppable = droppable,
    };
    err = ferry_mqtt_new(&mo, &u->mqtt, d);
    if (err != FERRY_OK)
        goto fail;
    err = ferry_loop_add_fd(loop, ferry_mqtt_fd(u->mqtt), EPOLLIN, on_mqtt_fd, u);
    if (err != FERRY_OK) {
        ferry_fail(d, err, "uplink: cannot watch the MQTT event fd");
        goto fail;
    }
    try_connect(u);
    *out = u;
    return FERRY_OK;
fail:
    gw_uplink_free(u);
    return err;
}

void gw_uplink_free(struct gw_uplink *u)
{
    if (!u)
        return;
    if (u->reconnect_timer)
        ferry_loop_cancel(u->loop, u->reconnect_timer);
    if (u->mqtt) {
        if (ferry_mqtt_is_connected(u->mqtt)) {
            static const char offline[] = "offline";
            if (ferry_mqtt_publish(u->mqtt, u->t_presence, offline, sizeof(offline) - 1, 1, true,
                                   NULL) != FERRY_OK)
                LOG_DEBUG("uplink: could not publish offline presence");
        }
        ferry_loop_del_fd(u->loop, ferry_mqtt_fd(u->mqtt));
        ferry_mqtt_free(u->mqtt);
    }
    free(u->fleet);
    free(u->id);
    free(u);
}

bool gw_uplink_is_up(const struct gw_uplink *u)
{
    return u->up;
}

enum ferry_err gw_uplink_publish(struct gw_uplink *u, enum ferry_topic which, const char *node,
                                 const void *buf, size_t len, int qos, bool retain, int *token)
{
    char topic[FERRY_TOPIC_MAX];
    enum ferry_err err = ferry_topic(topic, sizeof(topic), which, u->fleet, u->id, node);
    if (err != FERRY_OK)
        return err;
    if (!u->up)
        return FERRY_E_BUSY;
    return ferry_mqtt_publish(u->mqtt, topic, buf, len, qos, retain, token);
}
