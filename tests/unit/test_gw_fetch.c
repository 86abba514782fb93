#include "cunit_main.h"

#include "ferry_manifest.h"
#include "gw_fetch.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK     FERRY_STREAM_MIN_CHUNK
#define MAX_QUEUE 4096

/* A simulated cloud and broker: each request puts its chunks, in order, at
 * the back of one FIFO; delivery pops the front. A script decides the fate
 * of the k-th chunk transmitted: '.' delivered, 'D' dropped, '2' delivered
 * twice, 'S' swapped with the next transmission. Beyond the script every
 * transmission is delivered. */
struct sim {
    struct gw_fetch *f;
    struct gw_fetch_params p;
    uint64_t nchunks;
    uint64_t now;
    bool link_up;
    uint64_t queue[MAX_QUEUE];
    size_t qhead, qlen;
    const char *script;
    size_t sent; /* transmissions so far */
    uint64_t deadline;
    uint64_t next_expected; /* index the next GW_FETCH_NEXT must carry */
    unsigned nreq;
    struct ferry_stream_req reqs[256];
};

static void push(struct sim *s, uint64_t index)
{
    CU_ASSERT_FATAL(s->qlen < MAX_QUEUE);
    s->queue[(s->qhead + s->qlen) % MAX_QUEUE] = index;
    s->qlen++;
}

static uint64_t pop(struct sim *s)
{
    uint64_t v = s->queue[s->qhead];
    s->qhead = (s->qhead + 1) % MAX_QUEUE;
    s->qlen--;
    return v;
}

static char fate(struct sim *s, size_t k)
{
    if (!s->script || k >= strlen(s->script))
        return '.';
    return s->script[k];
}

/* The cloud answering one request, with the script applied on the wire. */
static void transmit(struct sim *s, const struct ferry_stream_req *r)
{
    uint64_t first = r->offset / CHUNK;
    for (uint64_t i = first; i < first + r->count; i++) {
        char c = fate(s, s->sent++);
        if (c == 'D')
            continue;
        if (c == 'S' && i + 1 < first + r->count) {
            push(s, i + 1);
            push(s, i);
            s->sent++;
            i++;
            continue;
        }
        push(s, i);
        if (c == '2')
            push(s, i);
    }
}

/* Checks what every action must satisfy, then carries it out. */
static void handle(struct sim *s, const struct gw_fetch_actions *a)
{
    bool done = gw_fetch_done(s->f);
    CU_ASSERT_EQUAL(a->deadline_ms == GW_FETCH_NO_DEADLINE, done || !s->link_up);
    s->deadline = a->deadline_ms;
    if (!a->send)
        return;
    CU_ASSERT(s->link_up);
    CU_ASSERT_FALSE(done);
    CU_ASSERT_EQUAL(memcmp(a->req.sha256, s->p.sha256, FERRY_SHA256_LEN), 0);
    CU_ASSERT_EQUAL(a->req.chunk, CHUNK);
    CU_ASSERT_EQUAL(a->req.offset % CHUNK, 0);
    CU_ASSERT(a->req.count >= 1 && a->req.count <= s->p.window);
    uint64_t first = a->req.offset / CHUNK;
    CU_ASSERT(first + a->req.count <= s->nchunks); /* never beyond total */
    uint64_t end = gw_fetch_end(s->f) / CHUNK;
    CU_ASSERT(first >= end);
    CU_ASSERT(first + a->req.count <= end + s->p.window);
    if (s->nreq < sizeof(s->reqs) / sizeof(s->reqs[0]))
        s->reqs[s->nreq] = a->req;
    s->nreq++;
    transmit(s, &a->req);
}

static void sim_start(struct sim *s, uint64_t total, uint64_t resume, uint32_t window,
                      const char *script)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < FERRY_SHA256_LEN; i++)
        s->p.sha256[i] = (uint8_t)(0xA0 + i);
    s->p.total = total;
    s->p.chunk = CHUNK;
    s->p.resume = resume;
    s->p.window = window;
    s->nchunks = (total + CHUNK - 1) / CHUNK;
    s->next_expected = resume == total ? s->nchunks : resume / CHUNK;
    s->script = script;
    s->link_up = true;
    s->now = 1000;
    struct gw_fetch_actions a;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_fetch_start(&s->p, s->now, true, &s->f, &a, &d), FERRY_OK);
    handle(s, &a);
}

static uint64_t len_of(const struct sim *s, uint64_t index)
{
    return index + 1 < s->nchunks ? CHUNK : s->p.total - index * CHUNK;
}

static struct ferry_chunk chunk_msg(const struct sim *s, uint64_t index)
{
    struct ferry_chunk c = {0};
    c.kind = FERRY_CHUNK_DATA;
    memcpy(c.sha256, s->p.sha256, FERRY_SHA256_LEN);
    c.offset = index * CHUNK;
    c.total = s->p.total;
    c.len = (uint32_t)len_of(s, index);
    return c;
}

static enum gw_fetch_verdict deliver_one(struct sim *s)
{
    uint64_t index = pop(s);
    struct ferry_chunk c = chunk_msg(s, index);
    struct gw_fetch_actions a;
    s->now += 5;
    enum gw_fetch_verdict v = gw_fetch_chunk(s->f, &c, s->now, &a);
    if (v == GW_FETCH_NEXT) {
        /* The prefix only grows, one chunk at a time, in order. */
        CU_ASSERT_EQUAL(index, s->next_expected);
        s->next_expected++;
    }
    CU_ASSERT_EQUAL(gw_fetch_end(s->f),
                    s->next_expected == s->nchunks ? s->p.total : s->next_expected * CHUNK);
    handle(s, &a);
    return v;
}

/* Delivers and ticks until done; false if the machine gets stuck. */
static bool run(struct sim *s, unsigned max_steps)
{
    for (unsigned step = 0; step < max_steps; step++) {
        if (gw_fetch_done(s->f))
            return true;
        if (s->qlen > 0) {
            deliver_one(s);
            continue;
        }
        if (s->deadline == GW_FETCH_NO_DEADLINE)
            return false;
        s->now = s->deadline;
        struct gw_fetch_actions a;
        gw_fetch_tick(s->f, s->now, &a);
        handle(s, &a);
    }
    return gw_fetch_done(s->f);
}

static struct gw_fetch_stats stats_of(const struct sim *s)
{
    struct gw_fetch_stats st;
    gw_fetch_stats(s->f, &st);
    return st;
}

static void clean_run_pipelines_without_waiting(void)
{
    struct sim s;
    uint64_t total = 20 * CHUNK;
    sim_start(&s, total, 0, 8, NULL);
    CU_ASSERT_EQUAL(s.nreq, 1);
    CU_ASSERT_EQUAL(s.reqs[0].offset, 0);
    CU_ASSERT_EQUAL(s.reqs[0].count, 8);
    CU_ASSERT(run(&s, 1000));
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    CU_ASSERT_EQUAL(st.duplicates, 0);
    CU_ASSERT_EQUAL(st.out_of_order, 0);
    CU_ASSERT_EQUAL(st.bytes_received, total);
    CU_ASSERT_EQUAL(st.bytes_kept, total);
    /* Refills of half a window: 8 first, then 4 at a time until 20. */
    CU_ASSERT_EQUAL(s.nreq, 4);
    CU_ASSERT_EQUAL(s.reqs[1].offset, 8 * CHUNK);
    CU_ASSERT_EQUAL(s.reqs[1].count, 4);
    CU_ASSERT(s.now < 1000 + GW_FETCH_DEFAULT_TIMEOUT_MS);
    CU_ASSERT_EQUAL(s.deadline, GW_FETCH_NO_DEADLINE);
    gw_fetch_free(s.f);
}

static void lost_chunk_is_requested_again_after_timeout(void)
{
    struct sim s;
    uint64_t total = 12 * CHUNK;
    sim_start(&s, total, 0, 4, "..D");
    CU_ASSERT(run(&s, 1000));
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.timeouts, 1);
    CU_ASSERT(st.out_of_order >= 1);
    CU_ASSERT_EQUAL(st.bytes_kept, total);
    /* The re-request starts at the lost chunk. */
    bool found = false;
    for (unsigned i = 1; i < s.nreq; i++)
        if (s.reqs[i].offset == 2 * CHUNK && s.reqs[i].count == 4)
            found = true;
    CU_ASSERT(found);
    CU_ASSERT(s.now >= 1000 + GW_FETCH_DEFAULT_TIMEOUT_MS);
    /* What was lost costs at most the window that was in flight. */
    CU_ASSERT(st.bytes_received <= total + 4 * CHUNK);
    gw_fetch_free(s.f);
}

static void lost_windows_back_off_and_recover(void)
{
    struct sim s;
    uint64_t total = 6 * CHUNK;
    /* The first window and the next two re-requests vanish entirely. */
    sim_start(&s, total, 0, 4, "DDDDDDDDDDDD");
    CU_ASSERT(run(&s, 1000));
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.timeouts, 3);
    CU_ASSERT_EQUAL(s.reqs[1].offset, 0);
    CU_ASSERT_EQUAL(s.reqs[1].count, 4);
    /* 3 s, then 6 s, then 12 s of silence before each re-request. */
    CU_ASSERT(s.now >= 1000 + 3000 + 6000 + 12000);
    CU_ASSERT(s.now < 1000 + 3000 + 6000 + 12000 + 1000);
    CU_ASSERT_EQUAL(st.bytes_kept, total);
    gw_fetch_free(s.f);
}

static void duplicates_are_counted_and_dropped(void)
{
    struct sim s;
    uint64_t total = 10 * CHUNK;
    sim_start(&s, total, 0, 4, ".2..2....2");
    CU_ASSERT(run(&s, 1000));
    /* The last chunk's second copy arrives after the end: still dropped. */
    CU_ASSERT_EQUAL(s.qlen, 1);
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_DUPLICATE);
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.duplicates, 3);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    CU_ASSERT_EQUAL(st.bytes_kept, total);
    CU_ASSERT_EQUAL(st.bytes_received, total + 3 * CHUNK);
    gw_fetch_free(s.f);
}

static void reordering_within_a_window_keeps_the_prefix_in_order(void)
{
    struct sim s;
    uint64_t total = 10 * CHUNK;
    sim_start(&s, total, 0, 4, ".S");
    /* Chunk 2 arrives before chunk 1: dropped as out of order. */
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_NEXT);
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_AHEAD);
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_NEXT);
    CU_ASSERT_EQUAL(gw_fetch_end(s.f), 2 * CHUNK);
    CU_ASSERT(run(&s, 1000));
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT(st.out_of_order >= 1);
    CU_ASSERT_EQUAL(st.bytes_kept, total);
    gw_fetch_free(s.f);
}

static void link_flaps_pause_and_resume_from_the_end(void)
{
    struct sim s;
    uint64_t total = 16 * CHUNK;
    sim_start(&s, total, 0, 4, NULL);
    deliver_one(&s);
    deliver_one(&s);
    deliver_one(&s);
    struct gw_fetch_actions a;

    /* Going down: what was in flight is lost, nothing is asked for and no
     * timer runs, however long the outage. */
    s.link_up = false;
    s.qlen = 0;
    gw_fetch_link(s.f, false, s.now, &a);
    handle(&s, &a);
    CU_ASSERT_FALSE(a.send);
    gw_fetch_link(s.f, false, s.now + 10, &a);
    CU_ASSERT_FALSE(a.send);
    s.now += 600000;
    gw_fetch_tick(s.f, s.now, &a);
    handle(&s, &a);
    CU_ASSERT_FALSE(a.send);

    /* Coming up: at once from the end, with a fresh timeout. */
    unsigned before = s.nreq;
    s.link_up = true;
    gw_fetch_link(s.f, true, s.now, &a);
    handle(&s, &a);
    CU_ASSERT_TRUE(a.send);
    CU_ASSERT_EQUAL(s.nreq, before + 1);
    CU_ASSERT_EQUAL(a.req.offset, 3 * CHUNK);
    CU_ASSERT_EQUAL(a.deadline_ms, s.now + GW_FETCH_DEFAULT_TIMEOUT_MS);
    gw_fetch_link(s.f, true, s.now, &a);
    CU_ASSERT_FALSE(a.send);

    /* A second flap in the middle of the next window. */
    deliver_one(&s);
    s.link_up = false;
    s.qlen = 0;
    gw_fetch_link(s.f, false, s.now, &a);
    handle(&s, &a);
    s.link_up = true;
    gw_fetch_link(s.f, true, s.now + 50, &a);
    handle(&s, &a);
    CU_ASSERT_EQUAL(a.req.offset, 4 * CHUNK);
    CU_ASSERT(run(&s, 1000));
    CU_ASSERT_EQUAL(stats_of(&s).timeouts, 0);
    gw_fetch_free(s.f);
}

static void chunk_arriving_while_down_is_kept_but_not_followed_up(void)
{
    struct sim s;
    sim_start(&s, 8 * CHUNK, 0, 2, NULL);
    struct gw_fetch_actions a;
    s.link_up = false;
    gw_fetch_link(s.f, false, s.now, &a);
    handle(&s, &a);
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_NEXT);
    CU_ASSERT_EQUAL(s.nreq, 1);
    s.link_up = true;
    gw_fetch_link(s.f, true, s.now, &a);
    handle(&s, &a);
    CU_ASSERT_EQUAL(a.req.offset, 1 * CHUNK);
    s.qlen = 0; /* the old copy of chunk 1 was lost with the link */
    transmit(&s, &a.req);
    CU_ASSERT(run(&s, 1000));
    gw_fetch_free(s.f);
}

static void resume_from_the_middle_fetches_only_the_rest(void)
{
    struct sim s;
    uint64_t total = 10 * CHUNK + 123;
    sim_start(&s, total, 6 * CHUNK, 4, NULL);
    CU_ASSERT_EQUAL(s.reqs[0].offset, 6 * CHUNK);
    CU_ASSERT_EQUAL(s.reqs[0].count, 4);
    CU_ASSERT(run(&s, 1000));
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.bytes_received, total - 6 * CHUNK);
    CU_ASSERT_EQUAL(st.bytes_kept, total - 6 * CHUNK);
    gw_fetch_free(s.f);
}

static void resume_at_total_is_already_done(void)
{
    struct sim s;
    sim_start(&s, 3 * CHUNK + 1, 3 * CHUNK + 1, 4, NULL);
    CU_ASSERT(gw_fetch_done(s.f));
    CU_ASSERT_EQUAL(s.nreq, 0);
    CU_ASSERT_EQUAL(s.deadline, GW_FETCH_NO_DEADLINE);
    CU_ASSERT_EQUAL(gw_fetch_end(s.f), 3 * CHUNK + 1);
    gw_fetch_free(s.f);
}

static void check_size(uint64_t total, uint32_t window)
{
    struct sim s;
    sim_start(&s, total, 0, window, "..D.");
    CU_ASSERT(run(&s, 1000));
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.bytes_kept, total);
    CU_ASSERT_EQUAL(gw_fetch_end(s.f), total);
    const struct ferry_stream_req *last = &s.reqs[s.nreq - 1];
    CU_ASSERT(last->offset + (uint64_t)(last->count - 1) * CHUNK < total);
    gw_fetch_free(s.f);
}

static void tiny_and_boundary_sizes_never_ask_beyond_total(void)
{
    uint64_t sizes[] = {1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        check_size(sizes[i], 4);
        check_size(sizes[i], 1);
    }
    struct sim s;
    sim_start(&s, 1, 0, 8, NULL);
    CU_ASSERT_EQUAL(s.reqs[0].count, 1);
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_NEXT);
    CU_ASSERT(gw_fetch_done(s.f));
    gw_fetch_free(s.f);
}

static void window_of_one_is_stop_and_wait(void)
{
    struct sim s;
    uint64_t total = 6 * CHUNK;
    sim_start(&s, total, 0, 1, "...D");
    CU_ASSERT(run(&s, 1000));
    for (unsigned i = 0; i < s.nreq; i++)
        CU_ASSERT_EQUAL(s.reqs[i].count, 1);
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.timeouts, 1);
    CU_ASSERT_EQUAL(st.bytes_received, total);
    CU_ASSERT_EQUAL(s.nreq, 7);
    gw_fetch_free(s.f);
}

static void timeout_doubles_up_to_the_cap_and_resets_on_progress(void)
{
    struct sim s;
    sim_start(&s, 10 * CHUNK, 0, 4, NULL);
    s.qlen = 0; /* everything lost */
    uint64_t expect[] = {6000, 12000, 24000, 30000, 30000};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        uint64_t start = s.now;
        CU_ASSERT_EQUAL(s.deadline, start + (i == 0 ? 3000 : expect[i - 1]));
        struct gw_fetch_actions a;
        gw_fetch_tick(s.f, s.deadline - 1, &a); /* early: nothing */
        CU_ASSERT_FALSE(a.send);
        s.now = s.deadline;
        gw_fetch_tick(s.f, s.now, &a);
        CU_ASSERT_TRUE(a.send);
        CU_ASSERT_EQUAL(a.req.offset, 0);
        CU_ASSERT_EQUAL(a.deadline_ms, s.now + expect[i]);
        s.deadline = a.deadline_ms;
    }
    transmit(&s, &s.reqs[0]);
    deliver_one(&s);
    CU_ASSERT_EQUAL(s.deadline, s.now + GW_FETCH_DEFAULT_TIMEOUT_MS);
    gw_fetch_free(s.f);
}

static void foreign_and_invalid_chunks_change_nothing(void)
{
    struct sim s;
    sim_start(&s, 4 * CHUNK + 10, 0, 4, NULL);
    struct gw_fetch_actions a;
    struct ferry_chunk c = chunk_msg(&s, 0);
    c.sha256[0] ^= 1;
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_FOREIGN);
    c = chunk_msg(&s, 0);
    c.total++;
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_FOREIGN);
    c = chunk_msg(&s, 0);
    c.len = CHUNK - 1;
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_INVALID);
    c = chunk_msg(&s, 0);
    c.offset = 1;
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_INVALID);
    c = chunk_msg(&s, 4);
    c.len = CHUNK; /* the last chunk is 10 bytes long */
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_INVALID);
    CU_ASSERT_FALSE(a.send);
    CU_ASSERT_EQUAL(gw_fetch_end(s.f), 0);
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.invalid, 3);
    CU_ASSERT_EQUAL(st.bytes_kept, 0);
    CU_ASSERT(run(&s, 1000));
    gw_fetch_free(s.f);
}

static struct ferry_chunk error_msg(const struct sim *s, uint64_t index)
{
    struct ferry_chunk c = chunk_msg(s, index);
    c.kind = FERRY_CHUNK_ERROR;
    c.total = 0; /* the cloud that lacks the file does not know its size */
    c.len = 9;
    return c;
}

/* An error chunk used to end the fetch and hold the artifact back for a
 * back-off that grew to 10 minutes. It is an answer now: the range is asked
 * for again after half a second, then one, two... never longer than a lost
 * chunk's timeout; a chunk resets it; only errors that go on fail it. */
static void error_chunk_is_asked_again_soon(void)
{
    struct sim s;
    sim_start(&s, 40 * CHUNK, 0, 8, NULL);
    s.qlen = 0; /* the cloud answers with errors instead */
    struct gw_fetch_actions a;
    uint64_t expect[] = {500, 1000, 2000, 4000};
    for (size_t i = 0; i < 4; i++) {
        struct ferry_chunk c = error_msg(&s, 0);
        s.now += 10;
        CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_ERROR);
        CU_ASSERT_FALSE(a.send);
        CU_ASSERT_EQUAL(a.deadline_ms, s.now + expect[i]);
        CU_ASSERT_FALSE(gw_fetch_failed(s.f));
        s.now = a.deadline_ms;
        gw_fetch_tick(s.f, s.now, &a);
        CU_ASSERT_TRUE_FATAL(a.send);
        CU_ASSERT_EQUAL(a.req.offset, 0);
        CU_ASSERT_EQUAL(a.req.count, 8);
    }
    /* An error for a range no longer outstanding (given up on after the
     * last error, or asked for by a request before it) is stale: it
     * neither counts nor delays. */
    struct ferry_chunk stale = error_msg(&s, 8);
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &stale, s.now, &a), GW_FETCH_DUPLICATE);
    /* The file is there now: a chunk resets the errors. */
    transmit(&s, &s.reqs[s.nreq - 1]);
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_NEXT);
    stale = error_msg(&s, 0);
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &stale, s.now, &a), GW_FETCH_DUPLICATE);
    s.qlen = 0;
    s.now = s.deadline;
    gw_fetch_tick(s.f, s.now, &a);
    CU_ASSERT_TRUE_FATAL(a.send);
    CU_ASSERT_EQUAL(a.req.offset, CHUNK);
    for (int i = 0; i < GW_FETCH_MAX_ERRORS; i++) {
        struct ferry_chunk c = error_msg(&s, 1);
        s.now += 10;
        CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_ERROR);
        CU_ASSERT(a.deadline_ms - s.now <= GW_FETCH_DEFAULT_MAX_TIMEOUT_MS);
        CU_ASSERT_EQUAL(gw_fetch_failed(s.f), i == GW_FETCH_MAX_ERRORS - 1);
        s.now = a.deadline_ms;
        gw_fetch_tick(s.f, s.now, &a);
    }
    CU_ASSERT_EQUAL(stats_of(&s).errors, 4 + GW_FETCH_MAX_ERRORS);
    /* An error for another artifact is none of its business. */
    struct ferry_chunk other = error_msg(&s, 1);
    other.sha256[0] ^= 1;
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &other, s.now, &a), GW_FETCH_FOREIGN);
    gw_fetch_free(s.f);
}

static struct ferry_chunk busy_msg(const struct sim *s, uint64_t index)
{
    static const char text[] = "busy: instance b lacks artifact a0a1a2a3...; ask again";
    struct ferry_chunk c = error_msg(s, index);
    c.payload = (const uint8_t *)text;
    c.len = sizeof(text) - 1;
    return c;
}

/* The delays one gateway waits after n busy answers in a row for chunk 0. */
static void busy_delays(uint64_t seed, uint64_t *delays, size_t n)
{
    struct sim s;
    sim_start(&s, 8 * CHUNK, 0, 4, NULL);
    gw_fetch_free(s.f);
    s.p.seed = seed;
    struct gw_fetch_actions a;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_fetch_start(&s.p, s.now, true, &s.f, &a, &d), FERRY_OK);
    for (size_t i = 0; i < n; i++) {
        struct ferry_chunk c = busy_msg(&s, 0);
        CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_ERROR);
        CU_ASSERT_FALSE(a.send);
        delays[i] = a.deadline_ms - s.now;
        /* Never final while busy answers go on for less than MAX_BUSY. */
        CU_ASSERT_EQUAL(gw_fetch_failed(s.f), i + 1 >= GW_FETCH_MAX_BUSY);
        s.now = a.deadline_ms;
        gw_fetch_tick(s.f, s.now, &a);
        CU_ASSERT_TRUE_FATAL(a.send);
        CU_ASSERT_EQUAL(a.req.offset, 0);
    }
    struct gw_fetch_stats st;
    gw_fetch_stats(s.f, &st);
    CU_ASSERT_EQUAL(st.busy, n);
    CU_ASSERT_EQUAL(st.errors, n);
    gw_fetch_free(s.f);
}

/* A serve instance that lacks the artifact answers "busy" (PROTOCOL.md,
 * Artifact stream): the gateway asks again within seconds, with jitter so
 * gateways told at once do not return at once, and keeps asking for
 * minutes, far beyond the five errors that end a fetch otherwise. */
static void busy_answer_is_retried_soon_with_jitter(void)
{
    uint64_t a[GW_FETCH_MAX_BUSY], b[GW_FETCH_MAX_BUSY];
    busy_delays(1, a, GW_FETCH_MAX_BUSY);
    busy_delays(2, b, GW_FETCH_MAX_BUSY);
    uint64_t base = GW_FETCH_BUSY_DELAY_MS, total = 0;
    bool differ = false;
    for (size_t i = 0; i < GW_FETCH_MAX_BUSY; i++) {
        /* The first few at once (another instance likely takes them), then
         * 1 s doubling to the cap; each plus up to half again. */
        uint64_t want = i < GW_FETCH_BUSY_QUICK ? GW_FETCH_BUSY_QUICK_MS : base;
        CU_ASSERT(a[i] >= want && a[i] <= want + want / 2);
        CU_ASSERT(b[i] >= want && b[i] <= want + want / 2);
        differ |= a[i] != b[i];
        total += a[i];
        if (i >= GW_FETCH_BUSY_QUICK && base < GW_FETCH_BUSY_MAX_DELAY_MS)
            base *= 2;
    }
    CU_ASSERT_TRUE(differ);
    /* The first retry within 0.4 s; all of them over minutes, not hours. */
    CU_ASSERT(a[0] <= 375);
    CU_ASSERT(total >= 120000 && total <= 300000);
    /* The same seed replays the same delays. */
    uint64_t again[4];
    busy_delays(1, again, 4);
    CU_ASSERT_EQUAL(memcmp(again, a, sizeof(again)), 0);
}

/* Busy answers and other errors count apart; a chunk resets both. */
static void busy_and_errors_count_apart(void)
{
    struct sim s;
    sim_start(&s, 8 * CHUNK, 0, 4, NULL);
    s.qlen = 0;
    struct gw_fetch_actions a;
    for (int i = 0; i < GW_FETCH_MAX_ERRORS - 1; i++) {
        struct ferry_chunk c = error_msg(&s, 0);
        CU_ASSERT_FALSE(gw_fetch_error_busy(&c));
        CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_ERROR);
        s.now = a.deadline_ms;
        gw_fetch_tick(s.f, s.now, &a);
        struct ferry_chunk bz = busy_msg(&s, 0);
        CU_ASSERT_TRUE(gw_fetch_error_busy(&bz));
        CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &bz, s.now, &a), GW_FETCH_ERROR);
        CU_ASSERT_FALSE(gw_fetch_failed(s.f));
        s.now = a.deadline_ms;
        gw_fetch_tick(s.f, s.now, &a);
    }
    /* The instance that has the file answers: progress forgets both. */
    transmit(&s, &s.reqs[s.nreq - 1]);
    CU_ASSERT_EQUAL(deliver_one(&s), GW_FETCH_NEXT);
    s.qlen = 0;
    s.now = s.deadline;
    gw_fetch_tick(s.f, s.now, &a);
    CU_ASSERT_TRUE_FATAL(a.send);
    struct ferry_chunk c = busy_msg(&s, 1);
    CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_ERROR);
    CU_ASSERT(a.deadline_ms - s.now <= GW_FETCH_BUSY_QUICK_MS + GW_FETCH_BUSY_QUICK_MS / 2);
    CU_ASSERT_FALSE(gw_fetch_failed(s.f));
    /* A data chunk is never busy, whatever its bytes. */
    struct ferry_chunk data = chunk_msg(&s, 1);
    data.payload = (const uint8_t *)"busy: data";
    data.len = 10;
    CU_ASSERT_FALSE(gw_fetch_error_busy(&data));
    gw_fetch_free(s.f);
}

/* Many errors in a row never wait longer than the timeout's cap. */
static void error_delay_is_capped(void)
{
    struct sim s;
    sim_start(&s, 4 * CHUNK, 0, 4, NULL);
    s.qlen = 0;
    struct gw_fetch_actions a;
    for (int i = 0; i < 12; i++) {
        struct ferry_chunk c = error_msg(&s, 0);
        CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_ERROR);
        CU_ASSERT(a.deadline_ms - s.now <= GW_FETCH_DEFAULT_MAX_TIMEOUT_MS);
        /* Further errors of the same round are stale. */
        CU_ASSERT_EQUAL(gw_fetch_chunk(s.f, &c, s.now, &a), GW_FETCH_DUPLICATE);
        if (i < 11) {
            s.now += GW_FETCH_DEFAULT_MAX_TIMEOUT_MS;
            gw_fetch_tick(s.f, s.now, &a);
            CU_ASSERT_TRUE(a.send);
        }
    }
    CU_ASSERT_EQUAL(a.deadline_ms - s.now, GW_FETCH_DEFAULT_MAX_TIMEOUT_MS);
    gw_fetch_free(s.f);
}

static void bad_parameters_are_refused_by_name(void)
{
    struct gw_fetch_params good = {.total = 100, .chunk = CHUNK, .resume = 0, .window = 4};
    struct {
        struct gw_fetch_params p;
        const char *field;
    } cases[] = {
        {good, "total"},  {good, "total"},  {good, "chunk"},
        {good, "chunk"},  {good, "resume"}, {good, "resume"},
        {good, "window"}, {good, "window"}, {good, "max_timeout_ms"},
    };
    cases[0].p.total = 0;
    cases[1].p.total = FERRY_ARTIFACT_MAX_SIZE + 1;
    cases[2].p.chunk = FERRY_STREAM_MIN_CHUNK - 1;
    cases[3].p.chunk = FERRY_STREAM_MAX_CHUNK + 1;
    cases[4].p.resume = 101;
    cases[5].p.total = 3 * CHUNK;
    cases[5].p.resume = CHUNK + 1;
    cases[6].p.window = 0;
    cases[7].p.window = FERRY_STREAM_MAX_WINDOW + 1;
    cases[8].p.timeout_ms = 5000;
    cases[8].p.max_timeout_ms = 4000;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_fetch *f = NULL;
        struct gw_fetch_actions a;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(gw_fetch_start(&cases[i].p, 0, true, &f, &a, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT_PTR_NULL(f);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].field));
    }
    struct gw_fetch *f = NULL;
    struct gw_fetch_actions a;
    CU_ASSERT_EQUAL(gw_fetch_start(&good, 0, false, &f, &a, NULL), FERRY_OK);
    CU_ASSERT_FALSE(a.send);
    CU_ASSERT_EQUAL(a.deadline_ms, GW_FETCH_NO_DEADLINE);
    gw_fetch_free(f);
    gw_fetch_free(NULL);
}

/* A long lossy run: whatever the script, the prefix is complete and in
 * order, and every request respects the window (checked in handle()). */
static void random_loss_duplication_and_reordering_converge(void)
{
    static char script[4096];
    unsigned seed = 12345;
    const char fates[] = "....................DDS2";
    for (size_t i = 0; i + 1 < sizeof(script); i++) {
        seed = seed * 1103515245u + 12345u;
        script[i] = fates[(seed >> 16) % (sizeof(fates) - 1)];
    }
    struct sim s;
    uint64_t total = 200 * CHUNK + 7;
    sim_start(&s, total, 0, 16, script);
    CU_ASSERT(run(&s, 100000));
    struct gw_fetch_stats st = stats_of(&s);
    CU_ASSERT_EQUAL(st.bytes_kept, total);
    CU_ASSERT(st.duplicates > 0);
    CU_ASSERT(st.out_of_order > 0);
    CU_ASSERT(st.timeouts > 0);
    gw_fetch_free(s.f);
}

const char *const ferry_suite_name = "gw_fetch";
const struct ferry_test_case ferry_tests[] = {
    {"clean_run_pipelines_without_waiting", clean_run_pipelines_without_waiting},
    {"lost_chunk_is_requested_again_after_timeout", lost_chunk_is_requested_again_after_timeout},
    {"lost_windows_back_off_and_recover", lost_windows_back_off_and_recover},
    {"duplicates_are_counted_and_dropped", duplicates_are_counted_and_dropped},
    {"reordering_within_a_window_keeps_the_prefix_in_order",
     reordering_within_a_window_keeps_the_prefix_in_order},
    {"link_flaps_pause_and_resume_from_the_end", link_flaps_pause_and_resume_from_the_end},
    {"chunk_arriving_while_down_is_kept_but_not_followed_up",
     chunk_arriving_while_down_is_kept_but_not_followed_up},
    {"resume_from_the_middle_fetches_only_the_rest", resume_from_the_middle_fetches_only_the_rest},
    {"resume_at_total_is_already_done", resume_at_total_is_already_done},
    {"tiny_and_boundary_sizes_never_ask_beyond_total",
     tiny_and_boundary_sizes_never_ask_beyond_total},
    {"window_of_one_is_stop_and_wait", window_of_one_is_stop_and_wait},
    {"timeout_doubles_up_to_the_cap_and_resets_on_progress",
     timeout_doubles_up_to_the_cap_and_resets_on_progress},
    {"foreign_and_invalid_chunks_change_nothing", foreign_and_invalid_chunks_change_nothing},
    {"error chunk is asked again soon", error_chunk_is_asked_again_soon},
    {"error delay is capped", error_delay_is_capped},
    {"busy answer is retried soon with jitter", busy_answer_is_retried_soon_with_jitter},
    {"busy and errors count apart", busy_and_errors_count_apart},
    {"bad_parameters_are_refused_by_name", bad_parameters_are_refused_by_name},
    {"random_loss_duplication_and_reordering_converge",
     random_loss_duplication_and_reordering_converge},
    {NULL, NULL},
};
