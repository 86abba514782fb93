/* The cost of the gateway's per-request decisions with 10,000 known nodes:
 * gw_pacer_admit() (download admission) and gw_budget_ask() (link budget),
 * the pure modules the CoAP server asks on every block request. Time is
 * simulated (the pacer's clock moves a millisecond per request, so turns
 * end and nodes rotate; the budget's a microsecond, so most answers queue),
 * and the numbers are the decisions' CPU cost alone. Run by
 * bench/admission_bench.sh, which builds it.
 *
 *   ferry-admission-bench [NODES] [REQUESTS] [ROUNDS]
 *
 * Prints, per round, the nanoseconds per decision of each module. */
#include "gw_budget.h"
#include "gw_pacer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int main(int argc, char **argv)
{
    unsigned nodes = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
    unsigned requests = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2000000;
    unsigned rounds = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 7;
    if (nodes < 1 || nodes > 100000 || requests < 1 || rounds < 1) {
        fprintf(stderr, "usage: %s [NODES 1..100000] [REQUESTS] [ROUNDS]\n", argv[0]);
        return 2;
    }
    char(*ids)[16] = calloc(nodes, sizeof(*ids));
    if (!ids)
        return 1;
    for (unsigned i = 0; i < nodes; i++)
        snprintf(ids[i], sizeof(ids[i]), "node-%u", i);
    uint8_t sha[FERRY_SHA256_LEN];
    memset(sha, 0xab, sizeof(sha));
    printf("nodes %u, requests %u per round\n", nodes, requests);
    for (unsigned round = 0; round < rounds; round++) {
        /* 64 slots, every node known: 64 downloading, the rest queued. */
        struct gw_pacer *p = NULL;
        struct gw_pacer_opts po = {.max_transfers = 64,
                                   .max_requesters = nodes * 2 > 128 ? nodes * 2 : 128,
                                   .wait_ms = UINT32_MAX};
        struct gw_budget *b = NULL;
        struct gw_budget_opts bo = {.link_rate = 1u << 20, .max_nodes = nodes + 1};
        if (gw_pacer_new(&po, &p, NULL) != FERRY_OK || gw_budget_new(&bo, &b, NULL) != FERRY_OK)
            return 1;
        uint64_t t = 1;
        size_t known = 0;
        for (unsigned i = 0; i < nodes; i++)
            known += gw_pacer_admit(p, ids[i], sha, UINT64_MAX, t++, NULL) != FERRY_E_INVALID_ARG;
        if (known != nodes)
            return 1;
        uint32_t rnd = 2463534242u + round;
        uint64_t admitted = 0;
        uint64_t start = now_ns();
        for (unsigned k = 0; k < requests; k++) {
            const char *who = ids[next_rand(&rnd) % nodes];
            if (gw_pacer_admit(p, who, sha, UINT64_MAX, t, NULL) == FERRY_OK) {
                admitted++;
                gw_pacer_served(p, who, sha, 1024, t);
            }
            t += 1;
        }
        double pacer_ns = (double)(now_ns() - start) / requests;
        uint64_t ticket = 0, retry = 0, sent = 0;
        struct gw_budget_event ev[64];
        start = now_ns();
        for (unsigned k = 0; k < requests; k++) {
            const char *who = ids[next_rand(&rnd) % nodes];
            uint64_t ms = k / 1000; /* a request every microsecond */
            sent += gw_budget_ask(b, who, 1088, true, ms, &ticket, &retry) == GW_BUDGET_SEND;
            if (k % 1000 == 999)
                while (gw_budget_poll(b, ms, ev, 64) > 0)
                    ;
        }
        double budget_ns = (double)(now_ns() - start) / requests;
        printf("round %u: pacer %.1f ns/decision (%" PRIu64 " admitted, %zu holding, %zu "
               "waiting), budget %.1f ns/decision (%" PRIu64 " sent at once, %zu nodes)\n",
               round + 1, pacer_ns, admitted, gw_pacer_active(p), gw_pacer_waiting(p), budget_ns,
               sent, gw_budget_nodes(b));
        gw_pacer_free(p);
        gw_budget_free(b);
    }
    free(ids);
    return 0;
}
