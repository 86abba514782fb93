#include "cloud_http_presence.h"

#include "ferry_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kept sorted by id: lookups are a binary search, the list is a copy. */
struct cloud_http_presence {
    pthread_mutex_t lock;
    struct cloud_http_gw_presence *v;
    size_t n, cap;
    uint64_t version;
    uint64_t dropped;
};

enum ferry_err cloud_http_presence_new(struct cloud_http_presence **out, struct ferry_diag *d)
{
    struct cloud_http_presence *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "presence: out of memory");
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return FERRY_OK;
}

void cloud_http_presence_free(struct cloud_http_presence *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p->v);
    free(p);
}

/* The index of gateway, or where it would go (*found false). */
static size_t find(const struct cloud_http_presence *p, const char *gateway, bool *found)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->v[mid].gateway, gateway);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

enum ferry_err cloud_http_presence_put(struct cloud_http_presence *p, const char *gateway,
                                       const uint8_t *payload, size_t len, int64_t now,
                                       struct ferry_diag *d)
{
    if (!ferry_id_valid(gateway))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "presence: '%.80s' is not a gateway id", gateway);
    bool forget = len == 0, online = len == 6 && memcmp(payload, "online", 6) == 0;
    if (!forget && !online && !(len == 7 && memcmp(payload, "offline", 7) == 0))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "presence of gateway %s: expected 'online' or 'offline' (%zu bytes)",
                          gateway, len);
    enum ferry_err err = FERRY_OK;
    pthread_mutex_lock(&p->lock);
    bool found;
    size_t i = find(p, gateway, &found);
    if (forget && found) {
        memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(*p->v));
        p->n--;
        p->version++;
    } else if (!forget && found) {
        if (p->v[i].online != online) {
            p->v[i].online = online;
            p->v[i].since = now;
            p->version++;
        }
    } else if (!forget && p->n >= CLOUD_HTTP_PRESENCE_MAX) {
        if (p->dropped++ % 1000 == 0)
            ferry_log_warn(
                "presence: %d gateways known already; gateway %s not kept (%llu dropped)",
                CLOUD_HTTP_PRESENCE_MAX, gateway, (unsigned long long)p->dropped);
    } else if (!forget) {
        if (p->n == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 64;
            struct cloud_http_gw_presence *g = realloc(p->v, cap * sizeof(*g));
            if (!g) {
                err = ferry_fail(d, FERRY_E_NOMEM, "presence: out of memory");
                goto out;
            }
            p->v = g;
            p->cap = cap;
        }
        memmove(&p->v[i + 1], &p->v[i], (p->n - i) * sizeof(*p->v));
        memset(&p->v[i], 0, sizeof(p->v[i]));
        snprintf(p->v[i].gateway, sizeof(p->v[i].gateway), "%s", gateway);
        p->v[i].online = online;
        p->v[i].since = now;
        p->n++;
        p->version++;
    }
out:
    pthread_mutex_unlock(&p->lock);
    return err;
}

enum ferry_err cloud_http_presence_list(struct cloud_http_presence *p,
                                        struct cloud_http_gw_presence **out, size_t *n,
                                        size_t *online, struct ferry_diag *d)
{
    pthread_mutex_lock(&p->lock);
    size_t k = p->n, on = 0;
    struct cloud_http_gw_presence *copy = malloc((k ? k : 1) * sizeof(*copy));
    if (copy && k)
        memcpy(copy, p->v, k * sizeof(*copy));
    for (size_t i = 0; i < k; i++)
        on += p->v[i].online;
    pthread_mutex_unlock(&p->lock);
    if (!copy)
        return ferry_fail(d, FERRY_E_NOMEM, "presence: out of memory");
    *out = copy;
    *n = k;
    if (online)
        *online = on;
    return FERRY_OK;
}

bool cloud_http_presence_get(struct cloud_http_presence *p, const char *gateway,
                             struct cloud_http_gw_presence *out)
{
    pthread_mutex_lock(&p->lock);
    bool found;
    size_t i = find(p, gateway, &found);
    if (found)
        *out = p->v[i];
    pthread_mutex_unlock(&p->lock);
    return found;
}

uint64_t cloud_http_presence_version(struct cloud_http_presence *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t v = p->version;
    pthread_mutex_unlock(&p->lock);
    return v;
}
