/* An MQTT v5 client for an event loop: Paho MQTTAsync underneath, but no
 * application code ever runs on Paho's threads.
 *
 * Paho's callbacks only copy what happened into a queue and write an
 * eventfd (ferry_mqtt_fd()). The loop, when that fd is readable, drains the
 * queue with ferry_mqtt_next() and acts. The queue cannot push back on the
 * broker: Paho 1.3.12 acknowledges a QoS 1 message when it reads it, and a
 * message refused by the callback stays in Paho's own unbounded list until
 * the next packet for the client arrives (a keepalive later on an idle
 * link), so refusing would stall delivery and save no memory.
 *
 * What bounds the queue instead is dropping: the caller names
 * (opts.droppable) the topic filters whose messages its protocol already
 * retries or can do without: chunks a gateway asks for again on its
 * timeout, stream requests a gateway repeats, status batches resent until
 * acknowledged, acks whose batch is then resent, twins that are copies.
 * While the queue holds queue_max bytes or more, a message on such a topic
 * is dropped on arrival (counted, and logged once per episode) instead of
 * queued. Other messages (releases, connection events) are always queued:
 * they are few and bounded by the protocol (one retained release per
 * product). The gateway also pauses what it asks for (its chunk window),
 * so in normal running nothing is dropped; dropping is what holds memory
 * when a peer floods.
 *
 * Reconnection is the loop's decision, not Paho's: after FERRY_MQTT_EV_LOST
 * or FERRY_MQTT_EV_CONNECT_FAILED the caller waits ferry_backoff_next() and
 * calls ferry_mqtt_connect() again. Each attempt verifies TLS afresh, and the
 * delay has jitter so a fleet does not reconnect in lockstep. Programs do
 * not do this themselves: ferry_keeper.h (the session keeper) does it for
 * them, with a list of brokers, credentials and the subscriptions.
 *
 * Each attempt may name another broker URL of the same scheme and carry a
 * password (ferry_mqtt_connect_to()), so a password file read afresh at
 * every attempt (a token that rotates) needs no new client. What the broker
 * said about itself in its CONNACK comes with FERRY_MQTT_EV_CONNECTED
 * (struct ferry_mqtt_caps); a publish larger than the broker's Maximum
 * Packet Size is refused here (FERRY_E_TOO_LARGE) instead of making the
 * broker close the link.
 *
 * Thread contract: every function except the internals is called from the
 * one loop thread. */
#ifndef FERRY_MQTT_H
#define FERRY_MQTT_H

#include "ferry_backoff.h" /* the reconnect delay, see above */
#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_MQTT_QUEUE_MAX_BYTES (8u << 20) /* default queue_max, see above */
#define FERRY_MQTT_DROPPABLE_MAX   8          /* filters in opts.droppable */
#define FERRY_MQTT_MAX_PAYLOAD     (1u << 20) /* larger incoming messages are dropped and logged */

struct ferry_mqtt_opts {
    const char *url;         /* mqtt://host:port or mqtts://host:port */
    const char *client_id;   /* also the session identity */
    const char *ca_file;     /* mqtts: CA to verify the broker (host name checked) */
    const char *cert_file;   /* mqtts: client certificate, optional */
    const char *key_file;    /* mqtts: its private key */
    const char *username;    /* optional; the password comes with each attempt */
    bool clean_start;        /* false: persistent session that outlives restarts */
    uint32_t session_expiry; /* seconds the broker keeps the session, when persistent */
    int keepalive;           /* seconds; 0 means 30 */
    /* Last will, published by the broker if the link dies; optional. */
    const char *will_topic;
    const void *will_payload;
    size_t will_len;
    bool will_retain;
    /* Topic filters (MQTT wildcards allowed) whose messages may be dropped
     * while the queue is full; NULL-terminated, at most
     * FERRY_MQTT_DROPPABLE_MAX; NULL: none. Copied. */
    const char *const *droppable;
    size_t queue_max; /* bytes; 0: FERRY_MQTT_QUEUE_MAX_BYTES */
};

/* What the broker's CONNACK says it offers (MQTT 5, 3.2.2.3); a property
 * the broker left out has its default: everything available, no limit. */
struct ferry_mqtt_caps {
    int max_qos;          /* Maximum QoS: 0, 1 or 2 */
    bool retain;          /* Retain Available */
    bool wildcards;       /* Wildcard Subscription Available */
    bool shared;          /* Shared Subscription Available */
    bool sub_ids;         /* Subscription Identifiers Available */
    uint32_t max_packet;  /* Maximum Packet Size; 0: no limit */
    uint16_t receive_max; /* Receive Maximum: QoS 1 publishes in flight */
    uint32_t keepalive;   /* Server Keep Alive, or what we asked for */
};

enum ferry_mqtt_ev_type {
    FERRY_MQTT_EV_CONNECTED,        /* session_present, caps, url: the session and the broker */
    FERRY_MQTT_EV_CONNECT_FAILED,   /* reason says why, when Paho knows */
    FERRY_MQTT_EV_LOST,             /* connection dropped after being up */
    FERRY_MQTT_EV_MESSAGE,          /* topic, payload, len, qos, retained */
    FERRY_MQTT_EV_PUBLISHED,        /* token: QoS>=1 publish acknowledged by the broker */
    FERRY_MQTT_EV_PUBLISH_FAILED,   /* token: publish failed (link lost, refused) */
    FERRY_MQTT_EV_SUBSCRIBED,       /* token: subscription granted */
    FERRY_MQTT_EV_SUBSCRIBE_FAILED, /* token, reason_code: refused (SUBACK) or not sent */
    FERRY_MQTT_EV_UNSUBSCRIBED,     /* token: the broker answered an unsubscribe */
};

/* One event; owned by the caller after ferry_mqtt_next(), freed with
 * ferry_mqtt_ev_free(). */
struct ferry_mqtt_ev {
    enum ferry_mqtt_ev_type type;
    char *topic;
    uint8_t *payload;
    size_t len;
    int qos;
    bool retained;
    bool session_present;
    int token;
    /* The broker's MQTT 5 reason code when it gave one (a refusing CONNACK,
     * a SUBACK refusal, a DISCONNECT, a PUBACK refusal), else 0. */
    int reason_code;
    struct ferry_mqtt_caps caps; /* CONNECTED only */
    char url[128];               /* CONNECTED, CONNECT_FAILED, LOST: the broker */
    char reason[128];
};

struct ferry_mqtt;

/* Creates a client (not yet connected). Copies everything in opts. */
enum ferry_err ferry_mqtt_new(const struct ferry_mqtt_opts *opts, struct ferry_mqtt **out,
                              struct ferry_diag *d) FERRY_MUST_CHECK;
/* Disconnects (briefly waiting for in-flight publishes) and frees; NULL ok. */
void ferry_mqtt_free(struct ferry_mqtt *m);

/* eventfd that becomes readable when events are queued. */
int ferry_mqtt_fd(const struct ferry_mqtt *m);

/* Checks a broker URL as ferry_mqtt_new() does: mqtt://host[:port] or
 * mqtts://host[:port], nothing else (a user name or password in it is
 * refused, naming the flags that take them). *tls (may be NULL): mqtts. */
enum ferry_err ferry_mqtt_url_check(const char *url, bool *tls,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* One connection attempt's particulars. */
struct ferry_mqtt_attempt {
    const char *url;      /* NULL: opts.url; else a URL of the same scheme */
    const void *password; /* sent with opts.username; NULL: none */
    size_t password_len;  /* at most 65535 bytes (MQTT's binary data) */
};

/* Starts one connection attempt; the outcome arrives as an event.
 * FERRY_E_BUSY while connected or connecting, FERRY_E_INVALID_ARG for a
 * URL of the other scheme or a password without a user name. Nothing in
 * a is kept after the call. */
enum ferry_err ferry_mqtt_connect_to(struct ferry_mqtt *m, const struct ferry_mqtt_attempt *a,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
/* The same with opts.url and no password. */
enum ferry_err ferry_mqtt_connect(struct ferry_mqtt *m, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Ends the connection (a clean DISCONNECT: no will) or the attempt under
 * way; a FERRY_MQTT_EV_LOST or _CONNECT_FAILED event follows, with reason.
 * Used when a broker turns out unfit (ferry_keeper.h). */
void ferry_mqtt_disconnect(struct ferry_mqtt *m, const char *reason);

bool ferry_mqtt_is_connected(const struct ferry_mqtt *m);

/* Pops the next event; FERRY_E_NOT_FOUND when the queue is empty (the
 * eventfd is then reset). */
enum ferry_err ferry_mqtt_next(struct ferry_mqtt *m, struct ferry_mqtt_ev **out) FERRY_MUST_CHECK;
void ferry_mqtt_ev_free(struct ferry_mqtt_ev *ev);

/* Queues a publish. *token (may be NULL) identifies the later PUBLISHED or
 * PUBLISH_FAILED event for QoS >= 1. FERRY_E_BUSY when not connected or when
 * Paho's buffer is full: the caller keeps the data and retries.
 * FERRY_E_INVALID_ARG for a bad topic or QoS, FERRY_E_TOO_LARGE above
 * FERRY_MQTT_MAX_PAYLOAD (the peer would drop it) or above the connected
 * broker's Maximum Packet Size (it would close the link). */
enum ferry_err ferry_mqtt_publish(struct ferry_mqtt *m, const char *topic, const void *payload,
                                  size_t len, int qos, bool retain, int *token) FERRY_MUST_CHECK;

/* Messages dropped because the queue was full, since the client was made. */
uint64_t ferry_mqtt_dropped(struct ferry_mqtt *m);

/* Whether topic matches filter ('+' one level, '#' the rest). */
bool ferry_mqtt_topic_matches(const char *filter, const char *topic);

/* Subscribes (MQTT v5, no-local off). Outcome arrives as an event. */
enum ferry_err ferry_mqtt_subscribe(struct ferry_mqtt *m, const char *filter, int qos,
                                    int *token) FERRY_MUST_CHECK;

/* Unsubscribes; FERRY_MQTT_EV_UNSUBSCRIBED (or _SUBSCRIBE_FAILED) follows. */
enum ferry_err ferry_mqtt_unsubscribe(struct ferry_mqtt *m, const char *filter,
                                      int *token) FERRY_MUST_CHECK;

/* The bytes a PUBLISH of len payload bytes on topic takes on the wire, as
 * the broker's Maximum Packet Size counts them (no properties sent). */
size_t ferry_mqtt_packet_size(const char *topic, size_t len);

#endif
