#include "cloud_http_events.h"

#include "cloud_http.h"
#include "cloud_http_sql.h"
#include "cloud_http_views.h"
#include "ferry_log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEARTBEAT_MS   15000
#define WAIT_MS        1000
#define ROLLOUTS_EVERY 10 /* s, while a rollout is active */
#define STREAM_QUEUE   6
#define ROLLOUTS_SENT  20
/* Records are stamped with the second their transaction began in; a tick
 * reads the last SETTLE_S seconds again, so a transaction stamped late in
 * one second and committed early in the next is not missed. One that
 * waited longer for the write lock can be: the nodes event is a hint for
 * the page, which reads its rows again on the next summary. */
#define SETTLE_S 2

/* One event as it goes on the wire, shared by the ring and the streams
 * reading it (refs under the events' lock; static frames are never freed). */
struct frame {
    unsigned refs;
    bool is_static;
    size_t len;
    const char *data;
    char *owned; /* data, when not static */
};

#define STATIC_FRAME(text)                                                                         \
    {                                                                                              \
        .is_static = true, .len = sizeof(text) - 1, .data = text                                   \
    }
static struct frame PING = STATIC_FRAME(": ping\n\n");
static struct frame RETRY = STATIC_FRAME("retry: 2000\n\n");
static struct frame RESET = STATIC_FRAME("event: reset\ndata: {}\n\n");

struct cloud_http_events {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* new events, a stream opened, stop */
    pthread_t watcher;
    bool started, stop;
    struct frame *ring[CLOUD_HTTP_EVENTS_RING];
    uint64_t head; /* id of the newest event; 0: none yet */
    /* The latest documents, for a new stream to start from. */
    struct frame *snap_summary, *snap_rollouts, *snap_gateways;
    unsigned streams, max_streams;
    /* The watcher's own (only it touches these). */
    struct cloud_http_db *db;
    struct cloud_http_presence *presence;
    unsigned tick_ms;
};

struct cloud_http_stream {
    struct cloud_http_events *ev;
    uint64_t next; /* the ring event to send next */
    int fd;
    struct frame *queue[STREAM_QUEUE]; /* sent before the ring */
    size_t nq;
    struct frame *cur;
    size_t off;
    uint64_t last_ms; /* when bytes last went out */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- frames (under the lock) ----------------------------------------------------------------- */

static struct frame *frame_ref(struct frame *f)
{
    if (f && !f->is_static)
        f->refs++;
    return f;
}

static void frame_unref(struct frame *f)
{
    if (!f || f->is_static || --f->refs > 0)
        return;
    free(f->owned);
    free(f);
}

/* "id: N\nevent: T\ndata: JSON\n\n" with one reference; NULL without memory. */
static struct frame *frame_new(uint64_t id, const char *type, const char *json, size_t len)
{
    struct frame *f = calloc(1, sizeof(*f));
    size_t cap = len + 96;
    if (!f || !(f->owned = malloc(cap))) {
        free(f);
        return NULL;
    }
    int n = snprintf(f->owned, cap, "id: %" PRIu64 "\nevent: %s\ndata: ", id, type);
    memcpy(f->owned + n, json, len);
    memcpy(f->owned + (size_t)n + len, "\n\n", 2);
    f->len = (size_t)n + len + 2;
    f->data = f->owned;
    f->refs = 1;
    return f;
}

/* Appends an event to the ring (taking json's text); *snap, when given,
 * becomes it too. */
static void publish(struct cloud_http_events *ev, const char *type, char *json, size_t len,
                    struct frame **snap)
{
    pthread_mutex_lock(&ev->lock);
    struct frame *f = frame_new(ev->head + 1, type, json, len);
    if (f) {
        ev->head++;
        frame_unref(ev->ring[ev->head % CLOUD_HTTP_EVENTS_RING]);
        ev->ring[ev->head % CLOUD_HTTP_EVENTS_RING] = f;
        if (snap) {
            frame_unref(*snap);
            *snap = frame_ref(f);
        }
        pthread_cond_broadcast(&ev->cond);
    } else {
        ferry_log_warn("http: out of memory for a %s event", type);
    }
    pthread_mutex_unlock(&ev->lock);
    free(json);
}

/* ---- the watcher ------------------------------------------------------------------------------
 */

struct watch {
    bool valid;    /* started since streams last opened */
    int64_t since; /* the first second not yet read */
    struct cloud_http_marks marks;
    uint64_t presence;
    bool dirty;          /* summary to build again */
    bool rollouts_dirty; /* rollouts too: they changed, or nodes did while one is active */
    uint64_t summary_ms, rollouts_ms, gateways_ms;
    bool gateways_dirty;
};

struct changed_acc {
    struct cloud_json *out;
    unsigned n;
};

static enum ferry_err on_changed(void *arg, const struct cloud_http_node *n)
{
    struct changed_acc *a = arg;
    if (a->n++ >= CLOUD_HTTP_EVENTS_NODES)
        return FERRY_OK; /* the extra one only says "truncated" */
    return cloud_http_node_json(n, a->out, NULL);
}

typedef enum ferry_err (*doc_fn)(const struct cloud_http_ctx *c, struct cloud_json *out,
                                 struct ferry_diag *d);

static enum ferry_err summary_doc(const struct cloud_http_ctx *c, struct cloud_json *out,
                                  struct ferry_diag *d)
{
    struct cloud_http_params none = {.n = 0};
    return cloud_http_view_summary(c, &none, out, d);
}

static enum ferry_err rollouts_doc(const struct cloud_http_ctx *c, struct cloud_json *out,
                                   struct ferry_diag *d)
{
    return cloud_http_rollout_list_json(c, ROLLOUTS_SENT, out, d);
}

static enum ferry_err gateways_doc(const struct cloud_http_ctx *c, struct cloud_json *out,
                                   struct ferry_diag *d)
{
    struct cloud_http_params none = {.n = 0};
    return cloud_http_view_gateways(c, &none, out, d);
}

static void send_doc(struct cloud_http_events *ev, const struct cloud_http_ctx *c, const char *type,
                     doc_fn fn, struct frame **snap)
{
    struct ferry_diag d = {{0}};
    struct cloud_json j;
    cj_init(&j, CLOUD_HTTP_DOC_MAX);
    enum ferry_err err = fn(c, &j, &d);
    size_t len = 0;
    char *text = err == FERRY_OK ? cj_take(&j, &len) : NULL;
    cj_free(&j);
    if (!text) {
        ferry_log_warn("http: %s event not built: %s", type,
                       ferry_diag_str(&d, err ? err : FERRY_E_NOMEM));
        return;
    }
    publish(ev, type, text, len, snap);
}

/* The nodes whose latest record was stored in second w->since or later.
 * The last SETTLE_S seconds are read again at the next tick, so a node may
 * come twice; there is no upper bound, because a node that reports every
 * second (a download) has its latest record always in the last second and
 * would never be sent. */
static bool send_changed(struct cloud_http_events *ev, struct watch *w, int64_t now)
{
    int64_t until = INT64_MAX;
    struct ferry_diag d = {{0}};
    struct cloud_json j;
    struct changed_acc a = {.out = &j};
    cj_init(&j, CLOUD_HTTP_DOC_MAX);
    cj_obj_begin(&j);
    cj_key(&j, "nodes");
    cj_arr_begin(&j);
    enum ferry_err err = cloud_http_db_changed(ev->db, w->since, until, CLOUD_HTTP_EVENTS_NODES + 1,
                                               on_changed, &a, &d);
    cj_arr_end(&j);
    cj_kbool(&j, "truncated", a.n > CLOUD_HTTP_EVENTS_NODES);
    cj_obj_end(&j);
    if (err != FERRY_OK) {
        ferry_log_warn("http: changed nodes not read: %s", ferry_diag_str(&d, err));
        cj_free(&j);
        return false;
    }
    w->since = now - SETTLE_S + 1;
    size_t len = 0;
    char *text = a.n ? cj_take(&j, &len) : NULL;
    cj_free(&j);
    if (text)
        publish(ev, "nodes", text, len, NULL);
    return a.n > 0;
}

static void tick(struct cloud_http_events *ev, struct watch *w)
{
    struct ferry_diag d = {{0}};
    int64_t now = (int64_t)time(NULL);
    uint64_t ms = mono_ms();
    struct cloud_http_ctx c = {.db = ev->db, .presence = ev->presence, .now = now};
    struct cloud_http_marks m;
    enum ferry_err err = cloud_http_db_marks(ev->db, &m, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("http: the event stream cannot read the inventory: %s",
                       ferry_diag_str(&d, err));
        return;
    }
    uint64_t presence = ev->presence ? cloud_http_presence_version(ev->presence) : 0;
    if (!w->valid) {
        /* Streams opened after a quiet spell: what they start from. A page
         * loads the resources just before it opens its stream, so the last
         * seconds' changes are sent again rather than missed. */
        *w = (struct watch){.valid = true, .since = now - SETTLE_S - 1, .marks = m};
        w->presence = presence;
        send_doc(ev, &c, "summary", summary_doc, &ev->snap_summary);
        send_doc(ev, &c, "rollouts", rollouts_doc, &ev->snap_rollouts);
        send_doc(ev, &c, "gateways", gateways_doc, &ev->snap_gateways);
        w->summary_ms = w->rollouts_ms = w->gateways_ms = ms;
        return;
    }
    bool moved = send_changed(ev, w, now);
    if (moved || m.nodes != w->marks.nodes)
        w->dirty = true;
    /* An ended rollout's counts do not move with its nodes' records (the
     * controller refreshes active rollouts only): records make the rollouts
     * document stale only while one is active. */
    if (moved && (m.active || w->marks.active))
        w->rollouts_dirty = true;
    if (m.log_id != w->marks.log_id || m.revisions != w->marks.revisions ||
        m.active != w->marks.active)
        w->dirty = w->rollouts_dirty = true;
    if (presence != w->presence) {
        w->dirty = w->gateways_dirty = true;
        w->presence = presence;
    }
    w->marks = m;
    if (w->dirty && ms - w->summary_ms >= CLOUD_HTTP_SUMMARY_MS) {
        send_doc(ev, &c, "summary", summary_doc, &ev->snap_summary);
        if (w->rollouts_dirty) {
            send_doc(ev, &c, "rollouts", rollouts_doc, &ev->snap_rollouts);
            w->rollouts_ms = ms;
        }
        w->summary_ms = ms;
        w->dirty = w->rollouts_dirty = false;
    } else if (m.active && ms - w->rollouts_ms >= ROLLOUTS_EVERY * 1000) {
        send_doc(ev, &c, "rollouts", rollouts_doc, &ev->snap_rollouts);
        w->rollouts_ms = ms;
    }
    if (w->gateways_dirty && ms - w->gateways_ms >= CLOUD_HTTP_SUMMARY_MS) {
        send_doc(ev, &c, "gateways", gateways_doc, &ev->snap_gateways);
        w->gateways_ms = ms;
        w->gateways_dirty = false;
    }
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void drop_snapshots(struct cloud_http_events *ev)
{
    frame_unref(ev->snap_summary);
    frame_unref(ev->snap_rollouts);
    frame_unref(ev->snap_gateways);
    ev->snap_summary = ev->snap_rollouts = ev->snap_gateways = NULL;
}

static void *watch_main(void *arg)
{
    struct cloud_http_events *ev = arg;
    struct watch w = {.valid = false};
    cloud_http_thread_nice();
    pthread_mutex_lock(&ev->lock);
    while (!ev->stop) {
        if (ev->streams == 0) {
            /* Nobody watching: no query at all until a stream opens. */
            w.valid = false;
            drop_snapshots(ev);
            pthread_cond_wait(&ev->cond, &ev->lock);
            continue;
        }
        pthread_mutex_unlock(&ev->lock);
        tick(ev, &w);
        pthread_mutex_lock(&ev->lock);
        struct timespec until;
        deadline_after(&until, ev->tick_ms);
        while (!ev->stop && pthread_cond_timedwait(&ev->cond, &ev->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&ev->lock);
    return NULL;
}

enum ferry_err cloud_http_events_start(const struct cloud_http_events_cfg *cfg,
                                       struct cloud_http_events **out, struct ferry_diag *d)
{
    struct cloud_http_events *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return ferry_fail(d, FERRY_E_NOMEM, "http: out of memory");
    ev->max_streams = cfg->max_streams;
    ev->presence = cfg->presence;
    ev->tick_ms = cfg->tick_ms ? cfg->tick_ms : 1000;
    pthread_mutex_init(&ev->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->cond, &ca);
    pthread_condattr_destroy(&ca);
    enum ferry_err err = cloud_http_db_open(cfg->db, &ev->db, d);
    if (err == FERRY_OK) {
        int rc = pthread_create(&ev->watcher, NULL, watch_main, ev);
        if (rc != 0)
            err = ferry_fail(d, FERRY_E_NOMEM, "http: no thread for the event stream: %s",
                             strerror(rc));
        ev->started = rc == 0;
    }
    if (err != FERRY_OK) {
        cloud_http_events_free(ev);
        return err;
    }
    *out = ev;
    return FERRY_OK;
}

void cloud_http_events_stop(struct cloud_http_events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    ev->stop = true;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
}

void cloud_http_events_free(struct cloud_http_events *ev)
{
    if (!ev)
        return;
    cloud_http_events_stop(ev);
    if (ev->started)
        pthread_join(ev->watcher, NULL);
    for (size_t i = 0; i < CLOUD_HTTP_EVENTS_RING; i++)
        frame_unref(ev->ring[i]);
    drop_snapshots(ev);
    cloud_http_db_close(ev->db);
    pthread_cond_destroy(&ev->cond);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

unsigned cloud_http_events_streams(struct cloud_http_events *ev)
{
    pthread_mutex_lock(&ev->lock);
    unsigned n = ev->streams;
    pthread_mutex_unlock(&ev->lock);
    return n;
}

/* ---- streams ----------------------------------------------------------------------------------
 */

enum ferry_err cloud_http_stream_open(struct cloud_http_events *ev, uint64_t last_id, int fd,
                                      struct cloud_http_stream **out, struct ferry_diag *d)
{
    struct cloud_http_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return ferry_fail(d, FERRY_E_NOMEM, "http: out of memory for an event stream");
    s->ev = ev;
    s->fd = fd;
    s->last_ms = mono_ms();
    pthread_mutex_lock(&ev->lock);
    if (ev->stop || ev->streams >= ev->max_streams) {
        unsigned max = ev->max_streams;
        pthread_mutex_unlock(&ev->lock);
        free(s);
        return ferry_fail(
            d, FERRY_E_BUSY,
            "%u event streams are open, the most this server keeps (--http-max-streams)", max);
    }
    ev->streams++;
    uint64_t oldest =
        ev->head >= CLOUD_HTTP_EVENTS_RING ? ev->head - CLOUD_HTTP_EVENTS_RING + 1 : 1;
    s->queue[s->nq++] = &RETRY;
    if (last_id && last_id + 1 >= oldest && last_id <= ev->head) {
        s->next = last_id + 1;
    } else {
        if (last_id)
            s->queue[s->nq++] = &RESET;
        s->next = ev->head + 1;
    }
    struct frame *snaps[3] = {ev->snap_summary, ev->snap_rollouts, ev->snap_gateways};
    for (int i = 0; i < 3; i++) {
        if (snaps[i])
            s->queue[s->nq++] = frame_ref(snaps[i]);
    }
    pthread_cond_broadcast(&ev->cond); /* the watcher starts watching */
    pthread_mutex_unlock(&ev->lock);
    *out = s;
    return FERRY_OK;
}

/* Whether the client closed its side (or the socket failed). */
static bool hung_up(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

ssize_t cloud_http_stream_read(struct cloud_http_stream *s, char *buf, size_t max)
{
    struct cloud_http_events *ev = s->ev;
    if (max == 0)
        return 0;
    pthread_mutex_lock(&ev->lock);
    for (;;) {
        if (s->cur) {
            size_t n = s->cur->len - s->off;
            if (n > max)
                n = max;
            memcpy(buf, s->cur->data + s->off, n);
            s->off += n;
            if (s->off == s->cur->len) {
                frame_unref(s->cur);
                s->cur = NULL;
                s->off = 0;
            }
            s->last_ms = mono_ms();
            pthread_mutex_unlock(&ev->lock);
            return (ssize_t)n;
        }
        if (ev->stop)
            break;
        if (s->nq) {
            s->cur = s->queue[0];
            memmove(s->queue, s->queue + 1, (--s->nq) * sizeof(s->queue[0]));
            continue;
        }
        if (s->next <= ev->head) {
            uint64_t oldest =
                ev->head >= CLOUD_HTTP_EVENTS_RING ? ev->head - CLOUD_HTTP_EVENTS_RING + 1 : 1;
            if (s->next < oldest) {
                /* Too slow a reader: it missed events; it reads afresh. */
                s->cur = &RESET;
                s->next = ev->head + 1;
            } else {
                s->cur = frame_ref(ev->ring[s->next % CLOUD_HTTP_EVENTS_RING]);
                s->next++;
            }
            continue;
        }
        if (mono_ms() - s->last_ms >= HEARTBEAT_MS) {
            s->cur = &PING;
            continue;
        }
        if (hung_up(s->fd)) {
            pthread_mutex_unlock(&ev->lock);
            return CLOUD_HTTP_STREAM_ERROR;
        }
        struct timespec until;
        deadline_after(&until, WAIT_MS);
        pthread_cond_timedwait(&ev->cond, &ev->lock, &until);
    }
    pthread_mutex_unlock(&ev->lock);
    return CLOUD_HTTP_STREAM_END;
}

void cloud_http_stream_close(struct cloud_http_stream *s)
{
    if (!s)
        return;
    struct cloud_http_events *ev = s->ev;
    pthread_mutex_lock(&ev->lock);
    frame_unref(s->cur);
    for (size_t i = 0; i < s->nq; i++)
        frame_unref(s->queue[i]);
    ev->streams--;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
    free(s);
}
