/* Brokers for the MQTT unit tests (test_mqtt, test_keeper): a real mosquitto
 * on free loopback ports with a config the test writes, and a scripted
 * broker for the answers mosquitto 2.0.11 never gives (a refused SUBSCRIBE,
 * a DISCONNECT with a reason, CONNACK properties, a broker that closes the
 * link over a shared subscription as ejabberd 23.01 does). Every wait is
 * bounded by FX_WAIT_MS. */
#ifndef FERRY_TEST_MQTT_FIXTURE_H
#define FERRY_TEST_MQTT_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define FX_WAIT_MS   10000
#define FX_PORTS_MAX 4

int fx_free_port(void);
bool fx_port_accepts(int port);
void fx_sleep_ms(long ms);

/* ---- mosquitto ---------------------------------------------------------- */

/* Writes the config of a broker listening on ports[0..n); false on error. */
typedef bool (*fx_conf_writer)(FILE *f, const int *ports, int n, void *arg);

struct fx_broker {
    pid_t pid;
    int ports[FX_PORTS_MAX];
    int nports;
    char conf[512];
    char log[512];
};

/* Starts mosquitto on nports fresh free ports (retrying on a collision),
 * its files named after name in the test's folder; stopped at exit too. */
bool fx_broker_start(struct fx_broker *b, const char *name, int nports, fx_conf_writer w,
                     void *arg);
/* Same config and ports (clients come back to where they were). */
bool fx_broker_restart(struct fx_broker *b);
void fx_broker_stop(struct fx_broker *b);

/* "per_listener_settings false", anonymous, "user root", no persistence and
 * one plain listener: the usual test broker. arg may name extra lines. */
bool fx_plain_conf(FILE *f, const int *ports, int n, void *arg);

/* ---- a scripted broker ------------------------------------------------- */

enum fx_script {
    FX_REFUSE_CONNECT, /* CONNACK 0x87 */
    FX_DENY_SUBSCRIBE, /* every SUBSCRIBE refused with 0x87 */
    FX_KICK,           /* DISCONNECT 0x8e right after the CONNACK */
    FX_SILENT,         /* never answers the CONNECT */
    FX_GRANT,          /* CONNACK with fb->props; filters containing "denied" refused 0x87,
                          others granted at QoS 1 */
    FX_KICK_ON_SHARED, /* as FX_GRANT, but a $share/ filter gets DISCONNECT 0x9e */
};

struct fx_fake {
    int listen_fd;
    int port;
    enum fx_script script;
    uint8_t props[64]; /* CONNACK properties (FX_GRANT, FX_KICK_ON_SHARED) */
    size_t nprops;
    _Atomic bool got_connect;
    _Atomic int connections;
    _Atomic int subscribes;  /* SUBSCRIBE packets */
    _Atomic int denied;      /* refused "denied" filters */
    _Atomic int shared_seen; /* $share/ filters received */
    _Atomic bool stop;
    pthread_t thread;
};

/* Serves connections one after another until fx_fake_stop(). fb is zeroed
 * by the caller (props and nprops are read as they are: set them, if at
 * all, before this call). */
bool fx_fake_start(struct fx_fake *fb, enum fx_script script);
void fx_fake_stop(struct fx_fake *fb);

#endif
