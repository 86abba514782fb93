/* Every MQTT topic and CoAP path Ferry uses, built in one place.
 * proto/PROTOCOL.md documents the same scheme for third parties.
 *
 * Identifiers (fleet, gateway, node, product, hardware model) are 1..64
 * characters from [A-Za-z0-9._-] and never start with '.', so they are safe
 * as one topic level, one URI path segment and one file name.
 *
 * The builders write a NUL-terminated string into a caller buffer and return
 * FERRY_E_INVALID_ARG if an identifier is invalid, FERRY_E_TOO_LARGE if the
 * buffer is too small; out is untouched on failure. */
#ifndef FERRY_NAMES_H
#define FERRY_NAMES_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>

#define FERRY_ID_MAX 64
/* The product line a release belongs to, and a node follows, when none is
 * named: `ferry-cloud sign/publish --product` and `ferry-edge --product`. */
#define FERRY_DEFAULT_PRODUCT "firmware"
#define FERRY_TOPIC_MAX       256

#define FERRY_TOPIC_ROOT "ferry/v1"
/* Shared-subscription group used by every `ferry-cloud serve` instance. */
#define FERRY_SHARE_GROUP "ferry-cloud"

/* CoAP resources served by a gateway to its nodes. */
#define FERRY_COAP_MANIFEST    "ferry/manifest" /* + "/<hw-model>", observable */
#define FERRY_COAP_ARTIFACT    "ferry/artifact" /* + "/<sha256-hex>", Block2 */
#define FERRY_COAP_STATUS      "ferry/status"   /* POST status records */
#define FERRY_COAP_META        "ferry/meta"     /* + "/<product>", observable */
#define FERRY_COAP_CONFIG      "ferry/config"   /* POST configuration reports */
#define FERRY_COAP_RT_MANIFEST "ferry.manifest"
#define FERRY_COAP_RT_ARTIFACT "ferry.artifact"
#define FERRY_COAP_RT_STATUS   "ferry.status"
#define FERRY_COAP_RT_META     "ferry.meta"
#define FERRY_COAP_RT_CONFIG   "ferry.config"
/* Ferry-Hold, in a manifest answer: do not start installing for this many
 * seconds (uint). From CoAP's experimental range; elective, safe to forward. */
#define FERRY_COAP_OPTION_HOLD 65000

bool ferry_id_valid(const char *id);

enum ferry_topic {
    FERRY_TOPIC_RELEASE,        /* <fleet>/release/<product>: retained envelope */
    FERRY_TOPIC_STREAM_REQ,     /* <fleet>/stream/req/<gateway>: chunk requests */
    FERRY_TOPIC_STREAM_DATA,    /* <fleet>/stream/data/<gateway>: chunks */
    FERRY_TOPIC_STATUS,         /* <fleet>/status/<gateway>: status batches */
    FERRY_TOPIC_STATUS_ACK,     /* <fleet>/status-ack/<gateway>: ingestion acks */
    FERRY_TOPIC_PRESENCE,       /* <fleet>/presence/<gateway>: retained online/offline */
    FERRY_TOPIC_NODE,           /* <fleet>/node/<gateway>/<node>: retained reported state */
    FERRY_TOPIC_META_ROOT,      /* <fleet>/root/<version>: retained signed root document */
    FERRY_TOPIC_META_TIMESTAMP, /* <fleet>/timestamp/<product>: retained signed timestamp */
    FERRY_TOPIC_CONFIG,         /* <fleet>/config/<gateway>/<node>: retained configuration */
    FERRY_TOPIC_NODE_INFO,      /* <fleet>/node-info/<gateway>/<node>: retained description */
    FERRY_TOPIC_ROLLOUT,        /* <fleet>/rollout/<gateway>/<product>: retained rollout */
    FERRY_TOPIC_ROLLOUT_REPORT, /* <fleet>/rollout-report/<gateway>: retained enforcement */
};

/* Builds a topic. `sub` is the first variable level (product, gateway) and
 * `node` the second, used only by the topics with two (FERRY_TOPIC_NODE,
 * FERRY_TOPIC_CONFIG and FERRY_TOPIC_NODE_INFO: the node; FERRY_TOPIC_ROLLOUT:
 * the product). Pass "+" for sub (or node) to get a subscription filter. */
enum ferry_err ferry_topic(char *out, size_t cap, enum ferry_topic which, const char *fleet,
                           const char *sub, const char *node) FERRY_MUST_CHECK;

/* "$share/ferry-cloud/<topic filter>" for the cloud's scaled-out subscribers.
 * Only filters under "ferry/v1/" are accepted. */
enum ferry_err ferry_topic_shared(char *out, size_t cap, const char *filter) FERRY_MUST_CHECK;

/* Extracts the last level of a topic into out (for "…/status/<gateway>").
 * The level must be a valid identifier, so "+" or ".." from a peer is refused. */
enum ferry_err ferry_topic_last_level(const char *topic, char *out, size_t cap) FERRY_MUST_CHECK;

#endif
