/* The MQTT session keeper: the one place where a Ferry program keeps its MQTT
 * session alive. ferry-gateway's uplink (gw_uplink.h), `ferry-cloud serve`
 * and the cloud's commands that put a retained document on the broker
 * (cloud_publish.h) all use it; none of them connects, subscribes or
 * reconnects by itself. It drives one ferry_mqtt client (ferry_mqtt.h, the
 * Paho wrapper beneath it) on the caller's ferry_loop.
 *
 * Model. A keeper has a list of brokers (--broker, several URLs of one
 * scheme: the nodes of a cluster, or a primary and its standby), the
 * credentials (TLS files, --mqtt-username, --mqtt-password-file), a set of
 * subscriptions, each with its handler, and what the program needs from a
 * broker (struct ferry_keeper_needs). It is always either connected to one
 * of the brokers or on its way to one.
 *
 * The policy, the same for every program:
 *
 *   Connecting. Brokers are tried in turn, starting with the first, each
 *   failure moving on to the next at once; a whole round that reached none
 *   waits a jittered back-off (doubling from backoff_min_ms to
 *   backoff_max_ms) before the next round. With one broker that is a
 *   back-off between attempts. The password file is read again before every
 *   attempt, so a token that rotates (a JWT a managed broker issues) is
 *   picked up without a restart.
 *
 *   Fitness. At every CONNACK the broker's MQTT 5 properties are held
 *   against the program's needs: QoS 1, retained messages, wildcard
 *   subscriptions, and a Maximum Packet Size that holds the largest message
 *   the program sends. A broker that lacks one is unfit: an error names what
 *   it lacks, the link is closed (a clean DISCONNECT, no will) and the next
 *   broker is tried. A program never runs half-blind on a broker that would
 *   drop what it relies on; with no fit broker it logs the error every round.
 *
 *   Subscriptions. All of them are made on every connection, whether or not
 *   the broker kept the session: a broker that lost it (a restart without
 *   persistence, an expiry, a failover to another cluster node) never
 *   leaves the program deaf. The link is up (on_up) once the broker has
 *   answered each of them, granted or refused.
 *
 *   A refused subscription (a SUBACK reason >= 0x80, or a subscribe that
 *   could not be sent) is logged as an error naming the filter and the
 *   broker's reason, reported to the program (on_refused), and asked for
 *   again after 5 s, doubling up to 5 min, for as long as the link lasts and
 *   the program keeps the subscription; the other subscriptions work
 *   meanwhile, and on_up is not held back for it (the status relay should
 *   not stop because the ACL refuses rollout documents). A refusal the
 *   broker cannot take back (0x9E shared subscriptions not supported, 0xA2
 *   wildcards not supported) is not asked for again on that broker.
 *
 *   Shared subscriptions. A broker whose CONNACK says it has none, or that
 *   refuses one with 0x9E, or that answers one by closing the link with
 *   0x9E (ejabberd 23.01 does), is remembered as a broker without them: on
 *   it `$share/...` filters are not sent at all, and each is reported
 *   refused with 0x9E at once, so the program can fall back (ferry-cloud
 *   serve then splits work by partitions, cloud_partition.h).
 *
 *   A lost link. on_down with the reason; publishes fail with FERRY_E_BUSY
 *   until the next on_up (callers keep what they send until acknowledged,
 *   as every Ferry protocol does); the next broker is tried.
 *
 *   Session present false where a persistent session was asked for: the
 *   broker holds nothing for us any more (QoS 1 messages it queued while we
 *   were away are gone). Logged; on_up says so (link->session_present), and
 *   the program asks again for whatever it was waiting for. The keeper
 *   itself subscribes again anyway (above).
 *
 * Dispatch. Each message goes to the handler of the first subscription
 * whose filter matches its topic (a `$share/<group>/<filter>` matches on
 * <filter>); a message no subscription matches (one still in flight after an
 * unsubscribe) is dropped with a debug line.
 *
 * Ownership and threads: everything runs on the loop thread; strings given
 * in opts and subscriptions are copied; handlers are called from the loop
 * and may call any keeper function except ferry_keeper_free(). */
#ifndef FERRY_KEEPER_H
#define FERRY_KEEPER_H

#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_mqtt.h"
#include "ferry_opts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_KEEPER_MAX_BROKERS  16
#define FERRY_KEEPER_PASSWORD_MAX 65535u /* MQTT binary data; a JWT fits many times */

/* The broker settings every MQTT program takes, as flags and config keys. */
struct ferry_keeper_conf {
    struct ferry_strlist brokers; /* --broker, repeatable; each may list URLs with ',' */
    char *ca_file;                /* mqtts: the CA that signs the brokers' certificates */
    char *cert_file;              /* mqtts: client certificate */
    char *key_file;               /* its private key */
    char *username;               /* --mqtt-username */
    char *password_file;          /* --mqtt-password-file: first line is the password */
};

/* The option-table entries for a config struct `cfgtype` that embeds a
 * struct ferry_keeper_conf as `field` (ferry_opts.h); --broker required.
 * FERRY_KEEPER_OPTS_FLAGS gives --broker's flags (0: a program that can
 * also work without a broker checks that itself). */
#define FERRY_KEEPER_OPT(cfgtype, name, type, member, metavar, help, flags)                        \
    {                                                                                              \
        name, type, offsetof(struct cfgtype, member), metavar, help, flags                         \
    }
#define FERRY_KEEPER_OPTS(cfgtype, field)                                                          \
    FERRY_KEEPER_OPTS_FLAGS(cfgtype, field, FERRY_OPT_REQUIRED)
#define FERRY_KEEPER_OPTS_FLAGS(cfgtype, field, broker_flags)                                      \
    FERRY_KEEPER_OPT(cfgtype, "broker", FERRY_OPT_STRLIST, field.brokers, "URL[,URL...]",          \
                     "MQTT broker, mqtt://HOST:PORT or mqtts://HOST:PORT; several (repeat the "    \
                     "flag, or separate with commas) are tried in turn: a cluster's nodes",        \
                     broker_flags),                                                                \
        FERRY_KEEPER_OPT(cfgtype, "ca-file", FERRY_OPT_STR, field.ca_file, "FILE",                 \
                         "mqtts: CA certificate(s) that sign the brokers' certificates", 0),       \
        FERRY_KEEPER_OPT(cfgtype, "cert-file", FERRY_OPT_STR, field.cert_file, "FILE",             \
                         "mqtts: client certificate (with --key-file)", 0),                        \
        FERRY_KEEPER_OPT(cfgtype, "key-file", FERRY_OPT_STR, field.key_file, "FILE",               \
                         "mqtts: the client certificate's private key", 0),                        \
        FERRY_KEEPER_OPT(cfgtype, "mqtt-username", FERRY_OPT_STR, field.username, "NAME",          \
                         "user name the brokers authenticate (with --mqtt-password-file)", 0),     \
        FERRY_KEEPER_OPT(cfgtype, "mqtt-password-file", FERRY_OPT_STR, field.password_file,        \
                         "FILE",                                                                   \
                         "file whose first line is the password or token (a JWT), read again at "  \
                         "every connection; not readable by others",                               \
                         0)

/* Checks the settings without touching the network: every URL parses
 * (ferry_mqtt_url_check()), all take one scheme, at most
 * FERRY_KEEPER_MAX_BROKERS, the TLS files match the scheme, a password file
 * comes with a user name and can be read (ferry_keeper_read_password()).
 * Every error names the flag at fault. */
enum ferry_err ferry_keeper_conf_check(const struct ferry_keeper_conf *c,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* Reads a password file: its first line without the line end (a file of
 * one line with no newline is the password as it is), 1 to
 * FERRY_KEEPER_PASSWORD_MAX bytes. Refuses a file others may read or write
 * (mode o+r or o+w: a password for every user of the host), anything but a
 * regular file, and an empty password. *out is a new buffer (the caller
 * wipes and frees it: ferry_keeper_wipe()). */
enum ferry_err ferry_keeper_read_password(const char *path, uint8_t **out, size_t *len,
                                          struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_keeper_wipe(uint8_t *buf, size_t len); /* zeroes and frees; NULL is fine */

/* What a program needs from a broker (see Fitness above). */
struct ferry_keeper_needs {
    bool qos1;         /* Maximum QoS at least 1 */
    bool retain;       /* Retain Available */
    bool wildcards;    /* Wildcard Subscription Available */
    size_t max_packet; /* the largest PUBLISH it sends (ferry_mqtt_packet_size()); 0: any */
};

/* Whether caps meet needs; if not, why (a sentence naming what is missing
 * and what the program needs) goes to why. Pure. */
bool ferry_keeper_fit(const struct ferry_keeper_needs *needs, const struct ferry_mqtt_caps *caps,
                      char *why, size_t whysz);

/* A subscription and where its messages go. The event (topic, payload,
 * len, qos, retained) is valid during the call only. */
typedef void (*ferry_keeper_msg_cb)(void *arg, const struct ferry_mqtt_ev *ev);
struct ferry_keeper_sub {
    const char *filter; /* copied */
    int qos;
    ferry_keeper_msg_cb on_message;
    void *arg;
};

/* The link as on_up reports it. */
struct ferry_keeper_link {
    const char *url;      /* the broker */
    bool session_present; /* the broker kept our session (only ever with persistent) */
    const struct ferry_mqtt_caps *caps;
};

struct ferry_keeper_events {
    void *arg;
    /* Connected to a fit broker and every subscription answered (after
     * each connection). */
    void (*on_up)(void *arg, const struct ferry_keeper_link *link);
    /* The link that was up went down. */
    void (*on_down)(void *arg, const char *reason);
    /* A QoS >= 1 publish was acknowledged (ok) or failed (reason). */
    void (*on_published)(void *arg, int token, bool ok, const char *reason);
    /* A subscription was refused (reason_code: the broker's, 0x9E for a
     * broker without shared subscriptions). May be NULL. */
    void (*on_refused)(void *arg, const char *filter, int reason_code, const char *reason);
};

struct ferry_keeper_opts {
    const struct ferry_keeper_conf *conf; /* borrowed during ferry_keeper_new() only */
    const char *client_id;
    const char *name; /* for log lines: "uplink", "serve", "publish" */
    bool persistent;  /* a session that outlives the connection */
    uint32_t session_expiry;
    int keepalive; /* seconds; 0: 30 */
    const char *will_topic;
    const void *will_payload;
    size_t will_len;
    bool will_retain;
    const char *const *droppable; /* ferry_mqtt_opts.droppable */
    struct ferry_keeper_needs needs;
    uint32_t backoff_min_ms, backoff_max_ms; /* 0: 500 ms, 30 s */
};

struct ferry_keeper;

/* Creates the keeper and its client, not yet connecting. Add the
 * subscriptions, then ferry_keeper_start(). */
enum ferry_err ferry_keeper_new(struct ferry_loop *loop, const struct ferry_keeper_opts *opts,
                                const struct ferry_keeper_events *events, struct ferry_keeper **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Disconnects cleanly (in-flight publishes get a moment; no will) and
 * frees; NULL is fine. No handler is called from here. */
void ferry_keeper_free(struct ferry_keeper *k);

/* Makes the first connection attempt now. */
void ferry_keeper_start(struct ferry_keeper *k);

/* Adds a subscription (subscribed now when connected, and on every
 * connection after). FERRY_E_INVALID_ARG for a bad filter or QoS, or one
 * already there. */
enum ferry_err ferry_keeper_subscribe(struct ferry_keeper *k,
                                      const struct ferry_keeper_sub *s) FERRY_MUST_CHECK;

/* Drops a subscription (unsubscribed now when connected). Unknown filters
 * are ignored. */
void ferry_keeper_unsubscribe(struct ferry_keeper *k, const char *filter);

/* Up: connected to a fit broker and every subscription answered. */
bool ferry_keeper_is_up(const struct ferry_keeper *k);

/* The broker connected to, or NULL. */
const char *ferry_keeper_url(const struct ferry_keeper *k);

/* As ferry_mqtt_publish(): FERRY_E_BUSY while not connected (the caller
 * keeps the data and sends it again after on_up). */
enum ferry_err ferry_keeper_publish(struct ferry_keeper *k, const char *topic, const void *payload,
                                    size_t len, int qos, bool retain, int *token) FERRY_MUST_CHECK;

/* Whether topic matches a filter, the filter of a shared subscription
 * ($share/<group>/<filter>) matching on <filter>. */
bool ferry_keeper_filter_matches(const char *filter, const char *topic);

#endif
