#include "cloud_http.h"

#include "cloud_http_access.h"
#include "cloud_http_events.h"
#include "cloud_http_json.h"
#include "cloud_http_page.h"
#include "cloud_http_presence.h"
#include "cloud_http_share.h"
#include "cloud_http_sql.h"
#include "cloud_http_views.h"
#include "cloud_inventory.h"
#include "cloud_rollout_ops.h"
#include "cloud_store.h"
#include "ferry_api.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_names.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PEM_MAX         (64 * 1024)
#define POOL_WAIT_S     10 /* a request waits this long for a reader, then 503 */
#define SHARE_WAIT_S    10 /* a client past its share waits at most this long a read */
#define STREAM_BLOCK    (16 * 1024)
#define MAX_CONNECTIONS 100000
#define MAX_STREAMS     10000
#define API             "/api/v1"
#define TLS_PRIORITIES  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* The page loads nothing from anywhere else, and nothing may frame it. */
#define PAGE_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The read-only connections, lent to one request at a time. */
struct pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cloud_http_db *free[CLOUD_HTTP_READERS];
    size_t nfree;
    bool stop;
    /* Each client's share of the readers' time (cloud_http_share.h), and
     * the reads waiting for theirs (woken at stop). */
    struct cloud_http_share share;
    pthread_cond_t share_cond;
};

struct cloud_http {
    char *db;
    struct cloud_http_addr addr;
    struct cloud_http_tokens *act_tokens, *read_tokens;
    struct cloud_http_access access;
    struct cloud_http_presence *presence;
    struct cloud_http_events *events;
    struct cloud_store *store;
    struct pool pool;
    pthread_mutex_t act_lock; /* one action at a time from here */
    char *cert, *key;         /* PEM, kept while the daemon runs */
    struct MHD_Daemon *mhd;
    unsigned port;
    char presence_filter[FERRY_TOPIC_MAX];
    char presence_prefix[FERRY_TOPIC_MAX];
};

/* One request's state across libmicrohttpd's calls. */
struct request {
    uint64_t start_ms;
    uint64_t cpu0_us; /* the thread's CPU time when it began: what it cost, charged to its client */
    char body[FERRY_API_BODY_MAX];
    size_t body_len;
    bool body_too_large;
    bool answered; /* a response was queued before the body was read */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- configuration ----------------------------------------------------------------------------
 */

void cloud_http_thread_nice(void)
{
    static __thread bool done;
    if (done)
        return;
    done = true;
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), CLOUD_HTTP_NICE) != 0)
        ferry_log_debug("http: this thread keeps its priority: %s", strerror(errno));
}

void cloud_http_cfg_defaults(struct cloud_http_cfg *c)
{
    if (!c->max_connections)
        c->max_connections = CLOUD_HTTP_MAX_CONNECTIONS;
    if (!c->max_streams)
        c->max_streams = CLOUD_HTTP_MAX_STREAMS;
}

enum ferry_err cloud_http_cfg_check(const struct cloud_http_cfg *c, struct ferry_diag *d)
{
    if (!c->listen) {
        if (c->cert || c->key || c->token_file || c->read_token_file || c->insecure)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "the --http-* flags need --http ADDR:PORT");
        return FERRY_OK;
    }
    struct cloud_http_addr a;
    enum ferry_err err = cloud_http_addr_parse(c->listen, &a, d);
    if (err != FERRY_OK)
        return err;
    if (!c->cert != !c->key)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--http-cert and --http-key come together");
    if (c->max_connections < 2 || c->max_connections > MAX_CONNECTIONS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--http-max-connections: expected 2..%d",
                          MAX_CONNECTIONS);
    if (c->max_streams < 1 || c->max_streams > MAX_STREAMS || c->max_streams >= c->max_connections)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--http-max-streams: expected 1..%d, and fewer than "
                          "--http-max-connections",
                          MAX_STREAMS);
    return cloud_http_listen_check(&a, c->cert != NULL, c->insecure, c->token_file != NULL,
                                   c->read_token_file != NULL, d);
}

/* ---- the readers -------------------------------------------------------------------------------
 */

static struct cloud_http_db *pool_get(struct pool *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += POOL_WAIT_S;
    pthread_mutex_lock(&p->lock);
    while (!p->stop && p->nfree == 0) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT)
            break;
    }
    struct cloud_http_db *db = !p->stop && p->nfree ? p->free[--p->nfree] : NULL;
    pthread_mutex_unlock(&p->lock);
    return db;
}

/* Waits while who has used more than its share of the readers' time (at
 * most SHARE_WAIT_S; the server's stop ends it). */
static void share_wait(struct pool *p, const char *who)
{
    uint64_t start = mono_ms(), now = start;
    pthread_mutex_lock(&p->lock);
    uint64_t ms = cloud_http_share_wait(&p->share, who, now);
    if (ms)
        ferry_log_debug("http: %s is past its share of the readers' time: waits %" PRIu64 " ms",
                        who, ms);
    while (!p->stop && ms && now - start < SHARE_WAIT_S * 1000) {
        if (ms > SHARE_WAIT_S * 1000 - (now - start))
            ms = SHARE_WAIT_S * 1000 - (now - start);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(ms / 1000);
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->share_cond, &p->lock, &until);
        now = mono_ms();
        ms = cloud_http_share_wait(&p->share, who, now);
    }
    pthread_mutex_unlock(&p->lock);
}

static uint64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void share_charge(struct pool *p, const char *who, uint64_t cost_us)
{
    pthread_mutex_lock(&p->lock);
    cloud_http_share_charge(&p->share, who, mono_ms(), cost_us);
    pthread_mutex_unlock(&p->lock);
}

static void pool_put(struct pool *p, struct cloud_http_db *db)
{
    pthread_mutex_lock(&p->lock);
    p->free[p->nfree++] = db;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* ---- answers -----------------------------------------------------------------------------------
 */

static void client_text(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    snprintf(out, cap, "?");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

static void log_request(struct MHD_Connection *conn, const struct request *r, const char *method,
                        const char *url, unsigned status, size_t len)
{
    enum ferry_log_level level = status >= 500 ? FERRY_LOG_WARN : FERRY_LOG_DEBUG;
    if (!ferry_log_enabled(level))
        return;
    char who[INET6_ADDRSTRLEN];
    client_text(conn, who, sizeof(who));
    ferry_log(level, "http: %s %.200s -> %u (%zu bytes, %" PRIu64 " ms) from %s", method, url,
              status, len, mono_ms() - r->start_ms, who);
}

static void common_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
}

/* Queues body (malloc'd, taken) as JSON with status. */
static enum MHD_Result reply_json(struct MHD_Connection *conn, struct request *r,
                                  const char *method, const char *url, unsigned status, char *body,
                                  size_t len, const char *header, const char *value)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    common_headers(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (header)
        MHD_add_response_header(resp, header, value);
    enum MHD_Result ok = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    log_request(conn, r, method, url, status, len);
    return ok;
}

static const char *status_code_name(unsigned status)
{
    switch (status) {
    case 400:
        return "bad-request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not-found";
    case 405:
        return "method-not-allowed";
    case 409:
        return "conflict";
    case 413:
        return "payload-too-large";
    case 503:
        return "unavailable";
    default:
        return "internal";
    }
}

/* {"status":N,"error":"...","message":"..."}, and one extra header. */
static enum MHD_Result reply_error(struct MHD_Connection *conn, struct request *r,
                                   const char *method, const char *url, unsigned status,
                                   const char *message, const char *header, const char *value)
{
    struct cloud_json j;
    cj_init(&j, 4096);
    cj_obj_begin(&j);
    cj_kuint(&j, "status", status);
    cj_kstr(&j, "error", status_code_name(status));
    cj_kstr(&j, "message", message);
    cj_obj_end(&j);
    size_t len = 0;
    char *body = cj_take(&j, &len);
    if (!body)
        return MHD_NO;
    if (status >= 400 && status < 500)
        ferry_log_debug("http: %s %.200s refused (%u): %s", method, url, status, message);
    return reply_json(conn, r, method, url, status, body, len, header, value);
}

static unsigned status_of(enum ferry_err err)
{
    switch (err) {
    case FERRY_E_INVALID_ARG:
    case FERRY_E_MALFORMED:
        return 400;
    case FERRY_E_NOT_FOUND:
        return 404;
    case FERRY_E_BUSY:
        return 503;
    default:
        return 500;
    }
}

static enum MHD_Result reply_failure(struct MHD_Connection *conn, struct request *r,
                                     const char *method, const char *url, enum ferry_err err,
                                     const struct ferry_diag *d)
{
    unsigned status = status_of(err);
    const char *msg = ferry_diag_str(d, err);
    if (status >= 500)
        ferry_log_warn("http: %s %.200s: %s", method, url, msg);
    return reply_error(conn, r, method, url, status, msg,
                       status == 503 ? MHD_HTTP_HEADER_RETRY_AFTER : NULL,
                       status == 503 ? "5" : NULL);
}

/* The 401 or 403 for a verdict. */
static enum MHD_Result reply_denied(struct MHD_Connection *conn, struct request *r,
                                    const char *method, const char *url, enum cloud_http_verdict v)
{
    switch (v) {
    case CLOUD_HTTP_NO_TOKEN:
        return reply_error(conn, r, method, url, 401, "this needs a bearer token",
                           MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ferry\"");
    case CLOUD_HTTP_BAD_TOKEN:
        return reply_error(
            conn, r, method, url, 401, "the bearer token is not one of this server's",
            MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ferry\", error=\"invalid_token\"");
    case CLOUD_HTTP_READ_ONLY:
        return reply_error(conn, r, method, url, 403,
                           "this token may read, not act (--http-read-token-file)", NULL, NULL);
    case CLOUD_HTTP_ACTIONS_OFF:
        return reply_error(conn, r, method, url, 403,
                           "actions are off: serve was started without --http-token-file", NULL,
                           NULL);
    default:
        return reply_error(conn, r, method, url, 500, "access check failed", NULL, NULL);
    }
}

static enum MHD_Result reply_asset(struct MHD_Connection *conn, struct request *r,
                                   const char *method, const char *url,
                                   const struct cloud_http_asset *a)
{
    const char *etag = cloud_http_asset_etag(a);
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    bool same = inm && strcmp(inm, etag) == 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        same ? 0 : a->len, same ? NULL : (void *)(uintptr_t)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    common_headers(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, "Content-Security-Policy", PAGE_CSP);
    unsigned status = same ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    enum MHD_Result ok = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    log_request(conn, r, method, url, status, same ? 0 : a->len);
    return ok;
}

/* ---- reads
 * ---------------------------------------------------------------------------------------- */

struct collect {
    struct cloud_http_params *p;
    bool too_many;
};

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    (void)kind;
    struct collect *c = cls;
    if (c->p->n == CLOUD_HTTP_PARAMS_MAX) {
        c->too_many = true;
        return MHD_NO;
    }
    c->p->v[c->p->n].key = key;
    c->p->v[c->p->n].value = value ? value : "";
    c->p->n++;
    return MHD_YES;
}

enum resource {
    RES_INDEX,
    RES_SUMMARY,
    RES_NODES,
    RES_NODE,
    RES_GATEWAYS,
    RES_RELEASES,
    RES_ROLLOUTS,
    RES_ROLLOUT,
    RES_ROLLOUT_LOG,
    RES_ACTION,
    RES_EVENTS,
};

struct route {
    enum resource res;
    char id[FERRY_ID_MAX + 1]; /* a node's */
    int64_t rollout;
    enum cloud_rollout_action action;
};

/* The API path after "/api/v1" into rt; false for no such resource, with
 * why in d (a rollout id that is not one is a 400, the rest 404s). */
static bool route_of(const char *path, struct route *rt, unsigned *status, struct ferry_diag *d)
{
    char seg[4][FERRY_ID_MAX + 1];
    size_t n = 0;
    memset(rt, 0, sizeof(*rt));
    *status = 404;
    if (!path[0] || strcmp(path, "/") == 0) {
        rt->res = RES_INDEX;
        return true;
    }
    for (const char *p = path; *p;) {
        if (*p != '/' || n == 4) {
            ferry_fail(d, FERRY_E_NOT_FOUND, "no such resource");
            return false;
        }
        p++;
        size_t len = strcspn(p, "/");
        if (len == 0 || len > FERRY_ID_MAX) {
            ferry_fail(d, FERRY_E_NOT_FOUND, "no such resource");
            return false;
        }
        memcpy(seg[n], p, len);
        seg[n++][len] = '\0';
        p += len;
    }
    static const struct {
        const char *name;
        enum resource res;
    } top[] = {{"summary", RES_SUMMARY},   {"nodes", RES_NODES},       {"gateways", RES_GATEWAYS},
               {"releases", RES_RELEASES}, {"rollouts", RES_ROLLOUTS}, {"events", RES_EVENTS}};
    bool found = false;
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]) && !found; i++) {
        if (strcmp(seg[0], top[i].name) == 0) {
            rt->res = top[i].res;
            found = true;
        }
    }
    if (!found || (n > 1 && rt->res != RES_NODES && rt->res != RES_ROLLOUTS) ||
        (n > 2 && rt->res == RES_NODES)) {
        ferry_fail(d, FERRY_E_NOT_FOUND, "no such resource");
        return false;
    }
    if (n == 1)
        return true;
    if (rt->res == RES_NODES) {
        if (!ferry_id_valid(seg[1])) {
            *status = 400;
            ferry_fail(d, FERRY_E_INVALID_ARG, "'%s' is not a node id", seg[1]);
            return false;
        }
        rt->res = RES_NODE;
        snprintf(rt->id, sizeof(rt->id), "%s", seg[1]);
        return true;
    }
    if (cloud_http_parse_id(seg[1], "a rollout id", &rt->rollout, d) != FERRY_OK) {
        *status = 400;
        return false;
    }
    if (n == 2) {
        rt->res = RES_ROLLOUT;
        return true;
    }
    if (n == 3 && strcmp(seg[2], "log") == 0) {
        rt->res = RES_ROLLOUT_LOG;
        return true;
    }
    if (n == 3 && cloud_rollout_action_parse(seg[2], &rt->action) == FERRY_OK) {
        rt->res = RES_ACTION;
        return true;
    }
    ferry_fail(d, FERRY_E_NOT_FOUND,
               "no such resource (a rollout has log, pause, resume, next, "
               "cancel and retry)");
    return false;
}

static void index_doc(const struct cloud_http *h, struct cloud_json *j)
{
    static const char *const resources[] = {
        API "/summary",  API "/nodes",    API "/nodes/{node}",  API "/gateways",
        API "/releases", API "/rollouts", API "/rollouts/{id}", API "/rollouts/{id}/log",
        API "/events",
    };
    cj_obj_begin(j);
    cj_kstr(j, "service", "ferry-cloud serve");
    cj_key(j, "resources");
    cj_arr_begin(j);
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
        cj_str(j, resources[i]);
    cj_arr_end(j);
    cj_key(j, "actions");
    cj_arr_begin(j);
    for (int a = 0; a < CLOUD_ACT__COUNT; a++) {
        char path[96];
        snprintf(path, sizeof(path), "POST " API "/rollouts/{id}/%s",
                 cloud_rollout_action_verb((enum cloud_rollout_action)a));
        cj_str(j, path);
    }
    cj_arr_end(j);
    cj_kbool(j, "actions_enabled", h->access.act != NULL);
    cj_kbool(j, "reads_need_token", cloud_http_reads_need_token(&h->access));
    cj_obj_end(j);
}

/* A read resource, answered from a borrowed reader. */
static enum MHD_Result serve_read(struct cloud_http *h, struct MHD_Connection *conn,
                                  struct request *r, const char *method, const char *url,
                                  const struct route *rt)
{
    struct cloud_http_params params = {.n = 0};
    struct collect col = {.p = &params};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_arg, &col);
    if (col.too_many) {
        char msg[96];
        snprintf(msg, sizeof(msg), "more than %d query parameters", CLOUD_HTTP_PARAMS_MAX);
        return reply_error(conn, r, method, url, 400, msg, NULL, NULL);
    }
    struct ferry_diag d = {{0}};
    struct cloud_json j;
    cj_init(&j, CLOUD_HTTP_DOC_MAX);
    enum ferry_err err = FERRY_OK;
    if (rt->res == RES_INDEX) {
        if (params.n)
            err = ferry_fail(&d, FERRY_E_INVALID_ARG, "unknown parameter '%.64s'", params.v[0].key);
        else
            index_doc(h, &j);
    } else {
        /* Past its share of the readers' time a client waits first. */
        char who[INET6_ADDRSTRLEN];
        client_text(conn, who, sizeof(who));
        share_wait(&h->pool, who);
        struct cloud_http_db *db = pool_get(&h->pool);
        if (!db) {
            cj_free(&j);
            return reply_error(conn, r, method, url, 503,
                               "every reader of the inventory is busy; try again",
                               MHD_HTTP_HEADER_RETRY_AFTER, "5");
        }
        struct cloud_http_ctx c = {
            .db = db, .presence = h->presence, .store = h->store, .now = (int64_t)time(NULL)};
        switch (rt->res) {
        case RES_SUMMARY:
            err = cloud_http_view_summary(&c, &params, &j, &d);
            break;
        case RES_NODES:
            err = cloud_http_view_nodes(&c, &params, &j, &d);
            break;
        case RES_NODE:
            err = cloud_http_view_node(&c, rt->id, &params, &j, &d);
            break;
        case RES_GATEWAYS:
            err = cloud_http_view_gateways(&c, &params, &j, &d);
            break;
        case RES_RELEASES:
            err = cloud_http_view_releases(&c, &params, &j, &d);
            break;
        case RES_ROLLOUTS:
            err = cloud_http_view_rollouts(&c, &params, &j, &d);
            break;
        case RES_ROLLOUT:
            err = cloud_http_view_rollout(&c, rt->rollout, &params, &j, &d);
            break;
        case RES_ROLLOUT_LOG:
            err = cloud_http_view_rollout_log(&c, rt->rollout, &params, &j, &d);
            break;
        default:
            err = ferry_fail(&d, FERRY_E_NOT_FOUND, "no such resource");
            break;
        }
        pool_put(&h->pool, db);
    }
    if (err != FERRY_OK) {
        cj_free(&j);
        return reply_failure(conn, r, method, url, err, &d);
    }
    size_t len = 0;
    char *body = cj_take(&j, &len);
    if (!body)
        return reply_error(conn, r, method, url, 500, "out of memory", NULL, NULL);
    return reply_json(conn, r, method, url, 200, body, len, NULL, NULL);
}

/* ---- the event stream
 * ---------------------------------------------------------------------------- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    ssize_t n = cloud_http_stream_read(cls, buf, max);
    if (n == CLOUD_HTTP_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls)
{
    cloud_http_stream_close(cls);
}

static enum MHD_Result serve_events(struct cloud_http *h, struct MHD_Connection *conn,
                                    struct request *r, const char *method, const char *url)
{
    struct cloud_http_params params = {.n = 0};
    struct collect col = {.p = &params};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_arg, &col);
    if (params.n || col.too_many)
        return reply_error(conn, r, method, url, 400, "the event stream takes no parameter", NULL,
                           NULL);
    uint64_t last = 0;
    const char *lei = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (lei && ferry_parse_u64(lei, &last) != FERRY_OK)
        return reply_error(conn, r, method, url, 400, "Last-Event-ID must be an event's id", NULL,
                           NULL);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ferry_diag d = {{0}};
    struct cloud_http_stream *s = NULL;
    enum ferry_err err = cloud_http_stream_open(h->events, last, ci ? ci->connect_fd : -1, &s, &d);
    if (err != FERRY_OK)
        return reply_failure(conn, r, method, url, err, &d);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                                                  stream_reader, s, stream_free);
    if (!resp) {
        cloud_http_stream_close(s);
        return MHD_NO;
    }
    common_headers(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    char who[INET6_ADDRSTRLEN];
    client_text(conn, who, sizeof(who));
    ferry_log_debug("http: event stream opened for %s (%u open)", who,
                    cloud_http_events_streams(h->events));
    return ok;
}

/* ---- actions
 * --------------------------------------------------------------------------------------- */

static enum MHD_Result serve_action(struct cloud_http *h, struct MHD_Connection *conn,
                                    struct request *r, const char *method, const char *url,
                                    const struct route *rt, const char *token_name)
{
    struct ferry_diag d = {{0}};
    struct ferry_api_action body;
    enum ferry_err err =
        ferry_api_action_from_json((const uint8_t *)r->body, r->body_len, &body, &d);
    if (err != FERRY_OK)
        return reply_error(conn, r, method, url, err == FERRY_E_TOO_LARGE ? 413 : 400,
                           ferry_diag_str(&d, err), NULL, NULL);
    /* Who: the token's name, which the server vouches for, and the name
     * the client gives, which it does not. */
    char actor[CLOUD_ACTOR_MAX + 1];
    if (body.by[0])
        snprintf(actor, sizeof(actor), "http:%.24s (%.32s)", token_name, body.by);
    else
        snprintf(actor, sizeof(actor), "http:%.24s", token_name);
    char what[CLOUD_ACT_WHAT_MAX] = "";
    struct cloud_inventory *inv = NULL;
    pthread_mutex_lock(&h->act_lock);
    err = cloud_inventory_open(h->db, false, &inv, &d);
    if (err == FERRY_OK)
        err = cloud_rollout_act(inv, rt->rollout, rt->action, actor, body.reason,
                                (int64_t)time(NULL), what, &d);
    cloud_inventory_close(inv);
    pthread_mutex_unlock(&h->act_lock);
    if (err == FERRY_E_INVALID_ARG) /* the action does not apply to the rollout's state */
        return reply_error(conn, r, method, url, 409, ferry_diag_str(&d, err), NULL, NULL);
    if (err != FERRY_OK)
        return reply_failure(conn, r, method, url, err, &d);
    char who[INET6_ADDRSTRLEN];
    client_text(conn, who, sizeof(who));
    ferry_log_info("http: rollout %" PRId64 " %s by %s from %s%s%.200s", rt->rollout, what, actor,
                   who, body.reason[0] ? ": " : "", body.reason);
    /* The answer: what happened, and the rollout as it is now. */
    struct cloud_json j;
    cj_init(&j, CLOUD_HTTP_DOC_MAX);
    cj_obj_begin(&j);
    cj_kstr(&j, "done", what);
    cj_kstr(&j, "by", actor);
    cj_key(&j, "rollout");
    struct cloud_http_db *db = pool_get(&h->pool);
    if (db) {
        struct cloud_http_params none = {.n = 0};
        uint64_t cpu0 = thread_cpu_us();
        struct cloud_http_ctx c = {
            .db = db, .presence = h->presence, .store = h->store, .now = (int64_t)time(NULL)};
        err = cloud_http_view_rollout(&c, rt->rollout, &none, &j, &d);
        pool_put(&h->pool, db);
        share_charge(&h->pool, who, thread_cpu_us() - cpu0);
    }
    if (!db || err != FERRY_OK)
        cj_null(&j); /* done all the same; the page reads it again */
    cj_obj_end(&j);
    size_t len = 0;
    char *text = cj_take(&j, &len);
    if (!text)
        return reply_error(conn, r, method, url, 500, "out of memory", NULL, NULL);
    return reply_json(conn, r, method, url, 200, text, len, NULL, NULL);
}

/* ---- dispatch
 * -------------------------------------------------------------------------------------- */

static bool is_get(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

static enum MHD_Result dispatch(struct cloud_http *h, struct MHD_Connection *conn,
                                struct request *r, const char *url, const char *method)
{
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (r->body_too_large) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the request body exceeds %d bytes", FERRY_API_BODY_MAX);
        return reply_error(conn, r, method, url, 413, msg, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    const struct cloud_http_asset *asset = cloud_http_asset_find(url);
    if (asset) {
        if (!is_get(method))
            return reply_error(conn, r, method, url, 405, "the page is read with GET",
                               MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return reply_asset(conn, r, method, url, asset);
    }
    if (strncmp(url, API, strlen(API)) != 0 || (url[strlen(API)] && url[strlen(API)] != '/'))
        return reply_error(conn, r, method, url, 404, "no such resource (the API is under " API ")",
                           NULL, NULL);
    struct route rt;
    unsigned status = 0;
    struct ferry_diag d = {{0}};
    if (!route_of(url + strlen(API), &rt, &status, &d))
        return reply_error(conn, r, method, url, status, d.msg, NULL, NULL);
    bool action = rt.res == RES_ACTION;
    if (action && !post)
        return reply_error(conn, r, method, url, 405, "an action is a POST", MHD_HTTP_HEADER_ALLOW,
                           "POST");
    if (!action && !is_get(method))
        return reply_error(conn, r, method, url, 405, "this resource is read with GET",
                           MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (!action && r->body_len)
        return reply_error(conn, r, method, url, 400, "a read takes no request body", NULL, NULL);
    const char *who = "";
    enum cloud_http_verdict v = cloud_http_authorize(
        &h->access, action ? CLOUD_HTTP_ACT : CLOUD_HTTP_READ,
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), &who);
    if (v != CLOUD_HTTP_ALLOWED)
        return reply_denied(conn, r, method, url, v);
    if (action)
        return serve_action(h, conn, r, method, url, &rt, who);
    if (rt.res == RES_EVENTS)
        return serve_events(h, conn, r, method, url);
    return serve_read(h, conn, r, method, url, &rt);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct cloud_http *h = cls;
    struct request *r = *con_cls;
    cloud_http_thread_nice(); /* a connection's thread, at its first request */
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->start_ms = mono_ms();
        r->cpu0_us = thread_cpu_us();
        *con_cls = r;
        /* Refused before its body is read: an action without the right
         * to it (whoever has no token learns nothing more), then a body
         * that says it is too large. */
        if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
            const char *who = "";
            enum cloud_http_verdict v = cloud_http_authorize(
                &h->access, CLOUD_HTTP_ACT,
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                &who);
            if (v != CLOUD_HTTP_ALLOWED) {
                r->answered = true;
                return reply_denied(conn, r, method, url, v);
            }
        }
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t len = 0;
        if (cl && (ferry_parse_u64(cl, &len) != FERRY_OK || len > FERRY_API_BODY_MAX)) {
            r->body_too_large = true;
            r->answered = true;
            return dispatch(h, conn, r, url, method);
        }
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0; /* the answer is out; the rest is dropped */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (r->body_len + n > sizeof(r->body))
            r->body_too_large = true;
        else
            memcpy(r->body + r->body_len, upload_data, n);
        if (!r->body_too_large)
            r->body_len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(h, conn, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct cloud_http *h = cls;
    const struct request *r = *con_cls;
    (void)toe;
    if (r) {
        /* The whole request's CPU time (its connection's thread: parsing,
         * the reads, the answer), to its client's share. */
        char who[INET6_ADDRSTRLEN];
        client_text(conn, who, sizeof(who));
        uint64_t now = thread_cpu_us();
        share_charge(&h->pool, who, now > r->cpu0_us ? now - r->cpu0_us : 0);
    }
    free(*con_cls);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    ferry_log_warn("http: libmicrohttpd: %s", line);
}

/* ---- start and stop
 * ---------------------------------------------------------------------------------- */

static enum ferry_err read_pem(const char *path, const char *what, char **out, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(path, PEM_MAX, &buf, &len, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, what);
        return err;
    }
    if (!strstr((const char *)buf, "-----BEGIN ")) {
        free(buf);
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s %s: not a PEM file", what, path);
    }
    *out = (char *)buf; /* NUL-terminated by ferry_read_file */
    return FERRY_OK;
}

static enum ferry_err start_daemon(struct cloud_http *h, const struct cloud_http_cfg *c,
                                   struct ferry_diag *d)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (h->cert)
        flags |= MHD_USE_TLS;
    if (h->addr.ipv6)
        flags |= MHD_USE_IPv6;
    if (h->cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--http-cert: this libmicrohttpd was built without TLS");
    struct MHD_OptionItem tls[] = {
        {h->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)(uintptr_t)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                              (const struct sockaddr *)&h->addr.ss, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)c->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                              (unsigned)(c->max_connections / 2), MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)CLOUD_HTTP_IDLE_S, MHD_OPTION_NOTIFY_COMPLETED,
                              on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                              MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!h->mhd)
        return ferry_fail(d, FERRY_E_IO,
                          "--http %s: cannot listen there (in use, not an address of this host, "
                          "or the certificate and key do not match; see the log above)",
                          h->addr.text);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return FERRY_OK;
}

enum ferry_err cloud_http_start(const struct cloud_http_cfg *cfg, const char *db, const char *store,
                                const char *fleet, struct cloud_http **out, struct ferry_diag *d)
{
    struct cloud_http_cfg c = *cfg;
    cloud_http_cfg_defaults(&c);
    enum ferry_err err = cloud_http_cfg_check(&c, d);
    if (err != FERRY_OK)
        return err;
    struct cloud_http *h = calloc(1, sizeof(*h));
    if (!h || !(h->db = strdup(db))) {
        free(h);
        return ferry_fail(d, FERRY_E_NOMEM, "http: out of memory");
    }
    pthread_mutex_init(&h->pool.lock, NULL);
    pthread_cond_init(&h->pool.cond, NULL);
    pthread_cond_init(&h->pool.share_cond, NULL);
    cloud_http_share_init(&h->pool.share, CLOUD_HTTP_SHARE_PERMILLE, CLOUD_HTTP_SHARE_BURST_US);
    pthread_mutex_init(&h->act_lock, NULL);
    err = cloud_http_addr_parse(c.listen, &h->addr, d);
    if (err == FERRY_OK && ferry_topic(h->presence_filter, sizeof(h->presence_filter),
                                       FERRY_TOPIC_PRESENCE, fleet, "+", NULL) != FERRY_OK)
        err =
            ferry_fail(d, FERRY_E_INVALID_ARG, "http: no presence topic for fleet '%.80s'", fleet);
    if (err == FERRY_OK)
        snprintf(h->presence_prefix, sizeof(h->presence_prefix), "%.*s",
                 (int)strlen(h->presence_filter) - 1, h->presence_filter);
    if (err == FERRY_OK && c.token_file)
        err = cloud_http_tokens_load(c.token_file, &h->act_tokens, d);
    if (err == FERRY_OK && c.read_token_file)
        err = cloud_http_tokens_load(c.read_token_file, &h->read_tokens, d);
    if (err == FERRY_OK && c.cert)
        err = read_pem(c.cert, "--http-cert", &h->cert, d);
    if (err == FERRY_OK && c.key)
        err = read_pem(c.key, "--http-key", &h->key, d);
    h->access = (struct cloud_http_access){
        .act = h->act_tokens, .read = h->read_tokens, .loopback = h->addr.loopback};
    if (err == FERRY_OK)
        err = cloud_http_presence_new(&h->presence, d);
    if (err == FERRY_OK)
        err = cloud_store_open(store, &h->store, d);
    for (size_t i = 0; err == FERRY_OK && i < CLOUD_HTTP_READERS; i++) {
        err = cloud_http_db_open(db, &h->pool.free[i], d);
        if (err == FERRY_OK)
            h->pool.nfree++;
    }
    struct cloud_http_events_cfg ec = {
        .db = db, .presence = h->presence, .max_streams = (unsigned)c.max_streams};
    if (err == FERRY_OK)
        err = cloud_http_events_start(&ec, &h->events, d);
    if (err == FERRY_OK && MHD_is_feature_supported(MHD_FEATURE_AUTOSUPPRESS_SIGPIPE) != MHD_YES) {
        /* A client that hangs up mid-answer must not stop serve. */
        signal(SIGPIPE, SIG_IGN);
    }
    if (err == FERRY_OK)
        err = start_daemon(h, &c, d);
    if (err != FERRY_OK) {
        cloud_http_stop(h);
        return err;
    }
    /* The address as given, with the port it got (port 0 picks one). */
    const char *colon = strrchr(h->addr.text, ':');
    ferry_log_info("http: console and API on %s://%.*s:%u/ (reads %s, actions %s)",
                   h->cert ? "https" : "http", (int)(colon - h->addr.text), h->addr.text, h->port,
                   cloud_http_reads_need_token(&h->access) ? "need a token" : "open on loopback",
                   h->act_tokens ? "need a token" : "off");
    *out = h;
    return FERRY_OK;
}

void cloud_http_stop(struct cloud_http *h)
{
    if (!h)
        return;
    /* Streams and waiting requests end first, so that the daemon's threads
     * can be joined. */
    cloud_http_events_stop(h->events);
    pthread_mutex_lock(&h->pool.lock);
    h->pool.stop = true;
    pthread_cond_broadcast(&h->pool.cond);
    pthread_cond_broadcast(&h->pool.share_cond);
    pthread_mutex_unlock(&h->pool.lock);
    if (h->mhd)
        MHD_stop_daemon(h->mhd);
    cloud_http_events_free(h->events);
    for (size_t i = 0; i < h->pool.nfree; i++)
        cloud_http_db_close(h->pool.free[i]);
    cloud_store_free(h->store);
    cloud_http_presence_free(h->presence);
    cloud_http_tokens_free(h->act_tokens);
    cloud_http_tokens_free(h->read_tokens);
    if (h->key)
        explicit_bzero(h->key, strlen(h->key));
    free(h->key);
    free(h->cert);
    pthread_mutex_destroy(&h->act_lock);
    pthread_cond_destroy(&h->pool.cond);
    pthread_cond_destroy(&h->pool.share_cond);
    pthread_mutex_destroy(&h->pool.lock);
    free(h->db);
    free(h);
}

const char *cloud_http_presence_filter(const struct cloud_http *h)
{
    return h->presence_filter;
}

bool cloud_http_message(struct cloud_http *h, const char *topic, const uint8_t *payload, size_t len)
{
    size_t n = strlen(h->presence_prefix);
    if (strncmp(topic, h->presence_prefix, n) != 0)
        return false;
    struct ferry_diag d = {{0}};
    enum ferry_err err =
        cloud_http_presence_put(h->presence, topic + n, payload, len, (int64_t)time(NULL), &d);
    if (err != FERRY_OK)
        ferry_log_warn("presence message on %.160s dropped: %s", topic, ferry_diag_str(&d, err));
    else
        ferry_log_debug("presence: gateway %s %.*s", topic + n, (int)(len < 8 ? len : 8),
                        (const char *)payload);
    return true;
}

unsigned cloud_http_port(const struct cloud_http *h)
{
    return h->port;
}
