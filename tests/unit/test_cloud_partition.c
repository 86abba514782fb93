/* How serve instances split gateways without shared subscriptions
 * (cloud_partition.h): a simulated world of instances that beat on a shared
 * lease table, driven by a made-up clock, checked at every millisecond
 * for a gateway owned twice; then the lease table on a real database
 * (SQLite, and PostgreSQL in the .pg run), and a batch handed over between
 * two instances de-duplicated by the inventory. */
#include "cunit_main.h"

#include "cloud_inventory.h"
#include "cloud_partition.h"
#include "db_fixture.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define LEASE   1000 /* ms: beat 100, settle 300 */
#define NGW     64
#define MAXINST 4

static struct cloud_partition *part(const char *self)
{
    struct cloud_partition_opts o = {.self = self, .lease_ms = LEASE};
    struct cloud_partition *p = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_partition_new(&o, &p, NULL), FERRY_OK);
    return p;
}

static const char *gw(int i)
{
    static char names[NGW][16];
    snprintf(names[i], sizeof(names[i]), "gw-%d", i);
    return names[i];
}

/* The simulated world: instances, their leases in one table (expiry per
 * instance, 0: none), each beating every beat_ms from its own offset while
 * it is alive and can reach the database. */
struct world {
    struct cloud_partition *p[MAXINST];
    int64_t expires[MAXINST];
    int64_t next_beat[MAXINST];
    bool alive[MAXINST], reach[MAXINST];
    int n;
    int64_t now;
    int twice;        /* gateway-ms owned by two instances */
    int64_t orphaned; /* gateway-ms owned by none */
};

static const char *const NAMES[MAXINST] = {"serve-a", "serve-b", "serve-c", "serve-d"};

static void beat(struct world *w, int i)
{
    w->expires[i] = w->now + LEASE;
    const char *live[MAXINST];
    size_t n = 0;
    for (int j = 0; j < w->n; j++)
        if (w->expires[j] > w->now)
            live[n++] = NAMES[j];
    CU_ASSERT_EQUAL(cloud_partition_view(w->p[i], w->now, live, n, NULL, NULL), FERRY_OK);
}

static void start(struct world *w, int i, int64_t offset)
{
    if (i >= w->n) {
        w->n = i + 1;
        w->p[i] = part(NAMES[i]);
    }
    w->alive[i] = w->reach[i] = true;
    w->next_beat[i] = w->now + offset;
}

/* Runs the world for ms milliseconds, checking every gateway each one. */
static void run(struct world *w, int64_t ms)
{
    for (int64_t end = w->now + ms; w->now < end; w->now++) {
        for (int i = 0; i < w->n; i++)
            if (w->alive[i] && w->now >= w->next_beat[i]) {
                if (w->reach[i])
                    beat(w, i);
                w->next_beat[i] = w->now + cloud_partition_beat_ms(w->p[i]);
            }
        for (int g = 0; g < NGW; g++) {
            int owners = 0;
            for (int i = 0; i < w->n; i++)
                owners += w->alive[i] && cloud_partition_owns(w->p[i], w->now, gw(g));
            w->twice += owners > 1;
            w->orphaned += owners == 0;
        }
    }
}

/* How many gateways instance i owns now. */
static int owned(const struct world *w, int i)
{
    int k = 0;
    for (int g = 0; g < NGW; g++)
        k += cloud_partition_owns(w->p[i], w->now, gw(g));
    return k;
}

static void free_world(struct world *w)
{
    for (int i = 0; i < w->n; i++)
        cloud_partition_free(w->p[i]);
}

/* Alone, an instance takes every gateway, but only after settle. */
static void one_instance_takes_all_after_settle(void)
{
    struct world w = {.now = 5000};
    start(&w, 0, 0);
    run(&w, 1);
    CU_ASSERT_EQUAL(owned(&w, 0), 0);
    run(&w, 300);
    CU_ASSERT_EQUAL(owned(&w, 0), NGW);
    CU_ASSERT_EQUAL(w.twice, 0);
    free_world(&w);
}

/* Instances join one after the other, at odd offsets: never a gateway
 * owned twice, every gateway owned again within settle plus a beat of each
 * change, and the gateways spread over all of them. */
static void joins_never_own_twice(void)
{
    struct world w = {.now = 1000};
    start(&w, 0, 0);
    run(&w, 2000);
    int64_t settled = w.orphaned;
    start(&w, 1, 37);
    run(&w, 2000);
    start(&w, 2, 71);
    start(&w, 3, 13);
    run(&w, 2000);
    CU_ASSERT_EQUAL(w.twice, 0);
    /* Each join orphans the gateways that move for at most settle + 2 beats. */
    CU_ASSERT(w.orphaned - settled <= 3 * NGW * 500);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        CU_ASSERT(owned(&w, i) > 0);
        total += owned(&w, i);
    }
    CU_ASSERT_EQUAL(total, NGW);
    free_world(&w);
}

/* An instance that dies is taken over once its lease expired and settle
 * passed; one cut off from the database stops by itself before that. */
static void a_dead_instance_is_taken_over(void)
{
    struct world w = {.now = 1000};
    start(&w, 0, 0);
    start(&w, 1, 50);
    run(&w, 2000);
    CU_ASSERT_EQUAL(owned(&w, 0) + owned(&w, 1), NGW);
    int64_t before = w.orphaned;
    w.alive[1] = false; /* kill -9 */
    run(&w, LEASE + 300 + 2 * 100 + 1);
    CU_ASSERT_EQUAL(owned(&w, 0), NGW);
    CU_ASSERT(w.orphaned > before);
    /* Back, and cut off from the database: it stops within settle. */
    start(&w, 1, 0);
    run(&w, 2000);
    CU_ASSERT(owned(&w, 1) > 0);
    w.reach[1] = false;
    run(&w, 300);
    CU_ASSERT_EQUAL(owned(&w, 1), 0);
    run(&w, LEASE + 500);
    CU_ASSERT_EQUAL(owned(&w, 0), NGW);
    /* It reaches the database again: it waits settle before taking back. */
    w.reach[1] = true;
    run(&w, 2000);
    CU_ASSERT(owned(&w, 1) > 0);
    CU_ASSERT_EQUAL(owned(&w, 0) + owned(&w, 1), NGW);
    CU_ASSERT_EQUAL(w.twice, 0);
    free_world(&w);
}

/* One that leaves cleanly (lease removed) is taken over after settle. */
static void a_clean_leave_is_taken_over_after_settle(void)
{
    struct world w = {.now = 1000};
    start(&w, 0, 0);
    start(&w, 1, 50);
    run(&w, 2000);
    w.alive[1] = false;
    w.expires[1] = 0;
    run(&w, 300 + 2 * 100 + 1);
    CU_ASSERT_EQUAL(owned(&w, 0), NGW);
    CU_ASSERT_EQUAL(w.twice, 0);
    free_world(&w);
}

/* Adding an instance moves gateways only to it (rendezvous hashing). */
static void a_join_moves_gateways_only_to_the_newcomer(void)
{
    struct cloud_partition *p = part("serve-a");
    const char *two[] = {"serve-a", "serve-b"}, *three[] = {"serve-c", "serve-a", "serve-b"};
    char before[NGW][FERRY_ID_MAX + 1];
    bool changed = false;
    CU_ASSERT_EQUAL(cloud_partition_view(p, 0, two, 2, &changed, NULL), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    for (int g = 0; g < NGW; g++)
        snprintf(before[g], sizeof(before[g]), "%s", cloud_partition_owner(p, gw(g)));
    CU_ASSERT_EQUAL(cloud_partition_view(p, 1, two, 2, &changed, NULL), FERRY_OK);
    CU_ASSERT_FALSE(changed);
    CU_ASSERT_EQUAL(cloud_partition_view(p, 2, three, 3, &changed, NULL), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL(cloud_partition_members(p), 3);
    int moved = 0;
    for (int g = 0; g < NGW; g++) {
        const char *now = cloud_partition_owner(p, gw(g));
        if (strcmp(now, before[g]) != 0) {
            CU_ASSERT_STRING_EQUAL(now, "serve-c");
            moved++;
        }
    }
    CU_ASSERT(moved > NGW / 6 && moved < NGW / 2);
    cloud_partition_free(p);
}

static void bad_input_is_refused(void)
{
    struct cloud_partition *p = NULL;
    struct cloud_partition_opts o = {.self = "a b", .lease_ms = LEASE};
    CU_ASSERT_EQUAL(cloud_partition_new(&o, &p, NULL), FERRY_E_INVALID_ARG);
    o.self = "serve-a";
    o.lease_ms = 10;
    CU_ASSERT_EQUAL(cloud_partition_new(&o, &p, NULL), FERRY_E_INVALID_ARG);
    p = part("serve-a");
    const char *bad[] = {"serve-a", "../x"};
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_partition_view(p, 10, bad, 2, NULL, &d), FERRY_E_PROTOCOL);
    CU_ASSERT_EQUAL(cloud_partition_members(p), 0);
    const char *many[CLOUD_PARTITION_MAX_MEMBERS + 1];
    for (int i = 0; i <= CLOUD_PARTITION_MAX_MEMBERS; i++)
        many[i] = "serve-a";
    CU_ASSERT_EQUAL(cloud_partition_view(p, 10, many, CLOUD_PARTITION_MAX_MEMBERS + 1, NULL, &d),
                    FERRY_E_PROTOCOL);
    /* Duplicates count once. */
    CU_ASSERT_EQUAL(cloud_partition_view(p, 10, many, 5, NULL, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_partition_members(p), 1);
    for (int64_t t = 110; t <= 1000; t += 100)
        CU_ASSERT_EQUAL(cloud_partition_view(p, t, many, 1, NULL, NULL), FERRY_OK);
    CU_ASSERT_TRUE(cloud_partition_owns(p, 1000, "gw-1"));
    /* The clock steps back: the history starts again, nothing owned for settle. */
    CU_ASSERT_EQUAL(cloud_partition_view(p, 500, many, 1, NULL, NULL), FERRY_OK);
    CU_ASSERT_FALSE(cloud_partition_owns(p, 500, "gw-1"));
    for (int64_t t = 600; t <= 800; t += 100)
        CU_ASSERT_EQUAL(cloud_partition_view(p, t, many, 1, NULL, NULL), FERRY_OK);
    CU_ASSERT_FALSE(cloud_partition_owns(p, 799, "gw-1"));
    CU_ASSERT_TRUE(cloud_partition_owns(p, 800, "gw-1"));
    /* Not in its own view: owns nothing, however long. */
    const char *other[] = {"serve-b"};
    for (int64_t t = 900; t < 3000; t += 100)
        CU_ASSERT_EQUAL(cloud_partition_view(p, t, other, 1, NULL, NULL), FERRY_OK);
    CU_ASSERT_FALSE(cloud_partition_owns(p, 2950, "gw-1"));
    cloud_partition_free(p);
}

/* ---- on a real database ------------------------------------------------ */

static struct cloud_db *open_db(const char *target)
{
    struct cloud_db *db = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cloud_db_open(target, true, &db, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "open: %s\n", d.msg);
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    return db;
}

static void leases_in_the_database(void)
{
    char target[PATH_MAX + 128];
    snprintf(target, sizeof(target), "%s", ferry_test_db("leases"));
    struct cloud_db *a_db = open_db(target), *b_db = open_db(target);
    struct cloud_partition *a = part("serve-a"), *b = part("serve-b");
    struct ferry_diag d = {{0}};
    bool changed = false;
    int64_t t = INT64_C(1795780000000);
    CU_ASSERT_EQUAL_FATAL(cloud_partition_setup(a_db, "f1", t, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_partition_setup(b_db, "f1", t, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_partition_beat(a, a_db, "f1", t, &changed, &d), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL(cloud_partition_members(a), 1);
    CU_ASSERT_EQUAL(cloud_partition_beat(b, b_db, "f1", t + 10, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_partition_members(b), 2);
    /* Another fleet's instances are not ours. */
    struct cloud_partition *c = part("serve-c");
    CU_ASSERT_EQUAL(cloud_partition_beat(c, b_db, "f2", t + 20, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_partition_members(c), 1);
    CU_ASSERT_EQUAL(cloud_partition_beat(a, a_db, "f1", t + 100, &changed, &d), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL(cloud_partition_members(a), 2);
    /* b leaves: a's next view holds only a. */
    CU_ASSERT_EQUAL(cloud_partition_leave(b, b_db, "f1", &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_partition_beat(a, a_db, "f1", t + 200, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_partition_members(a), 1);
    /* a stops beating: its lease has expired for c's reader a lease later. */
    CU_ASSERT_EQUAL(cloud_partition_beat(c, b_db, "f1", t + 200 + LEASE, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_partition_members(c), 1);
    CU_ASSERT_STRING_EQUAL(cloud_partition_owner(c, "gw-1"), "serve-c");
    cloud_partition_free(a);
    cloud_partition_free(b);
    cloud_partition_free(c);
    cloud_db_close(a_db);
    cloud_db_close(b_db);
}

/* A handover: the old owner committed a batch and its ack was lost; the
 * gateway sends it again and the new owner, on its own connection, stores
 * nothing twice and acknowledges every record. */
static void a_batch_handed_over_is_stored_once(void)
{
    char target[PATH_MAX + 128];
    snprintf(target, sizeof(target), "%s", ferry_test_db("handover"));
    struct cloud_inventory *old = NULL, *new = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_inventory_open(target, true, &old, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_inventory_open(target, true, &new, NULL), FERRY_OK);
    struct ferry_status recs[3];
    for (int i = 0; i < 3; i++) {
        memset(&recs[i], 0, sizeof(recs[i]));
        snprintf(recs[i].node, sizeof(recs[i].node), "n%d", i);
        snprintf(recs[i].gateway, sizeof(recs[i].gateway), "gw-1");
        snprintf(recs[i].release_id, sizeof(recs[i].release_id), "r1");
        snprintf(recs[i].version, sizeof(recs[i].version), "1.0.1");
        recs[i].state = FERRY_STATE_DOWNLOADING;
        recs[i].total = 1000;
        recs[i].seq = 1;
        recs[i].ts = 1795780000;
    }
    struct ferry_record_id stored[3];
    struct ferry_record_refusal refused[3];
    for (int pass = 0; pass < 2; pass++) {
        struct cloud_ingest_out out = {.stored = stored, .refused = refused};
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(cloud_inventory_ingest(pass ? new : old, recs, 3, true, &out, &d),
                        FERRY_OK);
        CU_ASSERT_EQUAL(out.nstored, 3);
        CU_ASSERT_EQUAL(out.nrefused, 0);
    }
    CU_ASSERT_EQUAL(ferry_test_db_scalar(target, "SELECT count(*) FROM records"), 3);
    CU_ASSERT_EQUAL(ferry_test_db_scalar(target, "SELECT count(*) FROM refused"), 0);
    cloud_inventory_close(old);
    cloud_inventory_close(new);
}

const char *const ferry_suite_name = "cloud_partition";
const struct ferry_test_case ferry_tests[] = {
    {"one instance takes all after settle", one_instance_takes_all_after_settle},
    {"joins never own twice", joins_never_own_twice},
    {"a dead instance is taken over", a_dead_instance_is_taken_over},
    {"a clean leave is taken over after settle", a_clean_leave_is_taken_over_after_settle},
    {"a join moves gateways only to the newcomer", a_join_moves_gateways_only_to_the_newcomer},
    {"bad input is refused", bad_input_is_refused},
    {"leases in the database", leases_in_the_database},
    {"a batch handed over is stored once", a_batch_handed_over_is_stored_once},
    {NULL, NULL},
};
