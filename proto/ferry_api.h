/* The request bodies of `ferry-cloud serve --http`'s API (docs/api.md). The
 * responses are the documents the rest of proto/ already encodes (status
 * rows, node descriptions, the rollout view) inside the server's own
 * envelopes (cloud-bridge/cloud_http_json.h); what a client sends is read
 * here, as strictly as every other document Ferry takes in.
 *
 * A rollout action (POST /api/v1/rollouts/ID/pause, ...) takes an empty body
 * or one JSON object with optional fields:
 *   {"reason": "canary looks slow", "by": "alice"}
 * reason: 1..200 bytes, by: 1..64 bytes, both UTF-8 without control
 * characters (they reach the decision log and the operator's terminal).
 * Unknown fields, duplicates, other types and anything above
 * FERRY_API_BODY_MAX bytes are refused, naming what is wrong. */
#ifndef FERRY_API_H
#define FERRY_API_H

#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

#define FERRY_API_BODY_MAX   4096
#define FERRY_API_REASON_MAX 200
#define FERRY_API_BY_MAX     64

struct ferry_api_action {
    char reason[FERRY_API_REASON_MAX + 1]; /* "" when absent */
    char by[FERRY_API_BY_MAX + 1];         /* "" when absent */
};

/* Reads an action's body (len 0: no body). FERRY_E_TOO_LARGE above the cap,
 * FERRY_E_MALFORMED for everything else, with the field named in d. *out is
 * written only on FERRY_OK. */
enum ferry_err ferry_api_action_from_json(const uint8_t *buf, size_t len,
                                          struct ferry_api_action *out,
                                          struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
