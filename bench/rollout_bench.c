/* rollout_bench: the cost of rollout decisions (bench/README.md, "Rollouts").
 *
 *   rollout_bench controller DB NODES GATEWAYS ROUNDS
 *       An inventory at DB with NODES synthetic nodes (descriptions and a
 *       latest record each) on GATEWAYS gateways and one rollout of them in
 *       waves 1,10,50,100. Times the controller's tick (the transaction
 *       that decides, and the documents it publishes, to a counting stub):
 *       the first tick (targets every node), a tick with nothing new, a
 *       tick after 1 % of the nodes reported, and the periodic full scan.
 *   rollout_bench admission NODES ROUNDS
 *       A gateway policy holding a rollout document of NODES targets. Times
 *       one offer (the manifest hook's decision) and one admission (the
 *       block hook's) per request, for known and unknown nodes, against a
 *       bare lookup of the node in the same kind of map.
 *
 * Prints one line per measure with the median of ROUNDS and every round. */
#include "cloud_inventory.h"
#include "cloud_inventory_rollout.h"
#include "cloud_rollout_ctl.h"
#include "ferry_idmap.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_rollout.h"
#include "gw_policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ENVELOPE "{\"format\":1,\"bench\":\"never verified here\"}"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, const char *unit, uint64_t *v, size_t n, double scale)
{
    uint64_t sorted[64];
    memcpy(sorted, v, n * sizeof(*v));
    qsort(sorted, n, sizeof(*v), cmp_u64);
    printf("%-44s median %10.3f %s  rounds:", what, (double)sorted[n / 2] / scale, unit);
    for (size_t i = 0; i < n; i++)
        printf(" %.3f", (double)v[i] / scale);
    printf("\n");
    fflush(stdout);
}

static void die(const char *what, const struct ferry_diag *d, enum ferry_err err)
{
    fprintf(stderr, "rollout_bench: %s: %s\n", what, ferry_diag_str(d, err));
    exit(1);
}

/* ---- controller ------------------------------------------------------------------------ */

struct counter {
    size_t docs;
    size_t bytes;
};

static enum ferry_err count_publish(void *arg, const char *topic, const void *buf, size_t len,
                                    bool retain)
{
    (void)topic;
    (void)buf;
    (void)retain;
    struct counter *c = arg;
    c->docs++;
    c->bytes += len;
    return FERRY_OK;
}

static void fill(struct cloud_inventory *inv, size_t nodes, size_t gateways, uint64_t seq)
{
    struct ferry_diag d = {{0}};
    enum ferry_err err;
    size_t batch = 64;
    struct ferry_status *recs = calloc(batch, sizeof(*recs));
    struct ferry_record_id *ids = calloc(batch, sizeof(*ids));
    struct ferry_record_refusal *refused = calloc(batch, sizeof(*refused));
    if (!recs || !ids || !refused)
        die("allocating a batch", &d, ferry_fail(&d, FERRY_E_NOMEM, "out of memory"));
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < nodes; i += batch) {
        size_t n = nodes - i < batch ? nodes - i : batch;
        if ((err = cloud_rollouts_begin(inv, &d)) != FERRY_OK)
            die("begin", &d, err);
        for (size_t k = 0; k < n; k++) {
            struct ferry_nodeinfo ni;
            memset(&ni, 0, sizeof(ni));
            snprintf(ni.node, sizeof(ni.node), "node-%07zu", i + k);
            snprintf(ni.product, sizeof(ni.product), "fw");
            snprintf(ni.hw_model, sizeof(ni.hw_model), "m1");
            char gw[32];
            snprintf(gw, sizeof(gw), "gw-%03zu", (i + k) % gateways);
            if ((err = cloud_nodeinfo_put(inv, &ni, gw, now, &d)) != FERRY_OK)
                die("describing nodes", &d, err);
            struct ferry_status *st = &recs[k];
            memset(st, 0, sizeof(*st));
            snprintf(st->node, sizeof(st->node), "%s", ni.node);
            snprintf(st->gateway, sizeof(st->gateway), "%s", gw);
            snprintf(st->release_id, sizeof(st->release_id), "fw-1");
            snprintf(st->version, sizeof(st->version), "1.0.0");
            st->state = FERRY_STATE_IDLE;
            st->seq = seq;
            st->ts = now;
        }
        if ((err = cloud_rollouts_commit(inv, &d)) != FERRY_OK)
            die("commit", &d, err);
        struct cloud_ingest_out out = {.stored = ids, .refused = refused};
        if ((err = cloud_inventory_ingest(inv, recs, n, true, &out, &d)) != FERRY_OK)
            die("ingesting records", &d, err);
    }
    free(recs);
    free(ids);
    free(refused);
}

/* Records for the release from every hundredth node. */
static void progress(struct cloud_inventory *inv, size_t nodes, size_t gateways, uint64_t seq,
                     size_t offset)
{
    struct ferry_diag d = {{0}};
    struct ferry_status recs[64];
    struct ferry_record_id ids[64];
    struct ferry_record_refusal refused[64];
    size_t n = 0;
    for (size_t i = offset; i < nodes; i += 100) {
        struct ferry_status *st = &recs[n++];
        memset(st, 0, sizeof(*st));
        snprintf(st->node, sizeof(st->node), "node-%07zu", i);
        snprintf(st->gateway, sizeof(st->gateway), "gw-%03zu", i % gateways);
        snprintf(st->release_id, sizeof(st->release_id), "fw-2");
        snprintf(st->version, sizeof(st->version), "2.0.0");
        st->state = FERRY_STATE_DOWNLOADING;
        st->seq = seq;
        st->ts = (int64_t)time(NULL);
        if (n == 64 || i + 100 >= nodes) {
            struct cloud_ingest_out out = {.stored = ids, .refused = refused};
            enum ferry_err err = cloud_inventory_ingest(inv, recs, n, true, &out, &d);
            if (err != FERRY_OK)
                die("ingesting progress", &d, err);
            n = 0;
        }
    }
}

static int64_t create_rollout(struct cloud_inventory *inv)
{
    struct ferry_diag d = {{0}};
    struct cloud_rollout r;
    memset(&r, 0, sizeof(r));
    snprintf(r.product, sizeof(r.product), "fw");
    snprintf(r.release, sizeof(r.release), "fw-2");
    snprintf(r.version, sizeof(r.version), "2.0.0");
    r.seq = 2;
    r.envelope = (uint8_t *)strdup(ENVELOPE);
    r.envelope_len = strlen(ENVELOPE);
    enum ferry_err err = ferry_waves_parse("1,10,50,100", &r.plan, &d);
    r.plan.success_pct = 95;
    r.plan.min_final = 5;
    r.plan.halt_pct = 10;
    r.state = FERRY_ROLLOUT_SCHEDULED;
    r.created_at = r.state_at = r.start_at = (int64_t)time(NULL);
    r.revision = 1;
    if (err == FERRY_OK)
        err = cloud_rollouts_begin(inv, &d);
    if (err == FERRY_OK)
        err = cloud_rollout_insert(inv, &r, "operator:bench", &d);
    if (err == FERRY_OK)
        err = cloud_rollouts_commit(inv, &d);
    if (err != FERRY_OK)
        die("creating the rollout", &d, err);
    int64_t id = r.id;
    cloud_rollout_clear(&r);
    return id;
}

static int bench_controller(const char *db, size_t nodes, size_t gateways, size_t rounds)
{
    struct ferry_diag d = {{0}};
    uint64_t first[64], first_max[64], idle[64], step[64], full[64], pub[64];
    size_t docs = 0, bytes = 0, first_ticks = 0;
    for (size_t r = 0; r < rounds; r++) {
        unlink(db);
        char wal[4200];
        snprintf(wal, sizeof(wal), "%s-wal", db);
        unlink(wal);
        snprintf(wal, sizeof(wal), "%s-shm", db);
        unlink(wal);
        struct cloud_inventory *inv = NULL;
        enum ferry_err err = cloud_inventory_open(db, true, &inv, &d);
        if (err != FERRY_OK)
            die("opening the inventory", &d, err);
        fill(inv, nodes, gateways, 1);
        create_rollout(inv);
        struct counter cnt = {0};
        struct cloud_rollout_ctl_io io = {.arg = &cnt, .publish = count_publish};
        struct cloud_rollout_ctl *ctl = NULL;
        pub[r] = 0;
        if ((err = cloud_rollout_ctl_new(inv, "bench", &io, &ctl, &d)) != FERRY_OK)
            die("controller", &d, err);
        int64_t now = (int64_t)time(NULL) + 1;
        /* Targeting: as many ticks as it takes (at most 20,000 new targets
         * a tick), each one a transaction of its own. */
        uint64_t t0 = now_ns(), longest = 0;
        size_t targeted = 0, ticks = 0;
        do {
            uint64_t t = now_ns();
            cloud_rollout_ctl_tick(ctl, now);
            t = now_ns() - t;
            longest = t > longest ? t : longest;
            targeted = cloud_rollout_ctl_stats(ctl)->targeted;
            pub[r] += cloud_rollout_ctl_stats(ctl)->publish_us * 1000;
            ticks++;
        } while (targeted > 0 && ticks < 1000);
        first[r] = now_ns() - t0;
        first_max[r] = longest;
        first_ticks = ticks;
        docs = cnt.docs;
        bytes = cnt.bytes;
        t0 = now_ns();
        cloud_rollout_ctl_tick(ctl, now + 1);
        idle[r] = now_ns() - t0;
        progress(inv, nodes, gateways, 2, 0);
        t0 = now_ns();
        cloud_rollout_ctl_tick(ctl, now + 2);
        step[r] = now_ns() - t0;
        /* Ticks up to the periodic full scan, the 60th of the rollout. */
        for (size_t k = ticks + 2; k < 59; k++)
            cloud_rollout_ctl_tick(ctl, now + 3);
        t0 = now_ns();
        cloud_rollout_ctl_tick(ctl, now + 3);
        full[r] = now_ns() - t0;
        cloud_rollout_ctl_free(ctl);
        cloud_inventory_close(inv);
    }
    printf("controller: %zu nodes on %zu gateways, %zu rounds; targeting took %zu ticks and "
           "published %zu documents, %zu bytes\n",
           nodes, gateways, rounds, first_ticks, docs, bytes);
    report("targeting every node (all its ticks)", "ms", first, rounds, 1e6);
    report("  the longest of those ticks", "ms", first_max, rounds, 1e6);
    report("  building and publishing documents", "ms", pub, rounds, 1e6);
    report("tick with nothing new", "ms", idle, rounds, 1e6);
    report("tick after 1% of the nodes reported", "ms", step, rounds, 1e6);
    report("periodic full scan (every 60th tick)", "ms", full, rounds, 1e6);
    return 0;
}

/* ---- admission ---------------------------------------------------------------------------- */

static int bench_admission(size_t nodes, size_t rounds)
{
    enum { REQUESTS = 200000 };
    struct gw_policy *p = NULL;
    struct ferry_diag d = {{0}};
    if (gw_policy_new(1, &p, &d) != FERRY_OK)
        die("policy", &d, FERRY_E_NOMEM);
    struct ferry_manifest rel;
    memset(&rel, 0, sizeof(rel));
    snprintf(rel.release_id, sizeof(rel.release_id), "fw-2");
    snprintf(rel.product, sizeof(rel.product), "fw");
    memset(rel.sha256, 0x22, sizeof(rel.sha256));
    struct ferry_rollout_doc *doc = calloc(1, sizeof(*doc));
    doc->rollout = 1;
    doc->revision = 1;
    snprintf(doc->gateway, sizeof(doc->gateway), "gw");
    snprintf(doc->product, sizeof(doc->product), "fw");
    doc->state = FERRY_ROLLOUT_RUNNING;
    doc->release = (uint8_t *)strdup(ENVELOPE);
    doc->release_len = strlen(ENVELOPE);
    doc->min_final = 5;
    doc->halt_pct = 10;
    doc->nwaves = 4;
    doc->open_waves = 2;
    struct ferry_window_range wr = {0x3e, 60, 240};
    if (ferry_window_set(&doc->windows[0], "Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3", &wr, 1,
                         &d) != FERRY_OK)
        die("window", &d, FERRY_E_INVALID_ARG);
    doc->nwindows = 1;
    doc->targets = calloc(nodes, sizeof(*doc->targets));
    doc->ntargets = nodes;
    for (size_t i = 0; i < nodes; i++) {
        snprintf(doc->targets[i].node, sizeof(doc->targets[i].node), "node-%07zu", i);
        doc->targets[i].wave = (uint8_t)(i % 4);
        doc->targets[i].window = i % 3 == 0 ? 0 : -1;
        doc->targets[i].state = -1;
    }
    struct gw_policy_effects fx = {0};
    if (gw_policy_rollout(p, doc, &rel, NULL, (int64_t)time(NULL), &fx) != FERRY_OK)
        die("rollout", &d, FERRY_E_NOMEM);
    gw_policy_cached(p, rel.sha256, true, &fx);
    struct ferry_idmap *bare = NULL;
    if (ferry_idmap_new(nodes, 1, &bare, &d) != FERRY_OK)
        die("map", &d, FERRY_E_NOMEM);
    char(*ids)[32] = calloc(nodes + 1000, sizeof(*ids));
    for (size_t i = 0; i < nodes + 1000; i++) {
        snprintf(ids[i], sizeof(ids[i]), "node-%07zu", i); /* the last 1000 are unknown */
        if (i < nodes && ferry_idmap_put(bare, ids[i], (uint32_t)i) != FERRY_OK)
            die("map", &d, FERRY_E_NOMEM);
    }
    uint64_t offer_ns[64], admit_ns[64], lookup_ns[64], unknown_ns[64];
    int64_t wall = (int64_t)time(NULL);
    uint64_t sink = 0, x = 88172645463325252u;
    for (size_t r = 0; r < rounds; r++) {
        struct gw_offer o;
        uint64_t t0 = now_ns();
        for (int k = 0; k < REQUESTS; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            gw_policy_offer(p, "fw", ids[x % nodes], wall, (uint64_t)k, &o);
            sink += o.len;
        }
        offer_ns[r] = (now_ns() - t0) / REQUESTS;
        t0 = now_ns();
        for (int k = 0; k < REQUESTS; k++) {
            uint32_t age;
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            sink += gw_policy_admit(p, rel.sha256, ids[x % nodes], &age, NULL, NULL);
        }
        admit_ns[r] = (now_ns() - t0) / REQUESTS;
        t0 = now_ns();
        for (int k = 0; k < REQUESTS; k++) {
            uint32_t age;
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            sink += gw_policy_admit(p, rel.sha256, ids[nodes + x % 1000], &age, NULL, NULL);
        }
        unknown_ns[r] = (now_ns() - t0) / REQUESTS;
        t0 = now_ns();
        for (int k = 0; k < REQUESTS; k++) {
            uint32_t v = 0;
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            sink += ferry_idmap_get(bare, ids[x % nodes], &v) ? v : 0;
        }
        lookup_ns[r] = (now_ns() - t0) / REQUESTS;
    }
    printf("admission: %zu targets, %d requests a round, %zu rounds (checksum %" PRIu64 ")\n",
           nodes, REQUESTS, rounds, sink % 1000);
    report("offer (manifest hook), known node", "ns", offer_ns, rounds, 1);
    report("admit (block hook), known node", "ns", admit_ns, rounds, 1);
    report("admit (block hook), unknown node", "ns", unknown_ns, rounds, 1);
    report("bare map lookup of the node (the floor)", "ns", lookup_ns, rounds, 1);
    ferry_idmap_free(bare);
    free(ids);
    gw_policy_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    ferry_log_init("rollout_bench", FERRY_LOG_WARN);
    if (argc == 6 && strcmp(argv[1], "controller") == 0) {
        size_t rounds = strtoul(argv[5], NULL, 10);
        return bench_controller(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                                rounds < 1    ? 1
                                : rounds > 64 ? 64
                                              : rounds);
    }
    if (argc == 4 && strcmp(argv[1], "admission") == 0) {
        size_t rounds = strtoul(argv[3], NULL, 10);
        return bench_admission(strtoul(argv[2], NULL, 10), rounds < 1    ? 1
                                                           : rounds > 64 ? 64
                                                                         : rounds);
    }
    fprintf(stderr, "usage: rollout_bench controller DB NODES GATEWAYS ROUNDS\n"
                    "       rollout_bench admission NODES ROUNDS\n");
    return 2;
}
