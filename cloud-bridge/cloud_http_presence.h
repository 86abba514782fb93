/* Gateway presence as the HTTP API shows it. Each gateway publishes
 * "online" retained on ferry/v1/<fleet>/presence/<gateway> when it connects
 * and leaves "offline" as its last will (PROTOCOL.md, "MQTT topics"). serve
 * subscribes to them when --http is on and hands every message here from
 * its event loop; the API's threads read copies. The broker keeps the
 * retained messages, so a restarted serve learns every gateway's presence
 * again at its next subscription: nothing here needs to be durable.
 *
 * At most CLOUD_HTTP_PRESENCE_MAX gateways are kept (a flood of invented
 * gateway ids on the broker cannot grow it further: newcomers beyond the cap
 * are dropped and counted). Thread-safe: one mutex. */
#ifndef FERRY_CLOUD_HTTP_PRESENCE_H
#define FERRY_CLOUD_HTTP_PRESENCE_H

#include "ferry_err.h"
#include "ferry_names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_HTTP_PRESENCE_MAX 10000

struct cloud_http_presence;

struct cloud_http_gw_presence {
    char gateway[FERRY_ID_MAX + 1];
    bool online;
    int64_t since; /* when this serve heard it (unix seconds) */
};

enum ferry_err cloud_http_presence_new(struct cloud_http_presence **out,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_http_presence_free(struct cloud_http_presence *p); /* NULL is fine */

/* A presence message's payload: "online" or "offline"; an empty payload (a
 * retained message cleared) forgets the gateway. FERRY_E_MALFORMED for
 * anything else; FERRY_E_INVALID_ARG for an invalid gateway id. */
enum ferry_err cloud_http_presence_put(struct cloud_http_presence *p, const char *gateway,
                                       const uint8_t *payload, size_t len, int64_t now,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* A copy of every gateway's presence, sorted by id, into a new array
 * (free() it); *online counts the online ones (may be NULL). */
enum ferry_err cloud_http_presence_list(struct cloud_http_presence *p,
                                        struct cloud_http_gw_presence **out, size_t *n,
                                        size_t *online, struct ferry_diag *d) FERRY_MUST_CHECK;

/* One gateway's presence; false when it never said. */
bool cloud_http_presence_get(struct cloud_http_presence *p, const char *gateway,
                             struct cloud_http_gw_presence *out);

/* Grows with every change (for the event stream). */
uint64_t cloud_http_presence_version(struct cloud_http_presence *p);

#endif
