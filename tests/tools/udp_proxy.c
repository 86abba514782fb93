/* ferry-udp-proxy: a lossy UDP relay for the integration tests.
 *
 * The kernel here has no netem, so tests that need loss, duplication,
 * reordering and delay between an edge node and its gateway put this proxy
 * between them:
 *
 *   node --> 127.0.0.1:LISTEN [proxy] --upstream socket--> TARGET (gateway)
 *   node <-- 127.0.0.1:LISTEN [proxy] <--upstream socket--  TARGET
 *
 * Each client address gets its own upstream socket, connected to the target,
 * so the target sees one peer per client and its replies route back to the
 * right client. Every datagram, in each direction on its own, is dropped with
 * probability --loss, otherwise sent once more with probability --dup, and
 * each copy is held back by --delay-ms plus a uniform 0..--jitter-ms, plus an
 * extra hold with probability --reorder so that later datagrams overtake it.
 * The decisions come from one seeded PRNG per direction: a run's faults
 * depend only on --seed and the order in which datagrams arrive.
 *
 * --rebind-every N plays a NAT whose mapping is renewed: after every N
 * datagrams a client sends, its upstream socket is replaced by a new one,
 * so the target sees the same client arrive from a new source port (what
 * was sent on the old socket stays sent; answers to it are lost).
 * --max-rebinds M stops after M of them in all (a test that only needs to
 * see the node survive a rebinding, without paying for many).
 *
 * One thread: ferry_loop's epoll, with its timerfd releasing held datagrams.
 * Memory is bounded by --max-queued held datagrams (64 KiB at most each)
 * and --max-clients client addresses; what exceeds either is dropped and
 * counted. SIGTERM or SIGINT
 * print the counters on stdout and exit 0. */
#include "ferry_err.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_opts.h"
#include "ferry_random.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_DATAGRAM 65536
/* Datagrams read per wake-up from one socket, so one busy direction cannot
 * starve the other or the timers. */
#define READ_BURST 64
/* A reordered datagram waits this much beyond the longest ordinary delay. */
#define REORDER_EXTRA_MS 10

enum dir { DIR_UP = 0, DIR_DOWN = 1 }; /* client -> target, target -> client */

struct proxy_cfg {
    uint64_t listen;
    char *listen_addr;
    char *target;
    uint64_t loss, dup, reorder; /* percent */
    uint64_t delay_ms, jitter_ms;
    uint64_t seed;
    uint64_t max_queued, max_clients;
    uint64_t rebind_every;
    uint64_t max_rebinds;
    enum ferry_log_level log_level;
};

#define OPT(n, t, f, mv, h, fl)                                                                    \
    {                                                                                              \
        n, t, offsetof(struct proxy_cfg, f), mv, h, fl                                             \
    }

static const struct ferry_opt proxy_opts[] = {
    OPT("listen", FERRY_OPT_U64, listen, "PORT", "UDP port the clients send to",
        FERRY_OPT_REQUIRED),
    OPT("listen-addr", FERRY_OPT_STR, listen_addr, "ADDR",
        "numeric address to listen on (default 127.0.0.1)", 0),
    OPT("target", FERRY_OPT_STR, target, "HOST:PORT", "where datagrams go ([v6]:port for IPv6)",
        FERRY_OPT_REQUIRED),
    OPT("loss", FERRY_OPT_U64, loss, "PCT", "percent of datagrams dropped (default 0)", 0),
    OPT("dup", FERRY_OPT_U64, dup, "PCT", "percent of datagrams sent twice (default 0)", 0),
    OPT("reorder", FERRY_OPT_U64, reorder, "PCT",
        "percent of datagrams held back past later ones (default 0)", 0),
    OPT("delay-ms", FERRY_OPT_U64, delay_ms, "MS", "delay added to every datagram (default 0)", 0),
    OPT("jitter-ms", FERRY_OPT_U64, jitter_ms, "MS", "uniform random extra delay 0..MS (default 0)",
        0),
    OPT("seed", FERRY_OPT_U64, seed, "N", "PRNG seed (default 1)", 0),
    OPT("max-queued", FERRY_OPT_U64, max_queued, "N",
        "datagrams held at once; more are dropped (default 1024)", 0),
    OPT("max-clients", FERRY_OPT_U64, max_clients, "N",
        "client addresses served; new ones beyond are dropped (default 64)", 0),
    OPT("rebind-every", FERRY_OPT_U64, rebind_every, "N",
        "give a client a new source port towards the target after every N datagrams it sends "
        "(a NAT rebinding; default 0: never)",
        0),
    OPT("max-rebinds", FERRY_OPT_U64, max_rebinds, "M",
        "at most M rebindings in all (default 0: no limit)", 0),
    OPT("log-level", FERRY_OPT_LOGLEVEL, log_level, "LEVEL", "error, warn, info or debug", 0),
};
#define N_OPTS (sizeof(proxy_opts) / sizeof(proxy_opts[0]))

struct counters {
    uint64_t received, sent, lost, duplicated, reordered, overflow, errors;
};

struct client {
    struct proxy *p;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;        /* connected to the target */
    uint64_t sent; /* datagrams from the client, for --rebind-every */
};

/* A datagram waiting for its timer; linked so shutdown can free it. */
struct held {
    struct proxy *p;
    struct client *c;
    enum dir dir;
    struct held *prev, *next;
    size_t len;
    uint8_t data[];
};

struct proxy {
    const struct proxy_cfg *cfg;
    struct ferry_loop *loop;
    int listen_fd;
    struct sockaddr_storage target;
    socklen_t target_len;
    struct client **clients;
    size_t nclients;
    struct held *held;
    size_t nheld;
    struct ferry_prng rng[2]; /* per direction, fully determined by the seed */
    struct counters count[2];
    uint64_t refused_clients;
    uint64_t rebinds;
    uint8_t buf[MAX_DATAGRAM];
};

/* ---- configuration ------------------------------------------------------ */

static enum ferry_err check_cfg(const struct proxy_cfg *cfg, struct ferry_diag *d)
{
    if (cfg->listen < 1 || cfg->listen > 65535)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--listen: must be a port 1..65535");
    if (cfg->loss > 100 || cfg->dup > 100 || cfg->reorder > 100)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--loss, --dup and --reorder: must be 0..100");
    /* An hour is far beyond any test and keeps deadline sums small. */
    if (cfg->delay_ms > 3600000 || cfg->jitter_ms > 3600000)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--delay-ms and --jitter-ms: at most 3600000");
    if (cfg->max_queued < 1 || cfg->max_queued > 1000000)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-queued: must be 1..1000000");
    if (cfg->max_clients < 1 || cfg->max_clients > 4096)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--max-clients: must be 1..4096");
    return FERRY_OK;
}

static enum ferry_err parse_cfg(struct proxy_cfg *cfg, int argc, char **argv, bool *help,
                                struct ferry_diag *d)
{
    cfg->seed = 1;
    cfg->max_queued = 1024;
    cfg->max_clients = 64;
    cfg->log_level = FERRY_LOG_INFO;
    enum ferry_err err = ferry_opts_parse(proxy_opts, N_OPTS, cfg, argc, argv, 1, NULL, help, d);
    if (err != FERRY_OK || *help)
        return err;
    return check_cfg(cfg, d);
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: ferry-udp-proxy --listen PORT --target HOST:PORT [options]\n\n"
                 "Relays UDP datagrams both ways between clients and a target, dropping,\n"
                 "duplicating, reordering and delaying them (a test tool). SIGTERM or\n"
                 "SIGINT print the counters and stop it.\n\n"
                 "Options:\n");
    ferry_opts_usage(out, proxy_opts, N_OPTS);
}

/* A host (name or numeric address) and a port into a socket address. */
static enum ferry_err resolve(const char *what, const char *host, const char *port,
                              struct sockaddr_storage *out, socklen_t *out_len,
                              struct ferry_diag *d)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: cannot resolve '%s' port '%s': %s", what,
                          host, port, gai_strerror(rc));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *out_len = res->ai_addrlen;
    freeaddrinfo(res);
    return FERRY_OK;
}

/* "host:port" or "[v6]:port" into a socket address. */
static enum ferry_err resolve_target(const char *spec, struct sockaddr_storage *out,
                                     socklen_t *out_len, struct ferry_diag *d)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1])
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--target: expected HOST:PORT, got '%s'", spec);
    size_t hlen = (size_t)(colon - spec);
    if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
        spec++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--target: host name too long");
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    return resolve("--target", host, colon + 1, out, out_len, d);
}

/* ---- randomness --------------------------------------------------------- */

static bool chance(struct proxy *p, enum dir dir, uint64_t pct)
{
    return pct > 0 && ferry_prng_next(&p->rng[dir]) % 100 < pct;
}

static uint64_t upto(struct proxy *p, enum dir dir, uint64_t max)
{
    return max ? ferry_prng_next(&p->rng[dir]) % (max + 1) : 0;
}

/* ---- sending ------------------------------------------------------------ */

static void send_now(struct proxy *p, struct client *c, enum dir dir, const uint8_t *data,
                     size_t len)
{
    ssize_t n;
    if (dir == DIR_UP)
        n = send(c->fd, data, len, 0);
    else
        n = sendto(p->listen_fd, data, len, 0, (const struct sockaddr *)&c->addr, c->addrlen);
    if (n == (ssize_t)len) {
        p->count[dir].sent++;
        return;
    }
    /* ECONNREFUSED while the target is down, EAGAIN on a full socket buffer:
     * both are what a lossy link does anyway. */
    p->count[dir].errors++;
    ferry_log_debug("%s: send failed: %s", dir == DIR_UP ? "up" : "down",
                    n < 0 ? strerror(errno) : "short write");
}

static void unlink_held(struct proxy *p, struct held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        p->held = h->next;
    if (h->next)
        h->next->prev = h->prev;
    p->nheld--;
}

static void on_release(void *arg)
{
    struct held *h = arg;
    struct proxy *p = h->p;
    unlink_held(p, h);
    send_now(p, h->c, h->dir, h->data, h->len);
    free(h);
}

static void hold(struct proxy *p, struct client *c, enum dir dir, const uint8_t *data, size_t len,
                 uint64_t delay_ms)
{
    if (p->nheld >= p->cfg->max_queued) {
        p->count[dir].overflow++;
        return;
    }
    struct held *h = malloc(sizeof(*h) + len);
    if (!h) {
        p->count[dir].overflow++;
        return;
    }
    *h = (struct held){.p = p, .c = c, .dir = dir, .next = p->held, .len = len};
    memcpy(h->data, data, len);
    if (!ferry_loop_timer(p->loop, delay_ms, on_release, h)) {
        free(h);
        p->count[dir].overflow++;
        return;
    }
    if (p->held)
        p->held->prev = h;
    p->held = h;
    p->nheld++;
}

/* One copy of a datagram: its delay, and whether it is held back. */
static void forward_copy(struct proxy *p, struct client *c, enum dir dir, const uint8_t *data,
                         size_t len)
{
    const struct proxy_cfg *cfg = p->cfg;
    uint64_t delay = cfg->delay_ms + upto(p, dir, cfg->jitter_ms);
    if (chance(p, dir, cfg->reorder)) {
        p->count[dir].reordered++;
        delay = cfg->delay_ms + cfg->jitter_ms + REORDER_EXTRA_MS + upto(p, dir, REORDER_EXTRA_MS);
    }
    if (delay == 0)
        send_now(p, c, dir, data, len);
    else
        hold(p, c, dir, data, len, delay);
}

static void forward(struct proxy *p, struct client *c, enum dir dir, const uint8_t *data,
                    size_t len)
{
    p->count[dir].received++;
    if (chance(p, dir, p->cfg->loss)) {
        p->count[dir].lost++;
        return;
    }
    bool twice = chance(p, dir, p->cfg->dup);
    forward_copy(p, c, dir, data, len);
    if (twice) {
        p->count[dir].duplicated++;
        forward_copy(p, c, dir, data, len);
    }
}

/* ---- clients ------------------------------------------------------------ */

static void on_upstream(void *arg, uint32_t events)
{
    struct client *c = arg;
    struct proxy *p = c->p;
    (void)events;
    for (int i = 0; i < READ_BURST; i++) {
        ssize_t n = recv(c->fd, p->buf, sizeof(p->buf), 0);
        if (n < 0 && errno == ECONNREFUSED)
            continue; /* an ICMP error from the target; its next datagram may arrive */
        if (n < 0)
            return; /* EAGAIN: drained */
        forward(p, c, DIR_DOWN, p->buf, (size_t)n);
    }
}

static bool same_addr(const struct client *c, const struct sockaddr_storage *a, socklen_t len)
{
    return c->addrlen == len && memcmp(&c->addr, a, len) == 0;
}

static void client_free(struct proxy *p, struct client *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        ferry_loop_del_fd(p->loop, c->fd);
        close(c->fd);
    }
    free(c);
}

static enum ferry_err client_new(struct proxy *p, const struct sockaddr_storage *addr,
                                 socklen_t len, struct client **out, struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    struct client *c = calloc(1, sizeof(*c));
    if (!c)
        return ferry_fail(d, FERRY_E_NOMEM, "client: out of memory");
    c->p = p;
    memcpy(&c->addr, addr, len);
    c->addrlen = len;
    c->fd = socket(p->target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (const struct sockaddr *)&p->target, p->target_len) != 0) {
        err = ferry_fail(d, FERRY_E_IO, "upstream socket: %s", strerror(errno));
        goto out;
    }
    if (ferry_loop_add_fd(p->loop, c->fd, EPOLLIN, on_upstream, c) != FERRY_OK) {
        close(c->fd);
        c->fd = -1;
        err = ferry_fail(d, FERRY_E_IO, "upstream socket: cannot watch it");
    }
out:
    if (err != FERRY_OK)
        client_free(p, c);
    else
        *out = c;
    return err;
}

/* --rebind-every: the client's datagrams go out from a new socket (a new
 * source port) from now on; on failure it keeps the old one. */
static void rebind(struct proxy *p, struct client *c)
{
    int fd = socket(p->target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&p->target, p->target_len) != 0 ||
        ferry_loop_add_fd(p->loop, fd, EPOLLIN, on_upstream, c) != FERRY_OK) {
        ferry_log_warn("rebind: no new upstream socket (%s); keeping the old one", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    ferry_loop_del_fd(p->loop, c->fd);
    close(c->fd);
    c->fd = fd;
    p->rebinds++;
    ferry_log_info("rebind %" PRIu64 ": a client's datagrams now leave from a new port",
                   p->rebinds);
}

/* The client for a source address, made on its first datagram; NULL when
 * the table is full or the socket cannot be made (the datagram is dropped). */
static struct client *client_for(struct proxy *p, const struct sockaddr_storage *addr,
                                 socklen_t len)
{
    for (size_t i = 0; i < p->nclients; i++)
        if (same_addr(p->clients[i], addr, len))
            return p->clients[i];
    if (p->nclients >= p->cfg->max_clients) {
        p->refused_clients++;
        return NULL;
    }
    struct ferry_diag d = {{0}};
    struct client *c = NULL;
    enum ferry_err err = client_new(p, addr, len, &c, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("new client dropped: %s", ferry_diag_str(&d, err));
        p->refused_clients++;
        return NULL;
    }
    p->clients[p->nclients++] = c;
    ferry_log_debug("client %zu: new upstream socket", p->nclients);
    return c;
}

static void on_listen(void *arg, uint32_t events)
{
    struct proxy *p = arg;
    (void)events;
    for (int i = 0; i < READ_BURST; i++) {
        struct sockaddr_storage from;
        socklen_t len = sizeof(from);
        ssize_t n =
            recvfrom(p->listen_fd, p->buf, sizeof(p->buf), 0, (struct sockaddr *)&from, &len);
        if (n < 0)
            return;
        struct client *c = client_for(p, &from, len);
        if (c && p->cfg->rebind_every && ++c->sent % p->cfg->rebind_every == 0 &&
            (!p->cfg->max_rebinds || p->rebinds < p->cfg->max_rebinds))
            rebind(p, c);
        if (c)
            forward(p, c, DIR_UP, p->buf, (size_t)n);
    }
}

/* ---- set-up and teardown ------------------------------------------------ */

static enum ferry_err open_listen(struct proxy *p, struct ferry_diag *d)
{
    struct sockaddr_storage addr;
    socklen_t len;
    char port[8];
    snprintf(port, sizeof(port), "%" PRIu64, p->cfg->listen);
    const char *host = p->cfg->listen_addr ? p->cfg->listen_addr : "127.0.0.1";
    enum ferry_err err = resolve("--listen-addr", host, port, &addr, &len, d);
    if (err != FERRY_OK)
        return err;
    p->listen_fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (const struct sockaddr *)&addr, len) != 0)
        return ferry_fail(d, FERRY_E_IO, "--listen: cannot bind %s port %s: %s", host, port,
                          strerror(errno));
    if (ferry_loop_add_fd(p->loop, p->listen_fd, EPOLLIN, on_listen, p) != FERRY_OK)
        return ferry_fail(d, FERRY_E_IO, "--listen: cannot watch the socket");
    return FERRY_OK;
}

static enum ferry_err proxy_new(const struct proxy_cfg *cfg, struct proxy **out,
                                struct ferry_diag *d)
{
    struct proxy *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    p->cfg = cfg;
    p->listen_fd = -1;
    /* Two streams from one seed: each direction's faults stay the same when
     * only the other direction's traffic changes. */
    ferry_prng_seed(&p->rng[DIR_UP], cfg->seed);
    ferry_prng_seed(&p->rng[DIR_DOWN], cfg->seed ^ UINT64_C(0xD1B54A32D192ED03));
    enum ferry_err err = ferry_loop_new(&p->loop, d);
    if (err == FERRY_OK)
        err = resolve_target(cfg->target, &p->target, &p->target_len, d);
    if (err == FERRY_OK && !(p->clients = calloc(cfg->max_clients, sizeof(*p->clients))))
        err = ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    if (err == FERRY_OK)
        err = open_listen(p, d);
    if (err != FERRY_OK) {
        free(p->clients);
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        ferry_loop_free(p->loop);
        free(p);
        return err;
    }
    *out = p;
    return FERRY_OK;
}

static void proxy_free(struct proxy *p)
{
    if (!p)
        return;
    while (p->held) {
        struct held *h = p->held;
        p->held = h->next;
        free(h);
    }
    for (size_t i = 0; i < p->nclients; i++)
        client_free(p, p->clients[i]);
    free(p->clients);
    close(p->listen_fd);
    ferry_loop_free(p->loop); /* also drops the timers of the held datagrams */
    free(p);
}

static void print_counters(const struct proxy *p)
{
    static const char *const names[] = {"up", "down"};
    for (int dir = DIR_UP; dir <= DIR_DOWN; dir++) {
        const struct counters *k = &p->count[dir];
        printf("%s: received %" PRIu64 " sent %" PRIu64 " lost %" PRIu64 " duplicated %" PRIu64
               " reordered %" PRIu64 " overflow %" PRIu64 " errors %" PRIu64 "\n",
               names[dir], k->received, k->sent, k->lost, k->duplicated, k->reordered, k->overflow,
               k->errors);
    }
    printf("clients: %zu served, %" PRIu64 " datagrams from refused clients, %zu still held\n",
           p->nclients, p->refused_clients, p->nheld);
    printf("rebinds: %" PRIu64 "\n", p->rebinds);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct proxy_cfg cfg = {0};
    struct ferry_diag d = {{0}};
    bool help = false;
    enum ferry_err err = parse_cfg(&cfg, argc, argv, &help, &d);
    if (help || err != FERRY_OK) {
        if (help)
            usage(stdout);
        else
            fprintf(stderr, "ferry-udp-proxy: %s\n", ferry_diag_str(&d, err));
        ferry_opts_free(proxy_opts, N_OPTS, &cfg);
        return help ? 0 : 2;
    }
    ferry_log_init("ferry-udp-proxy", cfg.log_level);
    struct proxy *p = NULL;
    err = proxy_new(&cfg, &p, &d);
    if (err != FERRY_OK || !p) { /* !p: for GCC, which cannot see that OK sets it */
        ferry_log_err("%s", ferry_diag_str(&d, err));
        ferry_opts_free(proxy_opts, N_OPTS, &cfg);
        return 1;
    }
    ferry_log_info("relaying port %" PRIu64 " <-> %s: loss %" PRIu64 "%% dup %" PRIu64
                   "%% reorder %" PRIu64 "%% delay %" PRIu64 "+0..%" PRIu64 " ms seed %" PRIu64,
                   cfg.listen, cfg.target, cfg.loss, cfg.dup, cfg.reorder, cfg.delay_ms,
                   cfg.jitter_ms, cfg.seed);
    int sig = ferry_loop_run(p->loop);
    ferry_log_info("stopping (signal %d)", sig);
    print_counters(p);
    proxy_free(p);
    ferry_opts_free(proxy_opts, N_OPTS, &cfg);
    return 0;
}
