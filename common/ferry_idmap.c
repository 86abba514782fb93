#include "ferry_idmap.h"

#include <stdlib.h>
#include <string.h>

/* Slots hold where the key starts in the arena (+1, so 0 means free) and
 * the value: 8 bytes a slot, the keys packed with their NULs. */
struct slot {
    uint32_t key; /* arena offset + 1; 0: free */
    uint32_t value;
};

struct ferry_idmap {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t n;
    uint64_t seed;
    char *arena;
    size_t used, arena_cap;
};

#define ARENA_MAX UINT32_MAX

static uint64_t hash(const struct ferry_idmap *m, const char *key, size_t len)
{
    uint64_t h = UINT64_C(1469598103934665603) ^ m->seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= UINT64_C(1099511628211);
    }
    /* Finalise (splitmix64) so the low bits used for the index mix well. */
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    return h ^ (h >> 31);
}

static const char *key_at(const struct ferry_idmap *m, const struct slot *s)
{
    return m->arena + s->key - 1;
}

static struct slot *find(const struct ferry_idmap *m, const char *key, size_t len)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)hash(m, key, len) & mask;; i = (i + 1) & mask) {
        struct slot *s = &m->slots[i];
        if (!s->key)
            return s;
        const char *k = key_at(m, s);
        if (memcmp(k, key, len) == 0 && k[len] == 0)
            return s;
    }
}

static enum ferry_err resize(struct ferry_idmap *m, size_t cap)
{
    struct slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = calloc(cap, sizeof(*m->slots));
    if (!m->slots) {
        m->slots = old;
        return FERRY_E_NOMEM;
    }
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) {
            const char *k = key_at(m, &old[i]);
            *find(m, k, strlen(k)) = old[i];
        }
    free(old);
    return FERRY_OK;
}

enum ferry_err ferry_idmap_new(size_t expect, uint64_t seed, struct ferry_idmap **out,
                               struct ferry_diag *d)
{
    struct ferry_idmap *m = calloc(1, sizeof(*m));
    if (!m)
        return ferry_fail(d, FERRY_E_NOMEM, "idmap: out of memory");
    size_t cap = 16;
    while (cap < expect * 2 && cap < ((size_t)1 << 40))
        cap *= 2;
    m->seed = seed;
    if (resize(m, cap) != FERRY_OK) {
        free(m);
        return ferry_fail(d, FERRY_E_NOMEM, "idmap: out of memory for %zu entries", expect);
    }
    *out = m;
    return FERRY_OK;
}

void ferry_idmap_free(struct ferry_idmap *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m->arena);
    free(m);
}

static bool arena_add(struct ferry_idmap *m, const char *key, size_t len, uint32_t *off)
{
    if (m->used + len + 1 > ARENA_MAX - 1)
        return false;
    if (m->used + len + 1 > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap * 2 : 1024;
        while (cap < m->used + len + 1)
            cap *= 2;
        char *a = realloc(m->arena, cap);
        if (!a)
            return false;
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->used, key, len);
    m->arena[m->used + len] = 0;
    *off = (uint32_t)m->used + 1;
    m->used += len + 1;
    return true;
}

enum ferry_err ferry_idmap_put(struct ferry_idmap *m, const char *key, uint32_t value)
{
    size_t len = key ? strnlen(key, FERRY_IDMAP_KEY_MAX + 1) : 0;
    if (len == 0 || len > FERRY_IDMAP_KEY_MAX)
        return FERRY_E_INVALID_ARG;
    if ((m->n + 1) * 2 > m->cap && resize(m, m->cap * 2) != FERRY_OK)
        return FERRY_E_NOMEM;
    struct slot *s = find(m, key, len);
    if (!s->key) {
        uint32_t off = 0;
        if (!arena_add(m, key, len, &off))
            return FERRY_E_NOMEM;
        s->key = off;
        m->n++;
    }
    s->value = value;
    return FERRY_OK;
}

bool ferry_idmap_get(const struct ferry_idmap *m, const char *key, uint32_t *value)
{
    size_t len = key ? strnlen(key, FERRY_IDMAP_KEY_MAX + 1) : 0;
    if (len == 0 || len > FERRY_IDMAP_KEY_MAX)
        return false;
    const struct slot *s = find(m, key, len);
    if (!s->key)
        return false;
    if (value)
        *value = s->value;
    return true;
}

size_t ferry_idmap_count(const struct ferry_idmap *m)
{
    return m->n;
}
