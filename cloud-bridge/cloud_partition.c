/* The partition decisions (cloud_partition.h): views and rendezvous
 * hashing, without clock or database. */
#include "cloud_partition.h"

#include "ferry_names.h"

#include <stdlib.h>
#include <string.h>

struct partition_view {
    int64_t at;
    size_t n;
    char members[CLOUD_PARTITION_MAX_MEMBERS][FERRY_ID_MAX + 1]; /* sorted */
};

struct cloud_partition {
    char self[FERRY_ID_MAX + 1];
    int64_t lease_ms;
    /* A ring of the latest views, oldest first from `first`. */
    struct partition_view views[CLOUD_PARTITION_MAX_VIEWS];
    size_t first, count;
};

enum ferry_err cloud_partition_new(const struct cloud_partition_opts *o,
                                   struct cloud_partition **out, struct ferry_diag *d)
{
    *out = NULL;
    if (!o->self || !ferry_id_valid(o->self))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "partition: the instance name is not an id");
    if (o->lease_ms < CLOUD_PARTITION_LEASE_MIN || o->lease_ms > CLOUD_PARTITION_LEASE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "partition: lease %lld ms is not in %d..%d",
                          (long long)o->lease_ms, CLOUD_PARTITION_LEASE_MIN,
                          CLOUD_PARTITION_LEASE_MAX);
    struct cloud_partition *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    strcpy(p->self, o->self); /* ferry_id_valid() bounds it */
    p->lease_ms = o->lease_ms;
    *out = p;
    return FERRY_OK;
}

void cloud_partition_free(struct cloud_partition *p)
{
    free(p);
}

int64_t cloud_partition_beat_ms(const struct cloud_partition *p)
{
    return p->lease_ms / 10;
}

int64_t cloud_partition_settle_ms(const struct cloud_partition *p)
{
    return 3 * p->lease_ms / 10;
}

int64_t cloud_partition_lease_ms(const struct cloud_partition *p)
{
    return p->lease_ms;
}

const char *cloud_partition_self(const struct cloud_partition *p)
{
    return p->self;
}

static const struct partition_view *view_at(const struct cloud_partition *p, size_t i)
{
    return &p->views[(p->first + i) % CLOUD_PARTITION_MAX_VIEWS];
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static bool same_members(const struct partition_view *a, const struct partition_view *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->members[i], b->members[i]) != 0)
            return false;
    return true;
}

enum ferry_err cloud_partition_view(struct cloud_partition *p, int64_t now,
                                    const char *const *members, size_t n, bool *changed,
                                    struct ferry_diag *d)
{
    struct partition_view v = {.at = now};
    if (changed)
        *changed = false;
    if (n > CLOUD_PARTITION_MAX_MEMBERS)
        return ferry_fail(d, FERRY_E_PROTOCOL, "partition: %zu instances, at most %d", n,
                          CLOUD_PARTITION_MAX_MEMBERS);
    for (size_t i = 0; i < n; i++) {
        if (!members[i] || !ferry_id_valid(members[i]))
            return ferry_fail(d, FERRY_E_PROTOCOL, "partition: instance %zu is not an id", i);
        strcpy(v.members[i], members[i]);
    }
    qsort(v.members, n, sizeof(v.members[0]), cmp_name);
    for (size_t i = 0; i < n; i++)
        if (v.n == 0 || strcmp(v.members[v.n - 1], v.members[i]) != 0)
            memmove(v.members[v.n++], v.members[i], sizeof(v.members[0]));
    if (changed)
        *changed = p->count == 0 || !same_members(view_at(p, p->count - 1), &v);
    /* The clock went back (a step of the host's time): what was read
     * before cannot be placed any more, so start again from this view. */
    if (p->count > 0 && now < view_at(p, p->count - 1)->at)
        p->first = p->count = 0;
    if (p->count == CLOUD_PARTITION_MAX_VIEWS) {
        p->first = (p->first + 1) % CLOUD_PARTITION_MAX_VIEWS;
        p->count--;
    }
    p->views[(p->first + p->count) % CLOUD_PARTITION_MAX_VIEWS] = v;
    p->count++;
    return FERRY_OK;
}

/* FNV-1a over instance, a NUL and gateway, then a 64-bit finaliser
 * (splitmix64's) so that names differing in one byte spread. */
static uint64_t weight(const char *instance, const char *gateway)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (const char *c = instance;; c++) {
        h = (h ^ (uint8_t)*c) * UINT64_C(0x100000001b3);
        if (!*c)
            break;
    }
    for (const char *c = gateway; *c; c++)
        h = (h ^ (uint8_t)*c) * UINT64_C(0x100000001b3);
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    return h ^ (h >> 31);
}

/* The member with the highest weight (ties: the first by name), or NULL. */
static const char *owner_in(const struct partition_view *v, const char *gateway)
{
    const char *best = NULL;
    uint64_t best_w = 0;
    for (size_t i = 0; i < v->n; i++) {
        uint64_t w = weight(v->members[i], gateway);
        if (!best || w > best_w) {
            best = v->members[i];
            best_w = w;
        }
    }
    return best;
}

bool cloud_partition_owns(const struct cloud_partition *p, int64_t now, const char *gateway)
{
    int64_t settle = cloud_partition_settle_ms(p);
    if (p->count == 0 || view_at(p, p->count - 1)->at <= now - settle)
        return false; /* stale */
    /* From the newest view back to the latest one read settle ms ago or
     * earlier: every one of them must give us the gateway, and none may
     * follow the one before by settle or more (our lease may have expired
     * in that gap, and another instance taken the gateway meanwhile). */
    int64_t later = now;
    for (size_t i = p->count; i-- > 0;) {
        const struct partition_view *v = view_at(p, i);
        const char *o = owner_in(v, gateway);
        if (!o || strcmp(o, p->self) != 0 || later - v->at >= settle)
            return false;
        if (v->at <= now - settle)
            return true;
        later = v->at;
    }
    return false; /* no view old enough: we have not waited settle yet */
}

const char *cloud_partition_owner(const struct cloud_partition *p, const char *gateway)
{
    return p->count ? owner_in(view_at(p, p->count - 1), gateway) : NULL;
}

size_t cloud_partition_members(const struct cloud_partition *p)
{
    return p->count ? view_at(p, p->count - 1)->n : 0;
}
