/* Each client's share of the time the console spends answering reads, so
 * that no client (a script polling back to back, a page left open many
 * times over) can take the CPU that status ingestion needs. Pure: no clock
 * (times are arguments), no lock (cloud_http.c holds one), no I/O.
 *
 * Model. A client (its address) runs up a debt of the CPU time its reads
 * took (charge). The debt drains at `permille` thousandths of the time
 * that passes (100: a tenth of a core). A read may start while the debt is
 * at most `burst_us`; beyond, it waits until the debt has drained back to
 * burst_us (wait). So a page, which reads a few milliseconds' worth every
 * couple of seconds, never waits, nor does a client walking the whole node
 * list once (its reads fit the burst); one that reads without a pause gets
 * `permille` of a core and not more, and the wait is a pause, not an error.
 * Reads running at once from one client can overshoot the burst by their
 * own costs (bounded by the connections a client may hold).
 *
 * Bounds. At most CLOUD_HTTP_SHARE_CLIENTS clients are tracked; a new one
 * takes the place of the one with the smallest debt now (a client with no
 * debt has nothing to remember), so a crowd of addresses at worst lets one
 * of them start with a clean slate. */
#ifndef FERRY_CLOUD_HTTP_SHARE_H
#define FERRY_CLOUD_HTTP_SHARE_H

#include <stddef.h>
#include <stdint.h>

#define CLOUD_HTTP_SHARE_CLIENTS  64
#define CLOUD_HTTP_SHARE_WHO_MAX  47 /* an IPv6 address's text, and more */
#define CLOUD_HTTP_SHARE_PERMILLE 50 /* a client's share of a core: 5 % */
#define CLOUD_HTTP_SHARE_BURST_US (1000 * 1000)

struct cloud_http_share_client {
    char who[CLOUD_HTTP_SHARE_WHO_MAX + 1];
    uint64_t debt_us; /* as of at_ms */
    uint64_t at_ms;
};

struct cloud_http_share {
    unsigned permille; /* 1..1000 */
    uint64_t burst_us;
    size_t n;
    struct cloud_http_share_client c[CLOUD_HTTP_SHARE_CLIENTS];
};

/* permille is clamped to 1..1000. */
void cloud_http_share_init(struct cloud_http_share *s, unsigned permille, uint64_t burst_us);

/* How many ms `who` waits, from now_ms, before its next read may start
 * (0: at once). */
uint64_t cloud_http_share_wait(struct cloud_http_share *s, const char *who, uint64_t now_ms);

/* Adds cost_us of CPU time a read of who's used, at now_ms. */
void cloud_http_share_charge(struct cloud_http_share *s, const char *who, uint64_t now_ms,
                             uint64_t cost_us);

#endif
