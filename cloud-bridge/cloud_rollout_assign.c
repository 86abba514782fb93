#include "cloud_rollout_assign.h"

#include "ferry_bytes.h"
#include "ferry_sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DOMAIN "ferry-rollout-wave"

uint32_t cloud_rollout_bucket(uint64_t rollout_id, const char *node)
{
    /* "ferry-rollout-wave\0<id>\0<node>": NULs keep "1"+"2x" apart from "12"+"x". */
    uint8_t buf[sizeof(DOMAIN) + 21 + FERRY_ID_MAX + 1];
    size_t n = sizeof(DOMAIN); /* with its NUL */
    memcpy(buf, DOMAIN, n);
    n += (size_t)snprintf((char *)buf + n, 21, "%" PRIu64, rollout_id) + 1;
    size_t len = strnlen(node, FERRY_ID_MAX);
    memcpy(buf + n, node, len);
    n += len;
    uint8_t digest[FERRY_SHA256_LEN];
    ferry_sha256(buf, n, digest);
    return (uint32_t)(ferry_get_be64(digest) % FERRY_SHARE_FULL);
}

unsigned cloud_rollout_wave(const struct ferry_rollout_plan *p, uint64_t rollout_id,
                            const struct ferry_sel_subject *who)
{
    for (size_t i = 0; i < p->nwaves; i++)
        if (p->waves[i].group && ferry_sel_term_match(&p->waves[i].sel, who))
            return (unsigned)i;
    uint32_t bucket = cloud_rollout_bucket(rollout_id, who->node);
    for (size_t i = 0; i < p->nwaves; i++)
        if (!p->waves[i].group && bucket < p->waves[i].share_bp)
            return (unsigned)i;
    return p->nwaves ? (unsigned)(p->nwaves - 1) : 0; /* not reached: the last wave is 100 % */
}

int cloud_rollout_window(const struct ferry_rollout_plan *p, const struct ferry_sel_subject *who)
{
    for (size_t i = 0; i < p->nwindows; i++)
        if (ferry_sel_match(&p->windows[i].sel, who))
            return (int)i;
    return -1;
}
