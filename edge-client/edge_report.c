#include "edge_report.h"

#include "edge_nodecfg.h"
#include "ferry_backoff.h"
#include "ferry_config_report.h"
#include "ferry_crc32.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_random.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000

struct edge_report {
    struct ferry_loop *loop;
    struct edge_coap *coap;
    char node[FERRY_ID_MAX + 1];
    char path[FERRY_CONFIG_PATH_MAX + 1];
    struct ferry_backoff backoff;
    struct ferry_prng rng;
    uint64_t timer;
    bool out;      /* a report waits for its answer */
    bool accepted; /* the gateway took one in this process */
    uint32_t accepted_crc;
    uint32_t sent_crc; /* of the report out */
    uint32_t refused_crc;
    bool refused;
    bool last_healthy;
    bool warned; /* about a damaged or oversized file */
};

static void retry(void *arg)
{
    struct edge_report *r = arg;
    r->timer = 0;
    edge_report_poke(r, r->last_healthy);
}

static void later(struct edge_report *r)
{
    uint64_t delay = ferry_backoff_next(&r->backoff, (uint32_t)(ferry_prng_next(&r->rng) >> 32));
    if (!r->timer)
        r->timer = ferry_loop_timer(r->loop, delay, retry, r);
}

/* The whole file when it is a valid properties file; false otherwise. */
static bool read_whole(struct edge_report *r, char *out, size_t cap)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_read_file(r->path, cap - 1, &buf, &len, &d);
    struct edge_nodecfg *nc = NULL;
    if (err == FERRY_OK)
        err = edge_nodecfg_parse((const char *)buf, len, &nc, &d);
    edge_nodecfg_free(nc);
    if (err == FERRY_OK) {
        memcpy(out, buf, len);
        out[len] = '\0';
    }
    free(buf);
    if (err != FERRY_OK && !r->warned) {
        ferry_log_warn("configuration report: %s not sent: %s", r->path, ferry_diag_str(&d, err));
        r->warned = true;
    }
    return err == FERRY_OK;
}

void edge_report_poke(struct edge_report *r, bool healthy)
{
    if (!r)
        return;
    r->last_healthy = healthy;
    if (!r->coap || r->out || r->timer)
        return;
    struct ferry_config_report rep;
    memset(&rep, 0, sizeof(rep));
    if (!read_whole(r, rep.properties, sizeof(rep.properties)))
        return;
    /* Seeded with the verdict: the same file is news once it turns healthy. */
    uint32_t crc = ferry_crc32(healthy, rep.properties, strlen(rep.properties));
    if ((r->accepted && crc == r->accepted_crc) || (r->refused && crc == r->refused_crc))
        return;
    snprintf(rep.node, sizeof(rep.node), "%s", r->node);
    snprintf(rep.path, sizeof(rep.path), "%s", r->path);
    rep.healthy = healthy;
    rep.ts = (int64_t)time(NULL);
    char *json = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_config_report_encode(&rep, &json, &len, &d);
    if (err == FERRY_OK)
        err = edge_coap_post_config(r->coap, json, len, &d);
    free(json);
    if (err != FERRY_OK) {
        if (!r->warned)
            ferry_log_warn("configuration report: %s", d.msg);
        r->warned = true;
        if (err != FERRY_E_TOO_LARGE && err != FERRY_E_INVALID_ARG)
            later(r);
        return;
    }
    r->out = true;
    r->sent_crc = crc;
    ferry_log_debug("configuration report: %s sent (%s)", r->path,
                    healthy ? "healthy" : "not healthy");
}

void edge_report_answer(struct edge_report *r, const struct edge_coap_answer *a)
{
    r->out = false;
    if (a->code == 204) {
        r->accepted = true;
        r->accepted_crc = r->sent_crc;
        r->warned = false;
        ferry_backoff_reset(&r->backoff);
        ferry_log_info("configuration report: stored upstream");
        edge_report_poke(r, r->last_healthy); /* it may have changed meanwhile */
    } else if (a->code >= 400 && a->code < 500) {
        ferry_log_warn("configuration report: the gateway refuses it (%u.%02u)", a->code / 100,
                       a->code % 100);
        r->refused = true;
        r->refused_crc = r->sent_crc;
    } else {
        later(r);
    }
}

enum ferry_err edge_report_new(struct ferry_loop *loop, struct edge_coap *coap, const char *node_id,
                               const char *path, uint64_t seed, struct edge_report **out,
                               struct ferry_diag *d)
{
    if (!path || path[0] != '/' || strlen(path) > FERRY_CONFIG_PATH_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "configuration report: %s must be an absolute path of at most %d bytes",
                          path ? path : "(none)", FERRY_CONFIG_PATH_MAX);
    struct edge_report *r = calloc(1, sizeof(*r));
    if (!r)
        return ferry_fail(d, FERRY_E_NOMEM, "configuration report: out of memory");
    r->loop = loop;
    r->coap = coap;
    snprintf(r->node, sizeof(r->node), "%s", node_id);
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->backoff = (struct ferry_backoff){.min_ms = RETRY_MIN_MS, .max_ms = RETRY_MAX_MS};
    ferry_prng_seed(&r->rng, seed);
    *out = r;
    return FERRY_OK;
}

void edge_report_free(struct edge_report *r)
{
    if (!r)
        return;
    if (r->timer)
        ferry_loop_cancel(r->loop, r->timer);
    free(r);
}
