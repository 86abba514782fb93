/* The HTTP API's resources as JSON (docs/api.md has each with an example):
 *
 *   GET /api/v1/summary           nodes per state and version, gateways online
 *   GET /api/v1/nodes             a page of nodes (filters, cursor, total)
 *   GET /api/v1/nodes/ID          one node, its binding, its records, its refused ones
 *   GET /api/v1/gateways          gateways with presence and their nodes' counts
 *   GET /api/v1/releases          the store's releases and the nodes on each
 *   GET /api/v1/rollouts          the newest rollouts with per-wave counts
 *   GET /api/v1/rollouts/ID       one rollout with its decision log
 *   GET /api/v1/rollouts/ID/log   the decision log, paged
 * and the body of a rollout action's answer. Every view reads through one
 * struct cloud_http_db in one read snapshot and writes one JSON document.
 *
 * Query parameters are checked here, before any query runs: an unknown or
 * repeated parameter, a value out of range or of the wrong form is
 * FERRY_E_INVALID_ARG with a message naming the parameter, which the server
 * answers with 400. Every list is bounded (CLOUD_HTTP_PAGE_MAX rows, and
 * smaller defaults), so no request reads the whole fleet, whatever it asks.
 *
 * The documents inside are proto/'s: a node is `ferry-cloud status --json`'s
 * row plus its description; a rollout is `ferry-cloud rollout show
 * --json`'s view. */
#ifndef FERRY_CLOUD_HTTP_VIEWS_H
#define FERRY_CLOUD_HTTP_VIEWS_H

#include "cloud_http_json.h"
#include "cloud_http_presence.h"
#include "cloud_http_sql.h"
#include "cloud_store.h"
#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

#define CLOUD_HTTP_PARAMS_MAX    16
#define CLOUD_HTTP_NODES_DEFAULT 100
#define CLOUD_HTTP_LOG_DEFAULT   100
#define CLOUD_HTTP_ROLLOUTS_MAX  100
#define CLOUD_HTTP_RELEASES_MAX  500
#define CLOUD_HTTP_GATEWAYS_MAX  1000
#define CLOUD_HTTP_DOC_MAX       (8u << 20) /* the largest answer */

struct cloud_http_param {
    const char *key, *value;
};

struct cloud_http_params {
    struct cloud_http_param v[CLOUD_HTTP_PARAMS_MAX];
    size_t n;
};

/* What a view reads from: borrowed, db owned by the calling thread. */
struct cloud_http_ctx {
    struct cloud_http_db *db;
    struct cloud_http_presence *presence; /* may be NULL: no presence known */
    const struct cloud_store *store;      /* may be NULL: no releases listed */
    int64_t now;
};

/* ---- the node list's parameters (pure; the event stream filters with them too) ---- */

struct cloud_http_node_query {
    struct cloud_http_node_filter f;
    char tag_key[FERRY_TAG_KEY_MAX + 1], tag_value[FERRY_TAG_VALUE_MAX + 1];
    const char *after, *before; /* borrowed from the params */
    unsigned limit;
};

enum ferry_err cloud_http_node_query_parse(const struct cloud_http_params *p,
                                           struct cloud_http_node_query *q,
                                           struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- resources: each writes its document into out (an empty writer) ---- */

enum ferry_err cloud_http_view_summary(const struct cloud_http_ctx *c,
                                       const struct cloud_http_params *p, struct cloud_json *out,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_view_nodes(const struct cloud_http_ctx *c,
                                     const struct cloud_http_params *p, struct cloud_json *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_view_node(const struct cloud_http_ctx *c, const char *node,
                                    const struct cloud_http_params *p, struct cloud_json *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_view_gateways(const struct cloud_http_ctx *c,
                                        const struct cloud_http_params *p, struct cloud_json *out,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_view_releases(const struct cloud_http_ctx *c,
                                        const struct cloud_http_params *p, struct cloud_json *out,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_view_rollouts(const struct cloud_http_ctx *c,
                                        const struct cloud_http_params *p, struct cloud_json *out,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_view_rollout(const struct cloud_http_ctx *c, int64_t id,
                                       const struct cloud_http_params *p, struct cloud_json *out,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_view_rollout_log(const struct cloud_http_ctx *c, int64_t id,
                                           const struct cloud_http_params *p,
                                           struct cloud_json *out,
                                           struct ferry_diag *d) FERRY_MUST_CHECK;

/* Pieces the event stream sends: one node as the list shows it; the
 * rollouts as GET /api/v1/rollouts lists them (limit of them). */
enum ferry_err cloud_http_node_json(const struct cloud_http_node *n, struct cloud_json *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_http_rollout_list_json(const struct cloud_http_ctx *c, unsigned limit,
                                            struct cloud_json *out,
                                            struct ferry_diag *d) FERRY_MUST_CHECK;

/* Parses a decimal id 1..2^53 (a rollout's, a log entry's). */
enum ferry_err cloud_http_parse_id(const char *text, const char *what, int64_t *out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
