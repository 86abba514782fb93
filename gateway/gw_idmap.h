/* A fixed-capacity map from requester identities (gw_coap.h: node ids or
 * anonymous hosts, at most GW_IDMAP_ID_MAX bytes) to slot numbers
 * 0..cap-1, for the gateway's pure per-requester tables (gw_pacer.h,
 * gw_budget.h): the owner keeps its records in an array indexed by slot and
 * decides what to evict when the map is full. Pure; no clock.
 *
 * Cost: find, add and remove take one hash and a walk of one bucket's chain
 * (buckets >= cap, so chains stay short). Not thread-safe. */
#ifndef FERRY_GW_IDMAP_H
#define FERRY_GW_IDMAP_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_IDMAP_ID_MAX 64
#define GW_IDMAP_NONE   UINT32_MAX
#define GW_IDMAP_MAX    (1u << 22)

struct gw_idmap;

/* A map for at most cap identities (1..GW_IDMAP_MAX). FERRY_E_INVALID_ARG,
 * FERRY_E_NOMEM. Free with gw_idmap_free(). */
enum ferry_err gw_idmap_new(uint32_t cap, struct gw_idmap **out) FERRY_MUST_CHECK;
void gw_idmap_free(struct gw_idmap *m); /* NULL is fine */

/* Whether id is an identity the map can hold: 1..GW_IDMAP_ID_MAX bytes. */
bool gw_idmap_id_valid(const char *id);

/* The slot of id, or GW_IDMAP_NONE. */
uint32_t gw_idmap_find(const struct gw_idmap *m, const char *id);

/* A free slot for id (which must be valid and absent), or GW_IDMAP_NONE when
 * the map is full: the owner evicts with gw_idmap_remove() and asks again. */
uint32_t gw_idmap_add(struct gw_idmap *m, const char *id);

/* Frees a slot in use. */
void gw_idmap_remove(struct gw_idmap *m, uint32_t slot);

/* The identity in a slot in use. */
const char *gw_idmap_id(const struct gw_idmap *m, uint32_t slot);

size_t gw_idmap_count(const struct gw_idmap *m);
uint32_t gw_idmap_cap(const struct gw_idmap *m);

#endif
