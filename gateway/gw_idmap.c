#include "gw_idmap.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    char id[GW_IDMAP_ID_MAX + 1];
    uint32_t hash;
    uint32_t next; /* in its bucket's chain, or in the free list */
    bool used;
};

struct gw_idmap {
    uint32_t cap, nbuckets; /* nbuckets: a power of two >= cap */
    uint32_t free_head;
    size_t count;
    uint32_t *buckets;
    struct entry *e;
};

enum ferry_err gw_idmap_new(uint32_t cap, struct gw_idmap **out)
{
    if (cap < 1 || cap > GW_IDMAP_MAX)
        return FERRY_E_INVALID_ARG;
    struct gw_idmap *m = calloc(1, sizeof(*m));
    if (!m)
        return FERRY_E_NOMEM;
    m->cap = cap;
    m->nbuckets = 1;
    while (m->nbuckets < cap)
        m->nbuckets <<= 1;
    m->buckets = malloc(m->nbuckets * sizeof(m->buckets[0]));
    m->e = calloc(cap, sizeof(m->e[0]));
    if (!m->buckets || !m->e) {
        gw_idmap_free(m);
        return FERRY_E_NOMEM;
    }
    for (uint32_t b = 0; b < m->nbuckets; b++)
        m->buckets[b] = GW_IDMAP_NONE;
    for (uint32_t i = 0; i < cap; i++)
        m->e[i].next = i + 1 < cap ? i + 1 : GW_IDMAP_NONE;
    m->free_head = 0;
    *out = m;
    return FERRY_OK;
}

void gw_idmap_free(struct gw_idmap *m)
{
    if (!m)
        return;
    free(m->buckets);
    free(m->e);
    free(m);
}

bool gw_idmap_id_valid(const char *id)
{
    size_t n = id ? strnlen(id, GW_IDMAP_ID_MAX + 1) : 0;
    return n > 0 && n <= GW_IDMAP_ID_MAX;
}

/* FNV-1a. */
static uint32_t hash_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

uint32_t gw_idmap_find(const struct gw_idmap *m, const char *id)
{
    if (!gw_idmap_id_valid(id))
        return GW_IDMAP_NONE;
    uint32_t h = hash_of(id);
    for (uint32_t i = m->buckets[h & (m->nbuckets - 1)]; i != GW_IDMAP_NONE; i = m->e[i].next)
        if (m->e[i].hash == h && strcmp(m->e[i].id, id) == 0)
            return i;
    return GW_IDMAP_NONE;
}

uint32_t gw_idmap_add(struct gw_idmap *m, const char *id)
{
    if (!gw_idmap_id_valid(id) || m->free_head == GW_IDMAP_NONE)
        return GW_IDMAP_NONE;
    uint32_t i = m->free_head;
    struct entry *e = &m->e[i];
    m->free_head = e->next;
    memcpy(e->id, id, strlen(id) + 1);
    e->hash = hash_of(id);
    e->used = true;
    uint32_t *bucket = &m->buckets[e->hash & (m->nbuckets - 1)];
    e->next = *bucket;
    *bucket = i;
    m->count++;
    return i;
}

void gw_idmap_remove(struct gw_idmap *m, uint32_t slot)
{
    if (slot >= m->cap || !m->e[slot].used)
        return;
    struct entry *e = &m->e[slot];
    for (uint32_t *link = &m->buckets[e->hash & (m->nbuckets - 1)]; *link != GW_IDMAP_NONE;
         link = &m->e[*link].next) {
        if (*link == slot) {
            *link = e->next;
            break;
        }
    }
    e->used = false;
    e->id[0] = '\0';
    e->next = m->free_head;
    m->free_head = slot;
    m->count--;
}

const char *gw_idmap_id(const struct gw_idmap *m, uint32_t slot)
{
    return slot < m->cap && m->e[slot].used ? m->e[slot].id : "";
}

size_t gw_idmap_count(const struct gw_idmap *m)
{
    return m->count;
}

uint32_t gw_idmap_cap(const struct gw_idmap *m)
{
    return m->cap;
}
