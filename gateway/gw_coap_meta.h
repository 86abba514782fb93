/* The gateway's ferry/meta/<product> resource (PROTOCOL.md, "Trust
 * metadata"): the bundle of root and timestamp documents a node of that
 * product line needs (ferry_meta.h), GET with Observe, content-format 50.
 *
 * The query names what the node holds: "r=<root version>" (absent: 0), so
 * it gets only the roots it lacks; other query parameters are ignored. An
 * observer's notifications are built from its own registration's query.
 * Answers: 2.05 with Max-Age and an ETag from the bundle; 4.00 for an "r="
 * that is not a version; 4.04 for a product that is not an identifier; 4.05
 * for other methods. A resource is made when a node first asks: always for
 * a product the gateway holds a timestamp of (at most GW_META_MAX_PRODUCTS,
 * gw_meta.h), and for up to GW_COAP_META_MAX_WAITING others (any node may
 * name any product); beyond that such a product gets 4.04 with Max-Age.
 *
 * Part of gw_coap (gw_coap.h): it lives on gw_coap's libcoap context and
 * loop thread, and is reached through gw_coap's handler for paths without a
 * resource and gw_coap_meta_changed(). */
#ifndef FERRY_GW_COAP_META_H
#define FERRY_GW_COAP_META_H

#include "ferry_err.h"

#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_COAP_META_MAX_WAITING 16

/* The bundle for product for a node holding root version `have`; the
 * caller (this module) frees *out. *known: the gateway holds a timestamp of
 * the product. Any error answers 5.00. */
typedef enum ferry_err (*gw_coap_meta_source)(void *arg, const char *product, uint64_t have,
                                              uint8_t **out, size_t *len, bool *known);

struct gw_coap_meta;

/* NULL on allocation failure. */
struct gw_coap_meta *gw_coap_meta_new(coap_context_t *ctx, gw_coap_meta_source source, void *arg,
                                      uint32_t max_age_s);
/* Call after coap_free_context() (which freed the resources). NULL is fine. */
void gw_coap_meta_free(struct gw_coap_meta *m);

/* Answers a request whose path has no resource, if the path is under
 * ferry/meta; false (resp untouched) otherwise. */
bool gw_coap_meta_unknown(struct gw_coap_meta *m, const coap_string_t *path, coap_session_t *ses,
                          const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp);

/* The bundle of product (NULL: every product) changed: notify observers. */
void gw_coap_meta_notify(struct gw_coap_meta *m, const char *product);

#endif
