#include "cloud_serve.h"

#include "cloud_budget.h"
#include "cloud_config.h"
#include "cloud_db.h"
#include "cloud_http.h"
#include "cloud_inventory.h"
#include "cloud_partition.h"
#include "cloud_rollout_ctl.h"
#include "cloud_store.h"
#include "cloud_subcmd.h"
#include "ferry_batch.h"
#include "ferry_hex.h"
#include "ferry_loop.h"
#include "ferry_names.h"
#include "ferry_random.h"
#include "ferry_status.h"
#include "ferry_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECONNECT_MIN_MS    500
#define RECONNECT_MAX_MS    30000
#define SERVED_REPORT_BYTES (UINT64_C(64) << 20)
/* Turns sent per pass of the pump before the loop takes other events
 * (status batches, other gateways' requests): at most 16 x 4 chunks. */
#define PUMP_TURNS 16
/* How long the pump waits when the MQTT client's buffer is full. */
#define PUMP_BUSY_MS       20
#define GATEWAY_RATE_MAX   (UINT64_C(1) << 20) /* MiB/s: the flag's upper bound */
#define ROLLOUT_TICK_MS    1000
#define SERVE_VERIFIED_MAX 64 /* store entries whose hash was checked, remembered */
#define SERVE_CHECKS_MAX   4  /* store entries being hashed at once */

struct serve_cfg {
    struct ferry_keeper_conf mqtt;
    char *fleet;
    char *store;
    char *db;
    char *instance;
    uint64_t gateway_rate_mib; /* per gateway, MiB/s; 0: turns only */
    bool partition;            /* split gateways through the database from the start */
    uint64_t partition_lease_ms;
    struct cloud_http_cfg http; /* --http: the console (cloud_http.h) */
    enum ferry_log_level log_level;
};

static const struct ferry_opt serve_opts[] = {
    CLOUD_OPT_MQTT(serve_cfg),
    CLOUD_OPT(serve_cfg, "fleet", FERRY_OPT_STR, fleet, "ID", "fleet to serve", FERRY_OPT_REQUIRED),
    CLOUD_OPT(serve_cfg, "store", FERRY_OPT_STR, store, "DIR",
              "artifact store filled by 'ferry-cloud publish'", FERRY_OPT_REQUIRED),
    CLOUD_OPT(serve_cfg, "db", FERRY_OPT_STR, db, "DB",
              "fleet inventory: an SQLite file, created if missing, or a postgresql:// URL "
              "(the database must exist; its tables are created; the password comes from a "
              "password file, never the URL)",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(serve_cfg, "instance", FERRY_OPT_STR, instance, "NAME",
              "stable name for this instance: MQTT client id ferry-cloud-serve-NAME "
              "(default ferry-cloud-serve-<pid>)",
              0),
    CLOUD_OPT(serve_cfg, "gateway-rate-mib", FERRY_OPT_U64, gateway_rate_mib, "N",
              "artifact bytes one gateway may be sent, in MiB a second beyond a burst of a "
              "quarter of that (at least 2 MiB); gateways take turns whatever this is; 0: no "
              "rate (default 128, about 1 Gbit/s)",
              0),
    CLOUD_OPT(serve_cfg, "partition", FERRY_OPT_BOOL, partition, NULL,
              "split gateways among the fleet's instances through the database (leases), not "
              "by shared subscriptions: for bridged brokers, whose shared groups are each "
              "broker's own. Chosen by itself on a broker without shared subscriptions",
              0),
    CLOUD_OPT(serve_cfg, "partition-lease-ms", FERRY_OPT_U64, partition_lease_ms, "MS",
              "with partitions: how long an instance's lease lasts without a renewal (it is "
              "renewed every tenth of it); a killed instance's gateways are taken over after "
              "1.3 times this (default 10000, at least 1000)",
              0),
    CLOUD_OPT_HTTP(serve_cfg),
    CLOUD_OPT_LOG_LEVEL(serve_cfg),
};

static const struct cloud_subcmd serve_cmd = {
    "serve", "--broker URL --fleet ID --store DIR --db DB [--instance NAME]",
    "Streams artifacts to gateways and records their nodes' status in the\n"
    "inventory, until SIGINT or SIGTERM. Run several with the same --fleet to\n"
    "share the load: each gateway's work reaches one of them through a shared\n"
    "subscription or, on brokers without (chosen by itself) and bridged ones\n"
    "(--partition), through partitions of the gateways agreed in the inventory.\n"
    "Gateways take turns, each at most --gateway-rate-mib, and\n"
    "a gateway's waiting requests are capped at a window's worth: none can take\n"
    "all of the streaming. Every second it also advances the fleet's rollouts\n"
    "('ferry-cloud rollout'): targets the nodes their gateways describe, opens\n"
    "waves, halts and completes them, and sends each gateway its part. With\n"
    "--http it also serves the operator's console and its HTTP API (docs/api.md).",
    serve_opts, sizeof(serve_opts) / sizeof(serve_opts[0])};

/* The subscriptions, by kind. */
enum serve_sub { SUB_REQ, SUB_STATUS, SUB_NODE, SUB_CONFIG, SUBSCRIPTIONS };

/* One store entry as it was when its hash was checked: the verdict holds
 * for that file only, so a copy replaced or rewritten since (another
 * inode, size or modification time) is hashed again, and a copy that did
 * not verify is not hashed again at every retry of the gateway. */
struct checked_entry {
    uint8_t sha256[FERRY_SHA256_LEN];
    struct stat file;
    bool good;
};

/* A store entry being hashed, a slice per turn of the loop
 * (cloud_store_check_step), so that streaming, status and the console go on
 * meanwhile; requests for it are answered busy until its verdict. */
struct entry_check {
    struct cloud_store_check c; /* c.fd is ours: closed when the check ends */
    bool used;
    uint64_t started_ms;
    uint32_t slices;
};

struct server {
    const struct serve_cfg *cfg;
    struct ferry_loop *loop;
    struct ferry_keeper *keeper;
    struct cloud_store *store;
    struct cloud_inventory *inv;
    struct cloud_rollout_ctl *rollouts;
    struct cloud_http *http; /* NULL without --http */
    uint64_t rollout_timer;
    /* Topic filters, and the prefixes (the filter without its wildcards and
     * any $share/ group) that tell an arriving message's gateway. */
    char filters[SUBSCRIPTIONS][FERRY_TOPIC_MAX];
    char req_prefix[FERRY_TOPIC_MAX];
    char status_prefix[FERRY_TOPIC_MAX];
    char node_prefix[FERRY_TOPIC_MAX];
    char config_prefix[FERRY_TOPIC_MAX];
    struct cloud_config *configs; /* reported properties files (cloud_config.h) */
    uint8_t *chunk;               /* header + one chunk, reused for every message */
    struct ferry_batch *batch;
    struct ferry_batch_ack *ack;
    struct cloud_budget *budget;
    uint64_t pump_timer;
    /* Partitions (cloud_partition.h), when shared subscriptions cannot
     * split the work: NULL while they can. */
    struct cloud_partition *part;
    struct cloud_db *part_db; /* its own connection; NULL until it opens */
    uint64_t part_timer;
    bool part_failing; /* the last beat failed (logged once, and its end) */
    uint64_t served_bytes;
    uint64_t next_report;
    /* Store entries hashed since start, oldest replaced first: a copy is
     * checked before its first chunk is sent. */
    struct checked_entry verified[SERVE_VERIFIED_MAX];
    size_t nverified, verified_next;
    /* Checks under way, hashed in turn by check_timer. */
    struct entry_check checks[SERVE_CHECKS_MAX];
    size_t check_next;
    uint64_t check_timer;
};

/* ---- topics -------------------------------------------------------------- */

/* The filter of a kind of work gateways send: shared among the fleet's
 * instances, or the plain filter when partitions split it. */
static enum ferry_err share_filter(struct server *s, enum serve_sub kind, const char *filter)
{
    if (s->cfg->partition)
        return snprintf(s->filters[kind], FERRY_TOPIC_MAX, "%s", filter) < FERRY_TOPIC_MAX
                   ? FERRY_OK
                   : FERRY_E_INVALID_ARG;
    return ferry_topic_shared(s->filters[kind], FERRY_TOPIC_MAX, filter);
}

/* Fills the filters (shared for requests and batches, or plain with
 * partitions; the node states are
 * subscribed by every instance, because retained messages reach a $share
 * subscriber only from Mosquitto 2.0.13 on, and de-duplication makes the
 * repeats harmless) and the prefixes. */
static enum ferry_err build_topics(struct server *s, struct ferry_diag *d)
{
    const char *fleet = s->cfg->fleet;
    char req[FERRY_TOPIC_MAX], status[FERRY_TOPIC_MAX];
    bool ok =
        ferry_topic(req, sizeof(req), FERRY_TOPIC_STREAM_REQ, fleet, "+", NULL) == FERRY_OK &&
        ferry_topic(status, sizeof(status), FERRY_TOPIC_STATUS, fleet, "+", NULL) == FERRY_OK &&
        ferry_topic(s->filters[SUB_NODE], FERRY_TOPIC_MAX, FERRY_TOPIC_NODE, fleet, "+", "+") ==
            FERRY_OK &&
        ferry_topic(s->filters[SUB_CONFIG], FERRY_TOPIC_MAX, FERRY_TOPIC_CONFIG, fleet, "+", "+") ==
            FERRY_OK &&
        share_filter(s, SUB_REQ, req) == FERRY_OK &&
        share_filter(s, SUB_STATUS, status) == FERRY_OK;
    if (!ok)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "no topics for fleet '%.80s'", fleet);
    /* Each filter ends in "+" (the node filter in "+/+"). */
    snprintf(s->req_prefix, FERRY_TOPIC_MAX, "%.*s", (int)strlen(req) - 1, req);
    snprintf(s->status_prefix, FERRY_TOPIC_MAX, "%.*s", (int)strlen(status) - 1, status);
    snprintf(s->node_prefix, FERRY_TOPIC_MAX, "%.*s", (int)strlen(s->filters[SUB_NODE]) - 3,
             s->filters[SUB_NODE]);
    snprintf(s->config_prefix, FERRY_TOPIC_MAX, "%.*s", (int)strlen(s->filters[SUB_CONFIG]) - 3,
             s->filters[SUB_CONFIG]);
    return FERRY_OK;
}

/* The part of topic after prefix, or NULL if topic does not start with it. */
static const char *after_prefix(const char *topic, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(topic, prefix, n) == 0 ? topic + n : NULL;
}

/* ---- artifact stream ----------------------------------------------------- */

static enum ferry_err publish_chunk(struct server *s, const char *topic, enum ferry_chunk_kind kind,
                                    const struct ferry_stream_req *r, uint64_t offset,
                                    uint64_t total, uint32_t len)
{
    uint8_t *payload = s->chunk + FERRY_STREAM_HEADER_LEN;
    ferry_chunk_header(s->chunk, kind, r->sha256, offset, total, payload, len);
    return ferry_keeper_publish(s->keeper, topic, s->chunk, FERRY_STREAM_HEADER_LEN + (size_t)len,
                                0, false, NULL);
}

/* One error chunk, "<error-name>: <message>", in place of the data. */
static void send_error_chunk(struct server *s, const char *topic, const char *gateway,
                             const struct ferry_stream_req *r, uint64_t total, enum ferry_err err,
                             const char *msg)
{
    char *payload = (char *)s->chunk + FERRY_STREAM_HEADER_LEN;
    int n = snprintf(payload, FERRY_STREAM_MAX_CHUNK, "%s: %s", ferry_err_name(err), msg);
    uint32_t len = n < 0 ? 0 : (uint32_t)n;
    ferry_log_info("stream request from %s: %s", gateway, payload);
    if (publish_chunk(s, topic, FERRY_CHUNK_ERROR, r, r->offset, total, len) != FERRY_OK)
        ferry_log_debug("stream: error chunk to %s not sent (client busy)", gateway);
}

/* "busy: instance <name> <what> artifact <digest>...; ask again": the
 * answer a gateway retries soon (PROTOCOL.md, Artifact stream). */
static void send_busy(struct server *s, const char *topic, const char *gateway,
                      const struct ferry_stream_req *r, const char *what)
{
    char hex[FERRY_SHA256_HEX_LEN + 1], msg[160];
    ferry_hex_encode(r->sha256, FERRY_SHA256_LEN, hex);
    snprintf(msg, sizeof(msg), "instance %s %s artifact %.16s...; ask again",
             s->cfg->instance ? s->cfg->instance : "(unnamed)", what, hex);
    send_error_chunk(s, topic, gateway, r, 0, FERRY_E_BUSY, msg);
}

static void count_served(struct server *s, const char *gateway, const struct ferry_stream_req *r,
                         unsigned chunks, uint64_t bytes)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(r->sha256, FERRY_SHA256_LEN, hex);
    ferry_log_debug("stream: %s %.16s offset %" PRIu64 ": %u of %" PRIu32 " chunks, %" PRIu64
                    " bytes",
                    gateway, hex, r->offset, chunks, r->count, bytes);
    s->served_bytes += bytes;
    if (s->served_bytes >= s->next_report) {
        ferry_log_info("stream: %" PRIu64 " MiB served since start", s->served_bytes >> 20);
        s->next_report = (s->served_bytes / SERVED_REPORT_BYTES + 1) * SERVED_REPORT_BYTES;
    }
}

/* What one turn sent. */
struct turn_result {
    uint32_t sent; /* chunks published */
    bool done;     /* the artifact ended, or an error chunk ended the request */
    bool busy;     /* the MQTT client's buffer is full: wait before the next turn */
};

/* Sends the chunks of r that exist in the open entry fd. */
static void send_chunks(struct server *s, const char *topic, const char *gateway,
                        const struct ferry_stream_req *r, int fd, uint64_t size,
                        struct turn_result *res)
{
    uint64_t bytes = 0;
    for (; res->sent < r->count; res->sent++) {
        uint64_t off = r->offset + (uint64_t)res->sent * r->chunk;
        if (off >= size) {
            res->done = true;
            break;
        }
        uint32_t len = size - off < r->chunk ? (uint32_t)(size - off) : r->chunk;
        ssize_t got = pread(fd, s->chunk + FERRY_STREAM_HEADER_LEN, len, (off_t)off);
        if (got != (ssize_t)len) {
            ferry_log_err("stream: reading the store at offset %" PRIu64 " failed: %s", off,
                          got < 0 ? strerror(errno) : "short read");
            send_error_chunk(s, topic, gateway, r, size, FERRY_E_IO, "the store could not be read");
            res->done = true;
            break;
        }
        enum ferry_err err = publish_chunk(s, topic, FERRY_CHUNK_DATA, r, off, size, len);
        if (err != FERRY_OK) {
            ferry_log_debug("stream: %s: pausing after %u chunks (%s)", gateway, res->sent,
                            ferry_strerror(err));
            res->busy = true;
            break;
        }
        bytes += len;
    }
    count_served(s, gateway, r, res->sent, bytes);
}

/* ---- store entries checked against their names ----------------------------- */

static struct checked_entry *find_verdict(struct server *s, const uint8_t sha256[FERRY_SHA256_LEN])
{
    for (size_t i = 0; i < s->nverified; i++)
        if (memcmp(s->verified[i].sha256, sha256, FERRY_SHA256_LEN) == 0)
            return &s->verified[i];
    return NULL;
}

static void remember_verdict(struct server *s, const struct cloud_store_check *c, bool good)
{
    struct checked_entry *v = find_verdict(s, c->sha256);
    if (!v) {
        v = &s->verified[s->verified_next];
        s->verified_next = (s->verified_next + 1) % SERVE_VERIFIED_MAX;
        if (s->nverified < SERVE_VERIFIED_MAX)
            s->nverified++;
    }
    *v = (struct checked_entry){.file = c->file, .good = good};
    memcpy(v->sha256, c->sha256, FERRY_SHA256_LEN);
}

static struct entry_check *find_check(struct server *s, const uint8_t sha256[FERRY_SHA256_LEN])
{
    for (size_t i = 0; i < SERVE_CHECKS_MAX; i++)
        if (s->checks[i].used && memcmp(s->checks[i].c.sha256, sha256, FERRY_SHA256_LEN) == 0)
            return &s->checks[i];
    return NULL;
}

static void drop_check(struct entry_check *e)
{
    cloud_store_check_cancel(&e->c);
    close(e->c.fd);
    e->used = false;
}

/* Starts (or starts over) a check of the open entry fd, which it keeps. */
static enum ferry_err begin_check(struct server *s, struct entry_check *e,
                                  const uint8_t sha256[FERRY_SHA256_LEN], int fd, uint64_t size,
                                  struct ferry_diag *d)
{
    enum ferry_err err = cloud_store_check_begin(s->store, &e->c, sha256, fd, size, d);
    if (err != FERRY_OK)
        return err;
    e->used = true;
    e->started_ms = ferry_now_ms();
    e->slices = 0;
    return FERRY_OK;
}

static void check_tick(void *arg);

static void schedule_checks(struct server *s)
{
    if (!s->check_timer)
        s->check_timer = ferry_loop_timer(s->loop, 0, check_tick, s);
}

/* A check whose file changed while hashed starts over on the entry as it is
 * now (rewritten in place, or replaced by another file). */
static void restart_check(struct server *s, struct entry_check *e)
{
    struct ferry_diag d = {{0}};
    uint8_t sha256[FERRY_SHA256_LEN];
    memcpy(sha256, e->c.sha256, FERRY_SHA256_LEN);
    drop_check(e);
    int fd = -1;
    uint64_t size = 0;
    enum ferry_err err = cloud_store_open_entry(s->store, sha256, &fd, &size, &d);
    if (err == FERRY_OK && (err = begin_check(s, e, sha256, fd, size, &d)) != FERRY_OK)
        close(fd);
    if (err != FERRY_OK)
        ferry_log_warn("stream: check not started over: %s", ferry_diag_str(&d, err));
}

/* The verdict of a check whose every byte is hashed. */
static void finish_check(struct server *s, struct entry_check *e)
{
    struct ferry_diag d = {{0}};
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(e->c.sha256, FERRY_SHA256_LEN, hex);
    uint64_t ms = ferry_now_ms() - e->started_ms, size = e->c.size;
    enum ferry_err err = cloud_store_check_end(s->store, &e->c, &d);
    if (err == FERRY_E_BUSY) {
        ferry_log_info("stream: artifact %.16s... changed while it was checked; checking it again",
                       hex);
        restart_check(s, e);
        return;
    }
    if (err == FERRY_OK || err == FERRY_E_HASH_MISMATCH)
        remember_verdict(s, &e->c, err == FERRY_OK); /* a read error says nothing of the copy */
    if (err == FERRY_OK)
        ferry_log_info("stream: artifact %.16s... verified in the store (%" PRIu64
                       " bytes, %" PRIu64 " ms, %" PRIu32 " slices)",
                       hex, size, ms, e->slices);
    else
        ferry_log_err("stream: %s (checked in %" PRIu64 " ms)", ferry_diag_str(&d, err), ms);
    drop_check(e);
}

/* One slice of one check per call, the checks in turn, until none is left. */
static void check_tick(void *arg)
{
    struct server *s = arg;
    s->check_timer = 0;
    struct entry_check *e = NULL;
    for (size_t i = 0; i < SERVE_CHECKS_MAX && !e; i++) {
        size_t k = (s->check_next + i) % SERVE_CHECKS_MAX;
        if (s->checks[k].used) {
            e = &s->checks[k];
            s->check_next = (k + 1) % SERVE_CHECKS_MAX;
        }
    }
    if (!e)
        return;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cloud_store_check_step(s->store, &e->c, CLOUD_STORE_CHECK_SLICE, &d);
    e->slices++;
    if (err != FERRY_OK) {
        ferry_log_err("stream: %s", ferry_diag_str(&d, err));
        drop_check(e);
    } else if (cloud_store_check_done(&e->c)) {
        finish_check(s, e);
    }
    for (size_t i = 0; i < SERVE_CHECKS_MAX; i++)
        if (s->checks[i].used) {
            schedule_checks(s);
            break;
        }
}

static void stop_checks(struct server *s)
{
    if (s->check_timer)
        ferry_loop_cancel(s->loop, s->check_timer);
    s->check_timer = 0;
    for (size_t i = 0; i < SERVE_CHECKS_MAX; i++)
        if (s->checks[i].used)
            drop_check(&s->checks[i]);
}

/* Whether this instance's copy of the artifact holds what its name says:
 * hashed before its first chunk goes out (a store filled by copying from
 * another host is not trusted blindly), in slices off the loop's critical
 * path, and again only once the file changed (struct checked_entry).
 * FERRY_OK: serve it. Otherwise *busy says what to answer: the copy does
 * not verify (FERRY_E_HASH_MISMATCH, or a read error), or it is being
 * checked (FERRY_E_BUSY: a check was started, taking *fd, or is under way,
 * or SERVE_CHECKS_MAX are and this one waits for the next request). */
static enum ferry_err entry_verified(struct server *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                     int *fd, uint64_t size, const char **busy,
                                     struct ferry_diag *d)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(sha256, FERRY_SHA256_LEN, hex);
    *busy = "holds a copy that does not verify of";
    struct stat st;
    if (fstat(*fd, &st) != 0)
        return ferry_fail(d, FERRY_E_IO, "store entry %s: %s", hex, strerror(errno));
    const struct checked_entry *v = find_verdict(s, sha256);
    if (v && cloud_store_same_file(&v->file, &st))
        return v->good ? FERRY_OK
                       : ferry_fail(d, FERRY_E_HASH_MISMATCH,
                                    "store entry %s still does not hold what its name says", hex);
    *busy = "is checking its copy of";
    struct entry_check *e = find_check(s, sha256);
    if (e && cloud_store_same_file(&e->c.file, &st))
        return ferry_fail(d, FERRY_E_BUSY, "store entry %s is being checked", hex);
    if (e) {
        ferry_log_info("stream: artifact %.16s... changed while it was checked; checking it again",
                       hex);
        drop_check(e);
    }
    for (size_t i = 0; i < SERVE_CHECKS_MAX && !e; i++)
        if (!s->checks[i].used)
            e = &s->checks[i];
    if (!e) {
        *busy = "is checking other copies before";
        return ferry_fail(d, FERRY_E_BUSY, "store entry %s waits for a check", hex);
    }
    enum ferry_err err = begin_check(s, e, sha256, *fd, size, d);
    if (err != FERRY_OK) {
        *busy = "holds a copy that does not verify of";
        return err;
    }
    *fd = -1; /* the check's now */
    ferry_log_info("stream: checking artifact %.16s... in the store (%" PRIu64 " bytes) before its "
                   "first chunk",
                   hex, size);
    schedule_checks(s);
    return ferry_fail(d, FERRY_E_BUSY, "store entry %s is being checked", hex);
}

/* Sends one turn (cloud_budget.h): a few chunks of one gateway's request. */
static void serve_turn(struct server *s, const struct cloud_turn *t, struct turn_result *res)
{
    struct ferry_diag d = {{0}};
    const struct ferry_stream_req *r = &t->req;
    char topic[FERRY_TOPIC_MAX];
    memset(res, 0, sizeof(*res));
    if (ferry_topic(topic, sizeof(topic), FERRY_TOPIC_STREAM_DATA, s->cfg->fleet, t->gateway,
                    NULL) != FERRY_OK) {
        ferry_log_err("stream: no data topic for gateway %s",
                      t->gateway); /* both ids were checked */
        res->done = true;
        return;
    }
    int fd = -1;
    uint64_t size = 0;
    enum ferry_err err = cloud_store_open_entry(s->store, r->sha256, &fd, &size, &d);
    if (err == FERRY_E_NOT_FOUND) {
        /* A gateway asks only for an artifact of a signed release, which
         * `publish` put in a store: this instance's copy has not arrived
         * (instances on several hosts), or the request reached it first.
         * "busy" is retried soon, with jitter, and with a shared
         * subscription perhaps by another instance (PROTOCOL.md, Artifact
         * stream); a not-found would only make the gateway wait longer. */
        send_busy(s, topic, t->gateway, r, "lacks");
        res->done = true;
        return;
    }
    if (err != FERRY_OK) {
        /* The store's own trouble is for our log, not for the gateway. */
        ferry_log_err("stream: %s", ferry_diag_str(&d, err));
        send_error_chunk(s, topic, t->gateway, r, 0, err, "the artifact cannot be read");
        res->done = true;
        return;
    }
    const char *busy = NULL;
    err = entry_verified(s, r->sha256, &fd, size, &busy, &d);
    if (err != FERRY_OK) {
        /* Another instance may hold a good copy, or this one a checked or
         * repaired copy later: busy, as for a missing one. */
        if (err == FERRY_E_BUSY)
            ferry_log_debug("stream: %s", ferry_diag_str(&d, err));
        else
            ferry_log_err("stream: %s", ferry_diag_str(&d, err));
        send_busy(s, topic, t->gateway, r, busy);
        if (fd >= 0)
            close(fd);
        res->done = true;
        return;
    }
    if (r->offset >= size) {
        char msg[96];
        snprintf(msg, sizeof(msg), "offset %" PRIu64 " is beyond the artifact's %" PRIu64 " bytes",
                 r->offset, size);
        send_error_chunk(s, topic, t->gateway, r, size, FERRY_E_INVALID_ARG, msg);
        res->done = true;
    } else {
        send_chunks(s, topic, t->gateway, r, fd, size, res);
    }
    close(fd);
}

static void pump(void *arg);

static void schedule_pump(struct server *s, uint64_t delay_ms)
{
    if (s->pump_timer)
        ferry_loop_cancel(s->loop, s->pump_timer);
    s->pump_timer = ferry_loop_timer(s->loop, delay_ms, pump, s);
}

/* Sends turns until PUMP_TURNS are done, nothing may be sent now, or the
 * client's buffer is full; then comes back when there is more to do. */
static void pump(void *arg)
{
    struct server *s = arg;
    s->pump_timer = 0;
    for (int i = 0; i < PUMP_TURNS; i++) {
        struct cloud_turn t;
        uint64_t now = ferry_now_ms(), wake = CLOUD_BUDGET_NEVER;
        if (!cloud_budget_next(s->budget, now, &t, &wake)) {
            if (wake != CLOUD_BUDGET_NEVER)
                schedule_pump(s, wake > now ? wake - now : 0);
            return;
        }
        struct turn_result res;
        serve_turn(s, &t, &res);
        cloud_budget_unsent(s->budget, &t, res.sent, res.done);
        if (res.busy) {
            schedule_pump(s, PUMP_BUSY_MS);
            return;
        }
    }
    schedule_pump(s, 0);
}

/* A request waits in its gateway's queue for the gateway's turn
 * (cloud_budget.h: at most a window's worth waits). */
static void handle_stream_req(struct server *s, const char *gateway, const uint8_t *payload,
                              size_t len)
{
    struct ferry_diag d = {{0}};
    struct ferry_stream_req r;
    enum ferry_err err = ferry_stream_req_decode(payload, len, &r, &d);
    if (err == FERRY_OK)
        err = cloud_budget_request(s->budget, gateway, &r, ferry_now_ms(), &d);
    if (err != FERRY_OK) {
        ferry_log_warn("stream request from %s dropped: %s", gateway, ferry_diag_str(&d, err));
        return;
    }
    if (!s->pump_timer)
        schedule_pump(s, 0);
}

/* ---- status -------------------------------------------------------------- */

/* A record names the gateway that relayed it, or none (then the topic's
 * gateway is filled in); naming another gateway is refused. */
static enum ferry_err own_gateway(struct ferry_status *st, const char *gateway,
                                  struct ferry_diag *d)
{
    if (!st->gateway[0]) {
        snprintf(st->gateway, sizeof(st->gateway), "%s", gateway);
        return FERRY_OK;
    }
    /* In a cascade the sender is the last parent on the record's path. */
    if (strcmp(ferry_status_last_hop(st), gateway) != 0)
        return ferry_fail(d, FERRY_E_PROTOCOL,
                          "record of node %s (seq %" PRIu64 ") names gateway '%s', not the sender",
                          st->node, st->seq, ferry_status_last_hop(st));
    return FERRY_OK;
}

static void send_ack(struct server *s, const char *gateway)
{
    struct ferry_diag d = {{0}};
    char topic[FERRY_TOPIC_MAX];
    char *json = NULL;
    size_t len = 0;
    enum ferry_err err =
        ferry_topic(topic, sizeof(topic), FERRY_TOPIC_STATUS_ACK, s->cfg->fleet, gateway, NULL);
    if (err == FERRY_OK)
        err = ferry_batch_ack_encode(s->ack, &json, &len, &d);
    if (err == FERRY_OK)
        err = ferry_keeper_publish(s->keeper, topic, json, len, 1, false, NULL);
    free(json);
    /* Without the ack the gateway sends the batch again; the inventory
     * de-duplicates it and this acknowledges it then. */
    if (err != FERRY_OK)
        ferry_log_warn("status ack for batch %s to %s not sent: %s", s->ack->id, gateway,
                       ferry_diag_str(&d, err));
}

static void handle_status(struct server *s, const char *gateway, const uint8_t *payload, size_t len)
{
    struct ferry_diag d = {{0}};
    struct ferry_batch *b = s->batch;
    enum ferry_err err = ferry_batch_decode(payload, len, b, &d);
    for (size_t i = 0; err == FERRY_OK && i < b->n; i++)
        err = own_gateway(&b->records[i], gateway, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("status batch from %s dropped: %s", gateway, ferry_diag_str(&d, err));
        return;
    }
    struct cloud_ingest_out out = {.stored = s->ack->acked, .refused = s->ack->refused};
    err = cloud_inventory_ingest(s->inv, b->records, b->n, true, &out, &d);
    if (err != FERRY_OK) {
        ferry_log_err("status batch %s from %s not stored (not acknowledged): %s", b->id, gateway,
                      ferry_diag_str(&d, err));
        return;
    }
    memcpy(s->ack->id, b->id, sizeof(s->ack->id));
    s->ack->n = out.nstored;
    s->ack->nrefused = out.nrefused;
    ferry_log_debug("status batch %s from %s: %zu record(s) stored, %zu refused", b->id, gateway,
                    out.nstored, out.nrefused);
    send_ack(s, gateway);
}

/* rest is "<gateway>/<node>" from ferry/v1/<fleet>/node/<gateway>/<node>;
 * the record must be that node's, relayed by that gateway. */
static enum ferry_err parse_node_state(const char *rest, const uint8_t *payload, size_t len,
                                       struct ferry_status *st, struct ferry_diag *d)
{
    char gateway[FERRY_ID_MAX + 1];
    const char *slash = strchr(rest, '/');
    if (!slash || slash - rest > FERRY_ID_MAX)
        return ferry_fail(d, FERRY_E_PROTOCOL, "topic does not end in <gateway>/<node>");
    snprintf(gateway, sizeof(gateway), "%.*s", (int)(slash - rest), rest);
    const char *node = slash + 1;
    if (!ferry_id_valid(gateway) || !ferry_id_valid(node))
        return ferry_fail(d, FERRY_E_PROTOCOL, "invalid gateway or node id in the topic");
    enum ferry_err err = ferry_status_from_json(payload, len, st, d);
    if (err != FERRY_OK)
        return err;
    if (strcmp(st->node, node) != 0)
        return ferry_fail(d, FERRY_E_PROTOCOL, "the record is about node '%s'", st->node);
    return own_gateway(st, gateway, d);
}

static void handle_node_state(struct server *s, const char *rest, const uint8_t *payload,
                              size_t len)
{
    struct ferry_diag d = {{0}};
    struct ferry_status st;
    struct ferry_record_id id;
    struct ferry_record_refusal refusal;
    struct cloud_ingest_out out = {.stored = &id, .refused = &refusal};
    if (len == 0)
        return; /* a retained state being cleared */
    enum ferry_err err = parse_node_state(rest, payload, len, &st, &d);
    /* A twin copies a record its batch brings: a refused one is kept aside
     * from the batch, not twice. */
    if (err == FERRY_OK)
        err = cloud_inventory_ingest(s->inv, &st, 1, false, &out, &d);
    if (err != FERRY_OK)
        ferry_log_warn("node state %.140s dropped: %s", rest, ferry_diag_str(&d, err));
}

/* rest is "<gateway>/<node>" from ferry/v1/<fleet>/config/<gateway>/<node>:
 * that node's report, relayed by that gateway (retained, like the twin). */
static void handle_config(struct server *s, const char *rest, const uint8_t *payload, size_t len)
{
    struct ferry_diag d = {{0}};
    struct ferry_config_report r;
    const char *slash = strchr(rest, '/');
    bool kept = false;
    if (len == 0)
        return;
    enum ferry_err err = ferry_config_report_decode(payload, len, &r, &d);
    if (err == FERRY_OK && (!slash || strncmp(rest, r.gateway, (size_t)(slash - rest)) != 0 ||
                            r.gateway[slash - rest] != '\0' || strcmp(slash + 1, r.node) != 0))
        err = ferry_fail(&d, FERRY_E_PROTOCOL, "the report is node %s's through %s", r.node,
                         r.gateway);
    if (err == FERRY_OK)
        err = cloud_config_ingest(s->configs, &r, &kept, &d);
    if (err != FERRY_OK)
        ferry_log_warn("configuration report %.140s dropped: %s", rest, ferry_diag_str(&d, err));
    else if (kept)
        ferry_log_info("configuration of node %s kept (reported through %s)", r.node, r.gateway);
    else
        ferry_log_info("configuration of node %s not kept: %s", r.node,
                       r.healthy ? "older than the one kept" : "the node was not healthy");
}

/* ---- partitions (cloud_partition.h) ----------------------------------------- */

/* Leases compare times across hosts: the wall clock, in ms. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Renews the lease and reads the live instances; opens the connection
 * first if it is not open yet. A failed beat is retried at the next one;
 * meanwhile the view goes stale and this instance stops handling gateways
 * (the others take them over once its lease expires). */
static void on_partition_beat(void *arg)
{
    struct server *s = arg;
    struct ferry_diag d = {{0}};
    enum ferry_err err = FERRY_OK;
    int64_t now = wall_ms();
    bool changed = false;
    if (!s->part_db) {
        err = cloud_db_open(s->cfg->db, true, &s->part_db, &d);
        if (err == FERRY_OK)
            err = cloud_partition_setup(s->part_db, s->cfg->fleet, now, &d);
        if (err != FERRY_OK) {
            cloud_db_close(s->part_db);
            s->part_db = NULL;
        }
    }
    if (err == FERRY_OK)
        err = cloud_partition_beat(s->part, s->part_db, s->cfg->fleet, now, &changed, &d);
    if (err != FERRY_OK && !s->part_failing)
        ferry_log_warn(
            "partition: lease of instance %s not renewed (it handles no gateway once its "
            "view is %lld ms old; tried again every beat): %s",
            cloud_partition_self(s->part), (long long)cloud_partition_settle_ms(s->part),
            ferry_diag_str(&d, err));
    else if (err == FERRY_OK && s->part_failing)
        ferry_log_info("partition: lease of instance %s renewed again",
                       cloud_partition_self(s->part));
    s->part_failing = err != FERRY_OK;
    if (err == FERRY_OK && changed)
        ferry_log_info(
            "partition: %zu instance(s) of fleet %s live; this one is %s and handles its "
            "share of the gateways",
            cloud_partition_members(s->part), s->cfg->fleet, cloud_partition_self(s->part));
    s->part_timer =
        ferry_loop_timer(s->loop, (uint64_t)cloud_partition_beat_ms(s->part), on_partition_beat, s);
}

/* Starts splitting gateways by partitions: under --instance's name (unique
 * in the fleet, as the client id already must be), else a random one. */
static enum ferry_err partition_start(struct server *s, struct ferry_diag *d)
{
    char self[FERRY_ID_MAX + 1];
    if (s->cfg->instance)
        snprintf(self, sizeof(self), "%s", s->cfg->instance);
    else
        snprintf(self, sizeof(self), "serve-%016" PRIx64, ferry_random_u64());
    struct cloud_partition_opts o = {.self = self, .lease_ms = (int64_t)s->cfg->partition_lease_ms};
    enum ferry_err err = cloud_partition_new(&o, &s->part, d);
    if (err != FERRY_OK)
        return err;
    on_partition_beat(s);
    return FERRY_OK;
}

static enum ferry_err subscribe_work(struct server *s, struct ferry_diag *d);

/* The broker has no shared subscriptions (the keeper reported 0x9E): the
 * plain filters instead, and partitions. From a timer: the keeper may be
 * walking its subscriptions when it reports. */
static void partition_fallback(void *arg)
{
    struct server *s = arg;
    struct ferry_diag d = {{0}};
    ferry_log_warn("the broker has no shared subscriptions: instances split gateways by partitions "
                   "agreed through the database (--partition)");
    ferry_keeper_unsubscribe(s->keeper, s->filters[SUB_REQ]);
    ferry_keeper_unsubscribe(s->keeper, s->filters[SUB_STATUS]);
    char req[FERRY_TOPIC_MAX], status[FERRY_TOPIC_MAX];
    enum ferry_err err =
        ferry_topic(req, sizeof(req), FERRY_TOPIC_STREAM_REQ, s->cfg->fleet, "+", NULL);
    if (err == FERRY_OK)
        err = ferry_topic(status, sizeof(status), FERRY_TOPIC_STATUS, s->cfg->fleet, "+", NULL);
    if (err == FERRY_OK) {
        snprintf(s->filters[SUB_REQ], FERRY_TOPIC_MAX, "%s", req);
        snprintf(s->filters[SUB_STATUS], FERRY_TOPIC_MAX, "%s", status);
        err = partition_start(s, &d);
    }
    if (err == FERRY_OK)
        err = subscribe_work(s, &d);
    if (err != FERRY_OK) {
        ferry_log_err("partitions could not start: %s", ferry_diag_str(&d, err));
        ferry_loop_stop(s->loop);
    }
}

static void on_refused(void *arg, const char *filter, int reason_code, const char *reason)
{
    struct server *s = arg;
    (void)reason; /* the keeper logged it */
    if (reason_code == 0x9E && !s->part && !s->part_timer &&
        (strcmp(filter, s->filters[SUB_REQ]) == 0 || strcmp(filter, s->filters[SUB_STATUS]) == 0))
        s->part_timer = ferry_loop_timer(s->loop, 0, partition_fallback, s);
}

/* A clean stop hands our gateways over after settle, not after the lease. */
static void partition_stop(struct server *s)
{
    struct ferry_diag d = {{0}};
    if (s->part_timer)
        ferry_loop_cancel(s->loop, s->part_timer);
    if (s->part && s->part_db) {
        enum ferry_err err = cloud_partition_leave(s->part, s->part_db, s->cfg->fleet, &d);
        if (err != FERRY_OK)
            ferry_log_warn("partition: lease not removed (the others wait for it to expire): %s",
                           ferry_diag_str(&d, err));
    }
    cloud_db_close(s->part_db);
    cloud_partition_free(s->part);
}

/* ---- messages, by subscription -------------------------------------------- */

/* The gateway a message on "<prefix><gateway>" comes from, or NULL (and a
 * warning) when the rest is not one identifier. */
static const char *topic_gateway(const char *topic, const char *prefix)
{
    const char *rest = after_prefix(topic, prefix);
    if (rest && ferry_id_valid(rest))
        return rest;
    ferry_log_warn("message on unexpected topic '%.200s' dropped", topic);
    return NULL;
}

/* Whether this instance handles the gateway's requests and batches: always
 * with shared subscriptions (the broker gave the message to us alone),
 * else when our partition holds the gateway. */
static bool ours(struct server *s, const char *gateway, const char *what)
{
    if (!s->part || cloud_partition_owns(s->part, wall_ms(), gateway))
        return true;
    const char *owner = cloud_partition_owner(s->part, gateway);
    if (owner && strcmp(owner, cloud_partition_self(s->part)) != 0)
        ferry_log_debug("partition: %s from %s dropped: instance %s handles that gateway", what,
                        gateway, owner);
    else
        ferry_log_debug("partition: %s from %s dropped: not this instance's yet (settling, or no "
                        "recent view of the instances)",
                        what, gateway);
    return false;
}

static void on_req_message(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct server *s = arg;
    const char *gateway = topic_gateway(ev->topic, s->req_prefix);
    if (gateway && ours(s, gateway, "stream request"))
        handle_stream_req(s, gateway, ev->payload, ev->len);
}

static void on_status_message(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct server *s = arg;
    const char *gateway = topic_gateway(ev->topic, s->status_prefix);
    if (gateway && ours(s, gateway, "status batch"))
        handle_status(s, gateway, ev->payload, ev->len);
}

static void on_node_message(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct server *s = arg;
    const char *rest = after_prefix(ev->topic, s->node_prefix);
    if (rest)
        handle_node_state(s, rest, ev->payload, ev->len);
}

static void on_config_message(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct server *s = arg;
    const char *rest = after_prefix(ev->topic, s->config_prefix);
    if (rest)
        handle_config(s, rest, ev->payload, ev->len);
}

static void on_rollout_message(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct server *s = arg;
    if (!cloud_rollout_ctl_message(s->rollouts, ev->topic, ev->payload, ev->len))
        ferry_log_warn("message on unexpected topic '%.200s' dropped", ev->topic);
}

static void on_presence_message(void *arg, const struct ferry_mqtt_ev *ev)
{
    struct server *s = arg;
    if (!cloud_http_message(s->http, ev->topic, ev->payload, ev->len))
        ferry_log_warn("message on unexpected topic '%.200s' dropped", ev->topic);
}

/* ---- the session (ferry_keeper.h) ------------------------------------------ */

static void on_up(void *arg, const struct ferry_keeper_link *link)
{
    struct server *s = arg;
    /* Operators (and the tests) learn here that requests now reach us. */
    ferry_log_info("connected to %s; subscribed to all topic filters", link->url);
    cloud_rollout_ctl_connected(s->rollouts);
}

static void on_down(void *arg, const char *reason)
{
    (void)arg;
    (void)reason; /* the keeper logged it */
}

static void on_published(void *arg, int token, bool ok, const char *reason)
{
    (void)arg;
    (void)token;
    if (!ok)
        ferry_log_warn("a status ack or rollout document was not delivered (%s); the gateway will "
                       "resend its batch, the controller its document",
                       reason[0] ? reason : "no reason given");
}

/* The work gateways send: stream requests and status batches. */
static enum ferry_err subscribe_work(struct server *s, struct ferry_diag *d)
{
    const struct ferry_keeper_sub subs[] = {
        {s->filters[SUB_REQ], 1, on_req_message, s},
        {s->filters[SUB_STATUS], 1, on_status_message, s},
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        enum ferry_err err = ferry_keeper_subscribe(s->keeper, &subs[i]);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "cannot subscribe to %s", subs[i].filter);
    }
    return FERRY_OK;
}

static enum ferry_err subscribe_all(struct server *s, struct ferry_diag *d)
{
    enum ferry_err err = subscribe_work(s, d);
    if (err != FERRY_OK)
        return err;
    const struct ferry_keeper_sub subs[] = {
        {s->filters[SUB_NODE], 1, on_node_message, s},
        {s->filters[SUB_CONFIG], 1, on_config_message, s},
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        err = ferry_keeper_subscribe(s->keeper, &subs[i]);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "cannot subscribe to %s", subs[i].filter);
    }
    for (size_t i = 0; i < CLOUD_ROLLOUT_CTL_FILTERS; i++) {
        struct ferry_keeper_sub sub = {cloud_rollout_ctl_filter(s->rollouts, i), 1,
                                       on_rollout_message, s};
        err = ferry_keeper_subscribe(s->keeper, &sub);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "cannot subscribe to %s", sub.filter);
    }
    if (s->http) {
        struct ferry_keeper_sub sub = {cloud_http_presence_filter(s->http), 1, on_presence_message,
                                       s};
        err = ferry_keeper_subscribe(s->keeper, &sub);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "cannot subscribe to %s", sub.filter);
    }
    return FERRY_OK;
}

/* ---- rollouts ------------------------------------------------------------ */

static enum ferry_err rollout_publish(void *arg, const char *topic, const void *buf, size_t len,
                                      bool retain)
{
    struct server *s = arg;
    return ferry_keeper_publish(s->keeper, topic, buf, len, 1, retain, NULL);
}

/* The rollout controller's tick (cloud_rollout_ctl.h); while disconnected
 * it only decides, and publishes everything again once connected. */
static void on_rollout_tick(void *arg)
{
    struct server *s = arg;
    cloud_rollout_ctl_tick(s->rollouts, (int64_t)time(NULL));
    s->rollout_timer = ferry_loop_timer(s->loop, ROLLOUT_TICK_MS, on_rollout_tick, s);
}

/* ---- start-up ------------------------------------------------------------ */

static enum ferry_err open_mqtt(struct server *s, struct ferry_diag *d)
{
    const struct serve_cfg *c = s->cfg;
    char client_id[FERRY_ID_MAX + 32], data[FERRY_TOPIC_MAX];
    if (c->instance)
        snprintf(client_id, sizeof(client_id), "ferry-cloud-serve-%s", c->instance);
    else
        snprintf(client_id, sizeof(client_id), "ferry-cloud-serve-%ld", (long)getpid());
    /* Everything serve receives is retried or can be done without: stream
     * requests are repeated, batches resent until acknowledged, and twins
     * copy what batches bring. So a flood is dropped, not queued. */
    char req[FERRY_TOPIC_MAX], status[FERRY_TOPIC_MAX];
    const char *droppable[] = {req, status, s->filters[SUB_NODE], NULL};
    if (ferry_topic(req, sizeof(req), FERRY_TOPIC_STREAM_REQ, c->fleet, "+", NULL) != FERRY_OK ||
        ferry_topic(status, sizeof(status), FERRY_TOPIC_STATUS, c->fleet, "+", NULL) != FERRY_OK ||
        ferry_topic(data, sizeof(data), FERRY_TOPIC_STREAM_DATA, c->fleet, "+", NULL) != FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "no topics for fleet '%.80s'", c->fleet);
    /* Always a clean session. Mosquitto 2.0.11 keeps handing a share of the
     * group's messages to a persistent member while it is offline (measured:
     * a stopped instance made a 20 MB transfer take 18 s instead of 0.3 s),
     * and nothing here needs the broker to hold messages: gateways re-request
     * chunks and resend unacknowledged batches. The largest message sent is
     * a whole chunk, to a gateway id of the longest kind. */
    struct ferry_keeper_opts ko = {
        .conf = &c->mqtt,
        .client_id = client_id,
        .name = "serve",
        .droppable = droppable,
        .needs = {.qos1 = true,
                  .retain = true,
                  .wildcards = true,
                  .max_packet = ferry_mqtt_packet_size(data, FERRY_STREAM_HEADER_LEN +
                                                                 FERRY_STREAM_MAX_CHUNK) +
                                FERRY_ID_MAX},
        .backoff_min_ms = RECONNECT_MIN_MS,
        .backoff_max_ms = RECONNECT_MAX_MS,
    };
    struct ferry_keeper_events ev = {.arg = s,
                                     .on_up = on_up,
                                     .on_down = on_down,
                                     .on_published = on_published,
                                     .on_refused = on_refused};
    enum ferry_err err = ferry_keeper_new(s->loop, &ko, &ev, &s->keeper, d);
    if (err == FERRY_OK)
        err = subscribe_all(s, d);
    return err;
}

static enum ferry_err server_open(struct server *s, struct ferry_diag *d)
{
    s->chunk = malloc(FERRY_STREAM_HEADER_LEN + FERRY_STREAM_MAX_CHUNK);
    s->batch = malloc(sizeof(*s->batch));
    s->ack = malloc(sizeof(*s->ack));
    if (!s->chunk || !s->batch || !s->ack)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    s->next_report = SERVED_REPORT_BYTES;
    uint64_t rate = s->cfg->gateway_rate_mib << 20;
    uint64_t burst = FERRY_STREAM_MAX_CHUNK * (uint64_t)FERRY_STREAM_MAX_WINDOW;
    struct cloud_budget_opts bo = {
        .rate = rate,
        .burst = rate / 4 > burst ? rate / 4 : burst,
        .quantum = CLOUD_BUDGET_DEFAULT_QUANTUM,
        .max_gateways = CLOUD_BUDGET_DEFAULT_MAX_GW,
    };
    enum ferry_err err = cloud_budget_new(&bo, &s->budget, d);
    if (err == FERRY_OK)
        err = build_topics(s, d);
    if (err == FERRY_OK)
        err = cloud_store_open(s->cfg->store, &s->store, d);
    if (err == FERRY_OK)
        err = cloud_inventory_open(s->cfg->db, true, &s->inv, d);
    struct cloud_rollout_ctl_io io = {
        .arg = s, .publish = rollout_publish, .store_dir = s->cfg->store};
    if (err == FERRY_OK)
        err = cloud_rollout_ctl_new(s->inv, s->cfg->fleet, &io, &s->rollouts, d);
    if (err == FERRY_OK)
        err = cloud_config_open(s->cfg->db, true, &s->configs, d);
    if (err == FERRY_OK)
        err = ferry_loop_new(&s->loop, d);
    /* After the loop blocked the stop signals: its threads inherit that. And
     * before the session subscribes: the presence filter is the console's. */
    if (err == FERRY_OK && s->cfg->http.listen)
        err =
            cloud_http_start(&s->cfg->http, s->cfg->db, s->cfg->store, s->cfg->fleet, &s->http, d);
    if (err == FERRY_OK)
        err = open_mqtt(s, d);
    if (err == FERRY_OK && s->cfg->partition)
        err = partition_start(s, d);
    return err;
}

static void server_close(struct server *s)
{
    cloud_http_stop(s->http);
    partition_stop(s);
    ferry_keeper_free(s->keeper);
    if (s->loop)
        stop_checks(s);
    if (s->pump_timer)
        ferry_loop_cancel(s->loop, s->pump_timer);
    ferry_loop_free(s->loop);
    cloud_budget_free(s->budget);
    cloud_rollout_ctl_free(s->rollouts);
    cloud_inventory_close(s->inv);
    cloud_config_close(s->configs);
    cloud_store_free(s->store);
    free(s->chunk);
    free(s->batch);
    free(s->ack);
}

static enum ferry_err check_args(const struct serve_cfg *c, struct ferry_diag *d)
{
    enum ferry_err err = ferry_keeper_conf_check(&c->mqtt, d);
    if (err != FERRY_OK)
        return err;
    if (!ferry_id_valid(c->fleet))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--fleet '%.80s' is not a valid id", c->fleet);
    if (c->instance && !ferry_id_valid(c->instance))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--instance '%.80s' is not a valid id",
                          c->instance);
    if ((err = cloud_http_cfg_check(&c->http, d)) != FERRY_OK)
        return err;
    if (c->partition_lease_ms < CLOUD_PARTITION_LEASE_MIN ||
        c->partition_lease_ms > CLOUD_PARTITION_LEASE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--partition-lease-ms: expected %d..%d, got %llu",
                          CLOUD_PARTITION_LEASE_MIN, CLOUD_PARTITION_LEASE_MAX,
                          (unsigned long long)c->partition_lease_ms);
    if (c->gateway_rate_mib > GATEWAY_RATE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--gateway-rate-mib: expected 0..%llu, got %llu",
                          (unsigned long long)GATEWAY_RATE_MAX,
                          (unsigned long long)c->gateway_rate_mib);
    return FERRY_OK;
}

static int serve_run(const struct serve_cfg *cfg)
{
    struct ferry_diag d = {{0}};
    struct server s;
    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    enum ferry_err err = check_args(cfg, &d);
    if (err != FERRY_OK)
        return cloud_subcmd_report(&serve_cmd, &d, err, CLOUD_EXIT_USAGE);
    err = server_open(&s, &d);
    if (err != FERRY_OK) {
        server_close(&s);
        return cloud_subcmd_report(&serve_cmd, &d, err, CLOUD_EXIT_FAILED);
    }
    ferry_log_info("serving fleet %s from %s, inventory %s", cfg->fleet, cfg->store, cfg->db);
    ferry_keeper_start(s.keeper);
    on_rollout_tick(&s);
    int sig = ferry_loop_run(s.loop);
    ferry_log_info("stopping (signal %d); %" PRIu64 " bytes served", sig, s.served_bytes);
    server_close(&s);
    return 0;
}

int cloud_cmd_serve(int argc, char **argv)
{
    struct serve_cfg cfg = {.log_level = FERRY_LOG_INFO,
                            .gateway_rate_mib = CLOUD_BUDGET_DEFAULT_RATE >> 20,
                            .partition_lease_ms = CLOUD_PARTITION_LEASE_DEF,
                            .http = {.max_connections = CLOUD_HTTP_MAX_CONNECTIONS,
                                     .max_streams = CLOUD_HTTP_MAX_STREAMS}};
    int status = cloud_subcmd_parse(&serve_cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0)
        status = serve_run(&cfg);
    ferry_opts_free(serve_opts, serve_cmd.nopts, &cfg);
    return status;
}
