#include "gw_uplink.h"

#include "ferry_batch.h"
#include "ferry_log.h"
#include "ferry_random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_EXPIRY_S (7u * 24u * 3600u)
#define BACKOFF_MIN_MS   500u
#define BACKOFF_MAX_MS   30000u
#define KEEPALIVE_S      20

struct gw_uplink {
    struct ferry_keeper *keeper;
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
};

static const char online[] = "online";
static const char offline[] = "offline";

/* The last level of a topic under a "…/+" filter, when it is an
 * identifier; false (and a warning) otherwise. */
static bool last_level(const char *topic, char level[FERRY_ID_MAX + 1])
{
    if (ferry_topic_last_level(topic, level, FERRY_ID_MAX + 1) == FERRY_OK && ferry_id_valid(level))
        return true;
    ferry_log_warn("uplink: message on '%.200s' ignored: its last level is not an identifier",
                   topic);
    return false;
}

static void on_data(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct gw_uplink *u = arg;
    if (u->h.on_chunk)
        u->h.on_chunk(u->h.arg, ev->payload, ev->len);
}

static void on_ack(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct gw_uplink *u = arg;
    if (u->h.on_status_ack)
        u->h.on_status_ack(u->h.arg, ev->payload, ev->len);
}

/* The handlers of the "…/+" subscriptions, by kind. */
#define LEVEL_HANDLER(name, field)                                                                 \
    static void name(void *arg, const struct ferry_mqtt_ev *ev)                                    \
    {                                                                                              \
        struct gw_uplink *u = arg;                                                                 \
        char level[FERRY_ID_MAX + 1];                                                              \
        if (u->h.field && last_level(ev->topic, level))                                            \
            u->h.field(u->h.arg, level, ev->payload, ev->len);                                     \
    }
LEVEL_HANDLER(on_release, on_release)
LEVEL_HANDLER(on_root, on_root)
LEVEL_HANDLER(on_timestamp, on_timestamp)
LEVEL_HANDLER(on_rollout, on_rollout)
#undef LEVEL_HANDLER

static void on_up(void *arg, const struct ferry_keeper_link *link)
{
    struct gw_uplink *u = arg;
    (void)link;
    if (ferry_keeper_publish(u->keeper, u->t_presence, online, sizeof(online) - 1, 1, true, NULL) !=
        FERRY_OK)
        ferry_log_warn("uplink: could not publish presence");
    if (u->h.on_up)
        u->h.on_up(u->h.arg);
}

static void on_down(void *arg, const char *reason)
{
    struct gw_uplink *u = arg;
    (void)reason;
    if (u->h.on_down)
        u->h.on_down(u->h.arg);
}

static void on_published(void *arg, int token, bool ok, const char *reason)
{
    struct gw_uplink *u = arg;
    (void)reason;
    if (u->h.on_published)
        u->h.on_published(u->h.arg, token, ok);
}

static enum ferry_err build_topics(struct gw_uplink *u, struct ferry_diag *d)
{
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
                    "+") != FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "uplink: fleet '%s' or gateway id '%s' is not a valid identifier",
                          u->fleet, u->id);
    return FERRY_OK;
}

static enum ferry_err subscribe_all(struct gw_uplink *u, struct ferry_diag *d)
{
    const struct ferry_keeper_sub subs[] = {
        {u->t_release, 1, on_release, u}, {u->t_data, 0, on_data, u},
        {u->t_ack, 1, on_ack, u},         {u->t_root, 1, on_root, u},
        {u->t_ts, 1, on_timestamp, u},    {u->t_rollout, 1, on_rollout, u},
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        enum ferry_err err = ferry_keeper_subscribe(u->keeper, &subs[i]);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "uplink: cannot subscribe to %s", subs[i].filter);
    }
    return FERRY_OK;
}

enum ferry_err gw_uplink_new(struct ferry_loop *loop, const struct gw_uplink_opts *opts,
                             const struct gw_uplink_handlers *h, struct gw_uplink **out,
                             struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    struct gw_uplink *u = calloc(1, sizeof(*u));
    if (!u)
        return ferry_fail(d, FERRY_E_NOMEM, "uplink: out of memory");
    u->h = *h;
    u->fleet = strdup(opts->fleet);
    u->id = strdup(opts->gateway_id);
    if (!u->fleet || !u->id) {
        err = ferry_fail(d, FERRY_E_NOMEM, "uplink: out of memory");
        goto fail;
    }
    err = build_topics(u, d);
    if (err != FERRY_OK)
        goto fail;
    char client_id[FERRY_TOPIC_MAX], status[FERRY_TOPIC_MAX];
    snprintf(client_id, sizeof(client_id), "ferry-gw-%s-%s", u->fleet, u->id);
    /* The largest message it sends: a full status batch. */
    if (ferry_topic(status, sizeof(status), FERRY_TOPIC_STATUS, u->fleet, u->id, NULL) != FERRY_OK)
        status[0] = 0;
    /* Chunks are asked for again on a timeout, and an unacknowledged batch
     * is resent: those two may be dropped under a flood (ferry_mqtt.h). */
    const char *droppable[] = {u->t_data, u->t_ack, NULL};
    struct ferry_keeper_opts ko = {
        .conf = opts->mqtt,
        .client_id = client_id,
        .name = "uplink",
        .persistent = true,
        .session_expiry = SESSION_EXPIRY_S,
        .keepalive = KEEPALIVE_S,
        .will_topic = u->t_presence,
        .will_payload = offline,
        .will_len = sizeof(offline) - 1,
        .will_retain = true,
        .droppable = droppable,
        .needs = {.qos1 = true,
                  .retain = true,
                  .wildcards = true,
                  .max_packet = ferry_mqtt_packet_size(status, FERRY_BATCH_MAX_BYTES)},
        .backoff_min_ms = BACKOFF_MIN_MS,
        .backoff_max_ms = BACKOFF_MAX_MS,
    };
    struct ferry_keeper_events ev = {
        .arg = u, .on_up = on_up, .on_down = on_down, .on_published = on_published};
    err = ferry_keeper_new(loop, &ko, &ev, &u->keeper, d);
    if (err == FERRY_OK)
        err = subscribe_all(u, d);
    if (err != FERRY_OK)
        goto fail;
    ferry_keeper_start(u->keeper);
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
    if (u->keeper) {
        /* Best effort: the clean disconnect that follows suppresses the
         * will, so say it ourselves. */
        if (ferry_keeper_publish(u->keeper, u->t_presence, offline, sizeof(offline) - 1, 1, true,
                                 NULL) != FERRY_OK)
            ferry_log_debug("uplink: could not publish offline presence");
        ferry_keeper_free(u->keeper);
    }
    free(u->fleet);
    free(u->id);
    free(u);
}

bool gw_uplink_is_up(const struct gw_uplink *u)
{
    return ferry_keeper_is_up(u->keeper);
}

enum ferry_err gw_uplink_publish(struct gw_uplink *u, enum ferry_topic which, const char *node,
                                 const void *buf, size_t len, int qos, bool retain, int *token)
{
    char topic[FERRY_TOPIC_MAX];
    enum ferry_err err = ferry_topic(topic, sizeof(topic), which, u->fleet, u->id, node);
    if (err != FERRY_OK)
        return err;
    if (!ferry_keeper_is_up(u->keeper))
        return FERRY_E_BUSY;
    return ferry_keeper_publish(u->keeper, topic, buf, len, qos, retain, token);
}
