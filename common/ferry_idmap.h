/* A map from identifiers (node ids: 1..64 bytes) to 32-bit values, for
 * lookups per request among tens of thousands of nodes.
 *
 * Open addressing with linear probing, kept at most half full, FNV-1a over
 * the key mixed with a per-map random seed (so a peer cannot pick ids that
 * all collide). Keys are copied into the map. No removal: maps are rebuilt
 * whole when what they index changes. Pure and single-threaded. */
#ifndef FERRY_IDMAP_H
#define FERRY_IDMAP_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_IDMAP_KEY_MAX 64

struct ferry_idmap;

/* expect: entries expected (it grows beyond); seed: any 64-bit value. */
enum ferry_err ferry_idmap_new(size_t expect, uint64_t seed, struct ferry_idmap **out,
                               struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_idmap_free(struct ferry_idmap *m); /* NULL is fine */

/* Sets key's value (adding the key). FERRY_E_INVALID_ARG for an empty key or
 * one over FERRY_IDMAP_KEY_MAX bytes, FERRY_E_NOMEM. */
enum ferry_err ferry_idmap_put(struct ferry_idmap *m, const char *key,
                               uint32_t value) FERRY_MUST_CHECK;

/* True and *value when key is present. */
bool ferry_idmap_get(const struct ferry_idmap *m, const char *key, uint32_t *value);

size_t ferry_idmap_count(const struct ferry_idmap *m);

#endif
