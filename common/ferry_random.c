/* Random sources (ferry_random.h). */
#include "ferry_random.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* splitmix64's finaliser: one counter value becomes a well-spread word. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t fallback_word(void)
{
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 32;
    x += atomic_fetch_add(&counter, 1) * UINT64_C(0x9e3779b97f4a7c15);
    return mix64(x);
}

void ferry_random_fill(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = getrandom(p, len, GRND_NONBLOCK);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        /* Nothing from the kernel: the mixed fallback, a word at a time. */
        uint64_t w = fallback_word();
        size_t n = len < sizeof(w) ? len : sizeof(w);
        memcpy(p, &w, n);
        p += n;
        len -= n;
    }
}

uint64_t ferry_random_u64(void)
{
    uint64_t v;
    ferry_random_fill(&v, sizeof(v));
    return v;
}

uint32_t ferry_random_u32(void)
{
    uint32_t v;
    ferry_random_fill(&v, sizeof(v));
    return v;
}

void ferry_prng_seed(struct ferry_prng *p, uint64_t seed)
{
    p->s = seed ? seed : UINT64_C(0x9e3779b97f4a7c15);
}

uint64_t ferry_prng_next(struct ferry_prng *p)
{
    p->s ^= p->s >> 12;
    p->s ^= p->s << 25;
    p->s ^= p->s >> 27;
    return p->s * UINT64_C(2685821657736338717);
}
