#include "gw_fetch.h"

#include "ferry_manifest.h"
#include "ferry_random.h"

#include <stdlib.h>
#include <string.h>

struct gw_fetch {
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t total;
    uint32_t chunk;
    uint32_t window;
    uint64_t nchunks;
    uint64_t end;       /* chunks held from 0 */
    uint64_t requested; /* chunks asked for from 0 */
    bool link_up;
    uint32_t base_timeout_ms;
    uint32_t max_timeout_ms;
    uint32_t timeout_ms;    /* current, after backoff */
    uint64_t timer_start;   /* last progress, request after a timeout, or link up */
    uint32_t errors;        /* error chunks since the last progress, busy ones apart */
    uint32_t busy;          /* busy answers since the last progress */
    struct ferry_prng prng; /* jitter of busy retries */
    struct gw_fetch_stats stats;
};

static enum ferry_err check_params(const struct gw_fetch_params *p, struct ferry_diag *d)
{
    if (p->total < 1 || p->total > FERRY_ARTIFACT_MAX_SIZE)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "fetch: total must be 1..%llu bytes, got %llu",
                          (unsigned long long)FERRY_ARTIFACT_MAX_SIZE,
                          (unsigned long long)p->total);
    if (p->chunk < FERRY_STREAM_MIN_CHUNK || p->chunk > FERRY_STREAM_MAX_CHUNK)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "fetch: chunk must be %d..%d bytes, got %u",
                          FERRY_STREAM_MIN_CHUNK, FERRY_STREAM_MAX_CHUNK, p->chunk);
    if (p->resume > p->total || (p->resume % p->chunk != 0 && p->resume != p->total))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "fetch: resume offset %llu is neither a multiple of the chunk (%u) "
                          "nor the total (%llu)",
                          (unsigned long long)p->resume, p->chunk, (unsigned long long)p->total);
    if (p->window < 1 || p->window > FERRY_STREAM_MAX_WINDOW)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "fetch: window must be 1..%d chunks, got %u",
                          FERRY_STREAM_MAX_WINDOW, p->window);
    uint32_t base = p->timeout_ms ? p->timeout_ms : GW_FETCH_DEFAULT_TIMEOUT_MS;
    uint32_t max = p->max_timeout_ms ? p->max_timeout_ms : GW_FETCH_DEFAULT_MAX_TIMEOUT_MS;
    if (max < base)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "fetch: max_timeout_ms (%u) is below timeout_ms (%u)", max, base);
    return FERRY_OK;
}

static uint64_t deadline(const struct gw_fetch *f)
{
    if (!f->link_up || f->end == f->nchunks)
        return GW_FETCH_NO_DEADLINE;
    return f->timer_start + f->timeout_ms;
}

static void no_action(const struct gw_fetch *f, struct gw_fetch_actions *act)
{
    memset(act, 0, sizeof(*act));
    act->deadline_ms = deadline(f);
}

/* Asks for chunks [from, min(end + window, nchunks)). */
static void request_from(struct gw_fetch *f, uint64_t from, struct gw_fetch_actions *act)
{
    uint64_t to = f->end + f->window;
    if (to > f->nchunks)
        to = f->nchunks;
    no_action(f, act);
    if (from >= to)
        return;
    act->send = true;
    memcpy(act->req.sha256, f->sha256, sizeof(act->req.sha256));
    act->req.offset = from * f->chunk;
    act->req.count = (uint32_t)(to - from);
    act->req.chunk = f->chunk;
    f->requested = to;
    f->stats.requests++;
}

enum ferry_err gw_fetch_start(const struct gw_fetch_params *p, uint64_t now_ms, bool link_up,
                              struct gw_fetch **out, struct gw_fetch_actions *act,
                              struct ferry_diag *d)
{
    enum ferry_err err = check_params(p, d);
    if (err != FERRY_OK)
        return err;
    struct gw_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return ferry_fail(d, FERRY_E_NOMEM, "fetch: out of memory");
    memcpy(f->sha256, p->sha256, sizeof(f->sha256));
    f->total = p->total;
    f->chunk = p->chunk;
    f->window = p->window;
    f->nchunks = (p->total + p->chunk - 1) / p->chunk;
    f->end = p->resume == p->total ? f->nchunks : p->resume / p->chunk;
    f->requested = f->end;
    f->link_up = link_up;
    f->base_timeout_ms = p->timeout_ms ? p->timeout_ms : GW_FETCH_DEFAULT_TIMEOUT_MS;
    f->max_timeout_ms = p->max_timeout_ms ? p->max_timeout_ms : GW_FETCH_DEFAULT_MAX_TIMEOUT_MS;
    f->timeout_ms = f->base_timeout_ms;
    f->timer_start = now_ms;
    ferry_prng_seed(&f->prng, p->seed);
    if (link_up)
        request_from(f, f->end, act);
    else
        no_action(f, act);
    *out = f;
    return FERRY_OK;
}

void gw_fetch_free(struct gw_fetch *f)
{
    free(f);
}

static uint64_t chunk_len(const struct gw_fetch *f, uint64_t index)
{
    if (index + 1 < f->nchunks)
        return f->chunk;
    return f->total - index * f->chunk;
}

static enum gw_fetch_verdict classify(struct gw_fetch *f, const struct ferry_chunk *c)
{
    if (memcmp(c->sha256, f->sha256, sizeof(f->sha256)) != 0)
        return GW_FETCH_FOREIGN;
    /* An error chunk may not know the total (the cloud may lack the file):
     * its digest and offset say which request it answers. */
    if (c->kind == FERRY_CHUNK_ERROR)
        return c->offset >= f->end * f->chunk && c->offset < f->requested * f->chunk
                   ? GW_FETCH_ERROR
                   : GW_FETCH_DUPLICATE;
    if (c->total != f->total)
        return GW_FETCH_FOREIGN;
    if (c->kind != FERRY_CHUNK_DATA || c->offset % f->chunk != 0 || c->offset >= f->total)
        return GW_FETCH_INVALID;
    uint64_t index = c->offset / f->chunk;
    if (c->len != chunk_len(f, index))
        return GW_FETCH_INVALID;
    if (index < f->end)
        return GW_FETCH_DUPLICATE;
    return index == f->end ? GW_FETCH_NEXT : GW_FETCH_AHEAD;
}

static void count(struct gw_fetch *f, enum gw_fetch_verdict v)
{
    if (v == GW_FETCH_DUPLICATE)
        f->stats.duplicates++;
    else if (v == GW_FETCH_AHEAD)
        f->stats.out_of_order++;
    else if (v == GW_FETCH_INVALID)
        f->stats.invalid++;
    else if (v == GW_FETCH_ERROR)
        f->stats.errors++;
}

bool gw_fetch_error_busy(const struct ferry_chunk *c)
{
    static const char busy[] = "busy:";
    return c->kind == FERRY_CHUNK_ERROR && c->payload && c->len >= sizeof(busy) - 1 &&
           memcmp(c->payload, busy, sizeof(busy) - 1) == 0;
}

/* The request was answered with an error: nothing of it is coming. Ask
 * again after a short delay that doubles with each error in a row; a busy
 * answer after a delay of its own, with jitter (gw_fetch.h, Busy). */
static void on_error(struct gw_fetch *f, bool busy, uint64_t now_ms, struct gw_fetch_actions *act)
{
    uint64_t delay;
    if (busy) {
        delay = f->busy < GW_FETCH_BUSY_QUICK ? GW_FETCH_BUSY_QUICK_MS : GW_FETCH_BUSY_DELAY_MS;
        for (uint32_t i = GW_FETCH_BUSY_QUICK; i < f->busy && delay < GW_FETCH_BUSY_MAX_DELAY_MS;
             i++)
            delay *= 2;
        if (delay > GW_FETCH_BUSY_MAX_DELAY_MS)
            delay = GW_FETCH_BUSY_MAX_DELAY_MS;
        delay += ferry_prng_next(&f->prng) % (delay / 2 + 1);
        if (delay > f->max_timeout_ms)
            delay = f->max_timeout_ms;
        f->busy++;
        f->stats.busy++;
    } else {
        delay = GW_FETCH_ERROR_DELAY_MS;
        for (uint32_t i = 0; i < f->errors && delay < f->max_timeout_ms; i++)
            delay *= 2;
        if (delay > f->max_timeout_ms)
            delay = f->max_timeout_ms;
        f->errors++;
    }
    f->timeout_ms = (uint32_t)delay;
    f->timer_start = now_ms;
    f->requested = f->end;
    no_action(f, act);
}

enum gw_fetch_verdict gw_fetch_chunk(struct gw_fetch *f, const struct ferry_chunk *c,
                                     uint64_t now_ms, struct gw_fetch_actions *act)
{
    enum gw_fetch_verdict v = classify(f, c);
    if (v != GW_FETCH_FOREIGN && c->kind == FERRY_CHUNK_DATA)
        f->stats.bytes_received += c->len;
    count(f, v);
    if (v == GW_FETCH_ERROR) {
        on_error(f, gw_fetch_error_busy(c), now_ms, act);
        return v;
    }
    if (v != GW_FETCH_NEXT) {
        no_action(f, act);
        return v;
    }
    f->end++;
    f->errors = 0;
    f->busy = 0;
    /* A chunk nobody asked for in this run (an answer to a request from
     * before a restart, or one that arrives while the link is down) can
     * still be the next one; requested never lags behind end. */
    if (f->requested < f->end)
        f->requested = f->end;
    f->stats.bytes_kept += c->len;
    f->timeout_ms = f->base_timeout_ms;
    f->timer_start = now_ms;
    uint64_t outstanding = f->requested - f->end;
    uint64_t half = (f->window + 1) / 2;
    if (f->link_up && outstanding + half <= f->window)
        request_from(f, f->requested, act);
    else
        no_action(f, act);
    return v;
}

void gw_fetch_tick(struct gw_fetch *f, uint64_t now_ms, struct gw_fetch_actions *act)
{
    uint64_t due = deadline(f);
    if (due == GW_FETCH_NO_DEADLINE || now_ms < due) {
        no_action(f, act);
        return;
    }
    f->stats.timeouts++;
    f->timeout_ms = f->timeout_ms > f->max_timeout_ms / 2 ? f->max_timeout_ms : f->timeout_ms * 2;
    f->timer_start = now_ms;
    request_from(f, f->end, act);
}

void gw_fetch_link(struct gw_fetch *f, bool up, uint64_t now_ms, struct gw_fetch_actions *act)
{
    if (up == f->link_up) {
        no_action(f, act);
        return;
    }
    f->link_up = up;
    if (!up) {
        no_action(f, act);
        return;
    }
    f->timeout_ms = f->base_timeout_ms;
    f->timer_start = now_ms;
    request_from(f, f->end, act);
}

bool gw_fetch_done(const struct gw_fetch *f)
{
    return f->end == f->nchunks;
}

bool gw_fetch_failed(const struct gw_fetch *f)
{
    return f->errors >= GW_FETCH_MAX_ERRORS || f->busy >= GW_FETCH_MAX_BUSY;
}

uint64_t gw_fetch_end(const struct gw_fetch *f)
{
    return f->end == f->nchunks ? f->total : f->end * f->chunk;
}

void gw_fetch_stats(const struct gw_fetch *f, struct gw_fetch_stats *out)
{
    *out = f->stats;
}
