/* The gateway's CoAP server, for real: libcoap listening on 127.0.0.1 in this
 * process, driven by a ferry_loop, with fake hooks serving a 200 KiB and a
 * 600-byte artifact from memory. Two kinds of peers:
 *   - the stock client (coap-client-notls / coap-client-openssl from
 *     libcoap3-bin) run as a child process while the loop keeps serving;
 *   - a raw UDP client written here, to send exactly the bytes a test needs
 *     (bogus options, a transfer held half-way) and read every option back. */
#include "cunit_main.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_loop.h"
#include "ferry_status.h"
#include "gw_coap.h"
#include "gw_pacer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ART_SIZE    (200 * 1024)
#define SMALL_SIZE  600
#define PRODUCT     "meter"
#define BUSY_S      8
#define FETCHING_S  20
#define IDLE_MS     300
#define CLIENT_WAIT 60000

/* ---- fake hooks ----------------------------------------------------------- */

static struct fake {
    uint8_t art[ART_SIZE];
    uint8_t sha[FERRY_SHA256_LEN];
    char hex[FERRY_SHA256_HEX_LEN + 1];
    uint8_t small[SMALL_SIZE];
    uint8_t small_sha[FERRY_SHA256_LEN];
    char small_hex[FERRY_SHA256_HEX_LEN + 1];
    uint8_t fetching[FERRY_SHA256_LEN];
    char fetching_hex[FERRY_SHA256_HEX_LEN + 1];
    bool art_gone;
    bool withheld;                                       /* the artifact hook says WITHHELD */
    int complete, released;                              /* mappings given, releases received */
    struct gw_coap_requester manifest_who, artifact_who; /* the last hook calls' */
    int manifest_calls, artifact_calls;
    char envelope[256];       /* "" = no release for PRODUCT */
    char envelope_valve[256]; /* for "valve", never announced */
    char envelope_pump[256];  /* for "pump": "" until its first release */
    int status_calls;
    struct ferry_status last;
    bool identity_null;
    char identity[FERRY_ID_MAX + 1];
    enum ferry_err status_ret;
    const char *status_msg;
} F;

static const uint8_t *fake_manifest(void *arg, const char *product,
                                    const struct gw_coap_requester *who, size_t *len)
{
    (void)arg;
    F.manifest_who = *who;
    F.manifest_calls++;
    const char *env = strcmp(product, PRODUCT) == 0   ? F.envelope
                      : strcmp(product, "valve") == 0 ? F.envelope_valve
                      : strcmp(product, "pump") == 0  ? F.envelope_pump
                                                      : "";
    if (!env[0])
        return NULL;
    *len = strlen(env);
    return (const uint8_t *)env;
}

static enum gw_artifact_state fake_artifact(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                            const struct gw_coap_requester *who)
{
    (void)arg;
    F.artifact_who = *who;
    F.artifact_calls++;
    if (memcmp(sha, F.fetching, FERRY_SHA256_LEN) == 0)
        return GW_ARTIFACT_FETCHING;
    bool big = memcmp(sha, F.sha, FERRY_SHA256_LEN) == 0;
    if (F.art_gone || (!big && memcmp(sha, F.small_sha, FERRY_SHA256_LEN) != 0))
        return GW_ARTIFACT_UNKNOWN;
    return F.withheld ? GW_ARTIFACT_WITHHELD : GW_ARTIFACT_COMPLETE;
}

static enum ferry_err fake_artifact_map(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                        const uint8_t **data, size_t *len, void **ref,
                                        struct ferry_diag *d)
{
    (void)arg;
    bool big = memcmp(sha, F.sha, FERRY_SHA256_LEN) == 0;
    if (!big && memcmp(sha, F.small_sha, FERRY_SHA256_LEN) != 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "map: asked for an artifact never offered");
    F.complete++;
    *data = big ? F.art : F.small;
    *len = big ? sizeof(F.art) : sizeof(F.small);
    *ref = &F;
    return FERRY_OK;
}

static void fake_release(void *arg, void *ref)
{
    (void)arg;
    CU_ASSERT_PTR_EQUAL(ref, &F);
    F.released++;
}

static enum ferry_err fake_status(void *arg, const struct ferry_status *st,
                                  const struct gw_coap_requester *who, struct ferry_diag *d)
{
    (void)arg;
    const char *identity = who->kind == GW_COAP_REQUESTER_PSK ? who->id : NULL;
    F.status_calls++;
    F.last = *st;
    F.identity_null = identity == NULL;
    snprintf(F.identity, sizeof(F.identity), "%s", identity ? identity : "");
    if (F.status_ret != FERRY_OK && F.status_msg)
        return ferry_fail(d, F.status_ret, "%s", F.status_msg);
    return F.status_ret;
}

static void fake_reset(void)
{
    memset(&F, 0, sizeof(F));
    for (size_t i = 0; i < sizeof(F.art); i++)
        F.art[i] = (uint8_t)(i * 131 + (i >> 9));
    ferry_sha256(F.art, sizeof(F.art), F.sha);
    ferry_hex_encode(F.sha, sizeof(F.sha), F.hex);
    for (size_t i = 0; i < sizeof(F.small); i++)
        F.small[i] = (uint8_t)(i * 7 + 3);
    ferry_sha256(F.small, sizeof(F.small), F.small_sha);
    ferry_hex_encode(F.small_sha, sizeof(F.small_sha), F.small_hex);
    memset(F.fetching, 0x5a, sizeof(F.fetching));
    ferry_hex_encode(F.fetching, sizeof(F.fetching), F.fetching_hex);
    snprintf(F.envelope, sizeof(F.envelope), "{\"release\":\"first\"}");
    snprintf(F.envelope_valve, sizeof(F.envelope_valve), "{\"release\":\"valve\"}");
}

/* ---- server fixture and loop driving ------------------------------------- */

static struct ferry_loop *loop;
static struct gw_coap *srv;
static uint16_t port;
/* The next server's idle time; back to IDLE_MS when it stops. */
static uint64_t server_idle_ms = IDLE_MS;
/* The next server's turn length (gw_pacer.h); back to TURN_MS when it stops. */
#define TURN_MS 60000
static uint64_t server_turn_ms = TURN_MS;
/* The next server's link budget (0: none); back to 0 when it stops. */
static uint64_t server_link_rate;
/* The next server's caps on observers and waiting products (0: defaults). */
static uint32_t server_max_observers;
static uint64_t server_waiting_linger_ms;

static void start_server(uint32_t max_downloads, const char *psk_file)
{
    fake_reset();
    CU_ASSERT_FATAL(ferry_loop_new(&loop, NULL) == FERRY_OK);
    struct gw_coap_opts o = {.addr = "127.0.0.1",
                             .max_downloads = max_downloads,
                             .psk_file = psk_file,
                             .idle_ms = server_idle_ms,
                             .turn_ms = server_turn_ms,
                             .link_rate = server_link_rate,
                             .max_observers = server_max_observers,
                             .waiting_linger_ms = server_waiting_linger_ms,
                             .busy_max_age_s = BUSY_S,
                             .fetching_max_age_s = FETCHING_S};
    struct gw_coap_hooks h = {.arg = &F,
                              .manifest = fake_manifest,
                              .artifact = fake_artifact,
                              .artifact_map = fake_artifact_map,
                              .artifact_release = fake_release,
                              .status = fake_status};
    struct ferry_diag d = {{0}};
    enum ferry_err err = FERRY_E_IO;
    /* A port of our own below the ephemeral range (cunit_main.h says why),
     * tried again when another process took it first. */
    for (int i = 0; i < 5 && err == FERRY_E_IO; i++) {
        o.port = ferry_test_udp_port();
        CU_ASSERT_FATAL(o.port != 0);
        err = gw_coap_new(loop, &o, &h, &srv, &d);
    }
    if (err != FERRY_OK)
        fprintf(stderr, "gw_coap_new: %s\n", ferry_diag_str(&d, err));
    CU_ASSERT_FATAL(err == FERRY_OK);
    port = gw_coap_port(srv);
    CU_ASSERT_FATAL(port != 0);
    CU_ASSERT_FATAL(gw_coap_artifact_added(srv, F.sha, sizeof(F.art)) == FERRY_OK);
    CU_ASSERT_FATAL(gw_coap_manifest_changed(srv, PRODUCT) == FERRY_OK);
}

static void stop_server(void)
{
    gw_coap_free(srv);
    srv = NULL;
    server_idle_ms = IDLE_MS;
    server_turn_ms = TURN_MS;
    server_link_rate = 0;
    server_max_observers = 0;
    server_waiting_linger_ms = 0;
    /* Every COMPLETE answer of the hook was released exactly once. */
    CU_ASSERT_EQUAL(F.released, F.complete);
    ferry_loop_free(loop);
    loop = NULL;
}

struct waiter {
    bool (*done)(void *arg);
    void *arg;
    uint64_t deadline;
    bool met;
};

static void poll_tick(void *arg)
{
    struct waiter *w = arg;
    if (w->done(w->arg)) {
        w->met = true;
        ferry_loop_stop(loop);
    } else if (ferry_now_ms() >= w->deadline) {
        ferry_loop_stop(loop);
    } else {
        CU_ASSERT_FATAL(ferry_loop_timer(loop, 5, poll_tick, w) != 0);
    }
}

/* Runs the loop (so the server serves) until done(arg) or timeout_ms. */
static bool run_until(bool (*done)(void *), void *arg, uint64_t timeout_ms)
{
    struct waiter w = {.done = done, .arg = arg, .deadline = ferry_now_ms() + timeout_ms};
    CU_ASSERT_FATAL(ferry_loop_timer(loop, 0, poll_tick, &w) != 0);
    ferry_loop_run(loop);
    return w.met;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static bool all_released(void *arg)
{
    (void)arg;
    return F.released == F.complete && gw_coap_active_downloads(srv) == 0;
}

static bool body_released(void *arg)
{
    (void)arg;
    return F.released == F.complete;
}

/* ---- the stock client as a child process --------------------------------- */

struct child {
    pid_t pid;
    int status;
    bool exited;
};

static bool child_exited(void *arg)
{
    struct child *c = arg;
    if (!c->exited && waitpid(c->pid, &c->status, WNOHANG) == c->pid)
        c->exited = true;
    return c->exited;
}

static char *read_text(const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ferry_read_file(path, 1 << 22, &buf, &len, NULL) != FERRY_OK)
        return strdup("");
    return (char *)buf;
}

/* Runs argv with stdout and stderr in a file while the loop serves; returns
 * what it printed (free it) and sets *code to its exit status (-1 if it had
 * to be killed). */
static char *run_client(const char *const argv[], int *code)
{
    char out[512];
    snprintf(out, sizeof(out), "%s/client.txt", ferry_test_tmpdir());
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* The loop blocked SIGINT/SIGTERM; the client gets a clean mask. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        /* exec wants mutable strings; the child may copy freely. */
        char *args[24];
        size_t n = 0;
        for (; argv[n] && n < 23; n++)
            args[n] = strdup(argv[n]);
        args[n] = NULL;
        execvp(args[0], args);
        _exit(127);
    }
    struct child c = {.pid = pid};
    if (!run_until(child_exited, &c, CLIENT_WAIT)) {
        kill(pid, SIGKILL);
        waitpid(pid, &c.status, 0);
        fprintf(stderr, "%s did not finish in time\n", argv[0]);
        *code = -1;
    } else {
        *code = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -1;
    }
    if (*code == 127)
        fprintf(stderr, "%s is not installed (Debian: libcoap3-bin)\n", argv[0]);
    return read_text(out);
}

static void uri(char *buf, size_t cap, const char *scheme, const char *path)
{
    snprintf(buf, cap, "%s://127.0.0.1:%u/%s", scheme, (unsigned)port, path);
}

static void artifact_path(char *buf, size_t cap, const char *hex)
{
    snprintf(buf, cap, "ferry/artifact/%s", hex);
}

/* coap-client-notls [extra...] URI; returns its output. */
static char *coap_get(const char *path, const char *extra1, const char *extra2)
{
    char u[256];
    uri(u, sizeof(u), "coap", path);
    const char *argv[8] = {"coap-client-notls", "-B", "20"};
    int i = 3;
    if (extra1)
        argv[i++] = extra1;
    if (extra2)
        argv[i++] = extra2;
    argv[i++] = u;
    argv[i] = NULL;
    int code = 0;
    char *out = run_client(argv, &code);
    CU_ASSERT_NOT_EQUAL(code, 127);
    return out;
}

static bool contains(const char *text, const char *what)
{
    if (strstr(text, what))
        return true;
    fprintf(stderr, "expected '%s' in: %.400s\n", what, text);
    return false;
}

/* Downloads the artifact with the stock client and compares every byte. */
static bool stock_download_matches(const char *scheme, const char *const *psk, unsigned block)
{
    char u[256], path[128], out[512], bsz[16];
    artifact_path(path, sizeof(path), F.hex);
    uri(u, sizeof(u), scheme, path);
    snprintf(out, sizeof(out), "%s/artifact.bin", ferry_test_tmpdir());
    snprintf(bsz, sizeof(bsz), "%u", block);
    unlink(out);
    const char *argv[16] = {
        psk ? "coap-client-openssl" : "coap-client-notls", "-B", "30", "-b", bsz, "-o", out};
    int i = 7;
    for (; psk && *psk; psk++)
        argv[i++] = *psk;
    argv[i++] = u;
    argv[i] = NULL;
    int code = 0;
    free(run_client(argv, &code));
    uint8_t *got = NULL;
    size_t len = 0;
    bool same = ferry_read_file(out, 2 * ART_SIZE, &got, &len, NULL) == FERRY_OK &&
                len == ART_SIZE && memcmp(got, F.art, ART_SIZE) == 0;
    if (!same)
        fprintf(stderr, "block %u: client exit %d, %zu bytes\n", block, code, len);
    free(got);
    return same;
}

/* ---- a raw UDP client ------------------------------------------------------ */

struct pdu {
    uint8_t b[2048];
    size_t n;
    unsigned last;
};

static void pdu_start(struct pdu *p, uint8_t code, uint16_t mid)
{
    p->b[0] = 0x44; /* version 1, confirmable, 4-byte token */
    p->b[1] = code;
    p->b[2] = (uint8_t)(mid >> 8);
    p->b[3] = (uint8_t)mid;
    memcpy(p->b + 4, "tokn", 4);
    p->b[6] = (uint8_t)mid;
    p->n = 8;
    p->last = 0;
}

static void put_ext(struct pdu *p, unsigned v, uint8_t *nib)
{
    if (v < 13) {
        *nib = (uint8_t)v;
    } else if (v < 269) {
        *nib = 13;
        p->b[p->n++] = (uint8_t)(v - 13);
    } else {
        *nib = 14;
        p->b[p->n++] = (uint8_t)((v - 269) >> 8);
        p->b[p->n++] = (uint8_t)(v - 269);
    }
}

/* Options must be added in ascending order. */
static void pdu_opt(struct pdu *p, unsigned num, const void *val, size_t len)
{
    size_t head = p->n++;
    uint8_t dn, ln;
    put_ext(p, num - p->last, &dn);
    put_ext(p, (unsigned)len, &ln);
    p->b[head] = (uint8_t)(dn << 4 | ln);
    memcpy(p->b + p->n, val, len);
    p->n += len;
    p->last = num;
}

static void pdu_uint(struct pdu *p, unsigned num, uint32_t v)
{
    uint8_t be[4] = {0};
    size_t n = 0;
    for (int shift = 24; shift >= 0; shift -= 8)
        if (n || (v >> shift) & 0xff)
            be[n++] = (uint8_t)(v >> shift);
    pdu_opt(p, num, be, n);
}

static void pdu_path(struct pdu *p, const char *path)
{
    while (*path) {
        const char *slash = strchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : strlen(path);
        pdu_opt(p, 11, path, n);
        path += n + (slash ? 1 : 0);
    }
}

static void pdu_payload(struct pdu *p, const void *data, size_t len)
{
    p->b[p->n++] = 0xff;
    memcpy(p->b + p->n, data, len);
    p->n += len;
}

struct resp {
    uint8_t raw[2048];
    ssize_t n;
    int code;                                                    /* 205 for 2.05 */
    long max_age, size1, size2, block2, content_format, observe; /* -1: absent */
    uint8_t etag[8];
    size_t etag_len;
    const uint8_t *payload;
    size_t plen;
};

static unsigned get_ext(const uint8_t *b, size_t *i, unsigned nib)
{
    if (nib == 13)
        return b[(*i)++] + 13u;
    if (nib == 14) {
        unsigned v = (unsigned)(b[*i] << 8 | b[*i + 1]) + 269u;
        *i += 2;
        return v;
    }
    return nib;
}

static long uint_of(const uint8_t *v, unsigned len)
{
    long x = 0;
    for (unsigned k = 0; k < len; k++)
        x = x << 8 | v[k];
    return x;
}

static void parse_resp(struct resp *r)
{
    r->code = (r->raw[1] >> 5) * 100 + (r->raw[1] & 31);
    r->max_age = r->size1 = r->size2 = r->block2 = r->content_format = r->observe = -1;
    r->etag_len = 0;
    r->payload = NULL;
    r->plen = 0;
    size_t i = 4 + (r->raw[0] & 15u);
    unsigned num = 0;
    while (i < (size_t)r->n && r->raw[i] != 0xff) {
        uint8_t h = r->raw[i++];
        num += get_ext(r->raw, &i, h >> 4);
        unsigned len = get_ext(r->raw, &i, h & 15);
        const uint8_t *v = r->raw + i;
        i += len;
        if (num == 14)
            r->max_age = uint_of(v, len);
        else if (num == 6)
            r->observe = uint_of(v, len);
        else if (num == 60)
            r->size1 = uint_of(v, len);
        else if (num == 28)
            r->size2 = uint_of(v, len);
        else if (num == 23)
            r->block2 = uint_of(v, len);
        else if (num == 12)
            r->content_format = uint_of(v, len);
        else if (num == 4 && len <= 8)
            memcpy(r->etag, v, r->etag_len = len);
    }
    if (i < (size_t)r->n) {
        r->payload = r->raw + i + 1;
        r->plen = (size_t)r->n - i - 1;
    }
}

struct raw_wait {
    int fd;
    struct resp *r;
};

static bool raw_got(void *arg)
{
    struct raw_wait *w = arg;
    w->r->n = recv(w->fd, w->r->raw, sizeof(w->r->raw), MSG_DONTWAIT);
    return w->r->n >= 4;
}

static int raw_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    return fd;
}

/* Sends one request from socket fd (one socket = one CoAP session) and
 * serves until the answer is back. */
static bool raw_request(int fd, const struct pdu *p, struct resp *r)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(sendto(fd, p->b, p->n, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)p->n);
    struct raw_wait w = {.fd = fd, .r = r};
    if (!run_until(raw_got, &w, 3000))
        return false;
    parse_resp(r);
    return true;
}

static uint16_t mid_seq = 100;

/* GET of a path, with a Block2 option when block >= 0. */
static int raw_get(int fd, const char *path, long block, unsigned szx, struct resp *r)
{
    struct pdu p;
    pdu_start(&p, 1, mid_seq++);
    pdu_path(&p, path);
    if (block >= 0)
        pdu_uint(&p, 23, (uint32_t)block << 4 | szx);
    CU_ASSERT_FATAL(raw_request(fd, &p, r));
    return r->code;
}

/* GET of a path with Uri-Query options (each "k=v", NULL-terminated) and,
 * when block >= 0, a Block2 option; observe >= 0 adds Observe. */
static int raw_get_q(int fd, const char *path, const char *const *query, long observe, long block,
                     unsigned szx, struct resp *r)
{
    struct pdu p;
    pdu_start(&p, 1, mid_seq++);
    if (observe >= 0)
        pdu_uint(&p, 6, (uint32_t)observe);
    pdu_path(&p, path);
    for (; query && *query; query++)
        pdu_opt(&p, 15, *query, strlen(*query));
    if (block >= 0)
        pdu_uint(&p, 23, (uint32_t)block << 4 | szx);
    CU_ASSERT_FATAL(raw_request(fd, &p, r));
    return r->code;
}

/* The "127.0.0.1:<port>" the server names socket fd by. */
static void local_name(int fd, char *out, size_t cap)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    snprintf(out, cap, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
}

/* A GET of the big artifact from socket fd as node "node-fd<fd>" (n=), so
 * each socket is a node of its own. */
static int raw_get_artifact(int fd, long block, unsigned szx, struct resp *r)
{
    char path[128], q[32];
    artifact_path(path, sizeof(path), F.hex);
    snprintf(q, sizeof(q), "n=node-fd%d", fd);
    const char *const query[] = {q, NULL};
    return raw_get_q(fd, path, query, -1, block, szx, r);
}

/* The ETag is the first 8 bytes of the SHA-256 as a number, shortest form. */
static bool etag_is(const struct resp *r, const uint8_t sha[FERRY_SHA256_LEN])
{
    size_t skip = 0;
    while (skip < 7 && sha[skip] == 0)
        skip++;
    return r->etag_len == 8 - skip && memcmp(r->etag, sha + skip, r->etag_len) == 0;
}

static bool max_age_within(const struct resp *r, long base)
{
    return r->max_age >= base - base / 4 && r->max_age <= base + base / 4;
}

static void status_json(char *out, size_t cap, const char *node, uint64_t seq)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", node);
    snprintf(st.release_id, sizeof(st.release_id), "meter-fw-1.4.2-42");
    snprintf(st.version, sizeof(st.version), "1.4.2");
    st.state = FERRY_STATE_DOWNLOADING;
    st.bytes = 4096;
    st.total = ART_SIZE;
    snprintf(st.message, sizeof(st.message), "writing the inactive slot, all is well so far");
    st.seq = seq;
    st.ts = 1795780795;
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_status_to_json(&st, &json, &len, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(len < cap);
    memcpy(out, json, len + 1);
    free(json);
}

/* How long the stock client waits for an answer ("-B"): short where none
 * can come. */
static const char *client_wait = "20";

static char *post_status(const char *scheme, const char *const *psk, const char *type,
                         const char *payload_flag, const char *payload, const char *block)
{
    char u[256];
    uri(u, sizeof(u), scheme, "ferry/status");
    const char *argv[20] = {psk ? "coap-client-openssl" : "coap-client-notls",
                            "-B",
                            client_wait,
                            "-m",
                            "post",
                            "-t",
                            type,
                            payload_flag,
                            payload};
    int i = 9;
    if (block) {
        argv[i++] = "-b";
        argv[i++] = block;
    }
    for (; psk && *psk; psk++)
        argv[i++] = *psk;
    argv[i++] = u;
    argv[i] = NULL;
    int code = 0;
    char *out = run_client(argv, &code);
    CU_ASSERT_NOT_EQUAL(code, 127);
    return out;
}

/* ---- tests ------------------------------------------------------------------ */

static void stock_client_downloads_at_every_block_size(void)
{
    start_server(4, NULL);
    const unsigned sizes[] = {16, 64, 256, 1024};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        CU_ASSERT(stock_download_matches("coap", NULL, sizes[i]));
    stop_server();
}

/* The entry of one link in a link-format document, up to the next link. */
static char *link_entry(const char *doc, const char *target)
{
    const char *at = strstr(doc, target);
    if (!at)
        return NULL;
    const char *end = strstr(at, ",<");
    return strndup(at, end ? (size_t)(end - at) : strlen(at));
}

static void well_known_core_lists_every_resource(void)
{
    start_server(2, NULL);
    char *doc = coap_get(".well-known/core", NULL, NULL);
    char target[128], sz[32];
    snprintf(target, sizeof(target), "</ferry/artifact/%s>", F.hex);
    snprintf(sz, sizeof(sz), "sz=%d", ART_SIZE);
    char *art = link_entry(doc, target);
    CU_ASSERT_PTR_NOT_NULL_FATAL(art);
    CU_ASSERT(contains(art, "rt=\"ferry.artifact\""));
    CU_ASSERT(contains(art, sz));
    CU_ASSERT(contains(art, "ct=42"));
    char *man = link_entry(doc, "</ferry/manifest/" PRODUCT ">");
    CU_ASSERT_PTR_NOT_NULL_FATAL(man);
    CU_ASSERT(contains(man, "rt=\"ferry.manifest\""));
    CU_ASSERT(contains(man, "obs"));
    char *st = link_entry(doc, "</ferry/status>");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT(contains(st, "rt=\"ferry.status\""));
    free(art);
    free(man);
    free(st);
    free(doc);

    /* An evicted artifact leaves the listing; its digest then means nothing. */
    gw_coap_artifact_removed(srv, F.sha);
    F.art_gone = true;
    doc = coap_get(".well-known/core", NULL, NULL);
    CU_ASSERT_PTR_NULL(strstr(doc, F.hex));
    CU_ASSERT(contains(doc, "</ferry/status>"));
    free(doc);
    char path[128];
    artifact_path(path, sizeof(path), F.hex);
    doc = coap_get(path, NULL, NULL);
    CU_ASSERT(contains(doc, "4.04"));
    free(doc);
    stop_server();
}

static void wrong_paths_and_methods_are_refused(void)
{
    start_server(2, NULL);
    char path[128];
    struct {
        const char *path, *method, *want;
    } cases[] = {
        {"nothing/here", "get", "4.04"},
        {"nothing/here", "delete", "4.04"}, /* libcoap alone would say 2.02 */
        {"ferry", "get", "4.04"},
        {"ferry/artifact", "get", "4.04"},
        {"ferry/artifact/not-hex", "get", "4.04"},
        {"ferry/status", "get", "4.05"},
        {"ferry/manifest/" PRODUCT, "put", "4.05"},
        {"ferry/manifest/" PRODUCT, "delete", "4.05"},
        {"ferry/manifest/no-such-product", "post", "4.05"},
        {path, "delete", "4.05"},
        {path, "post", "4.05"},
    };
    artifact_path(path, sizeof(path), F.hex);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = coap_get(cases[i].path, "-m", cases[i].method);
        if (!strstr(out, cases[i].want))
            fprintf(stderr, "%s %s\n", cases[i].method, cases[i].path);
        CU_ASSERT(contains(out, cases[i].want));
        free(out);
    }
    /* Digests in upper case, of the wrong length, or with non-hex digits. */
    int fd = raw_socket();
    struct resp r;
    char upper[FERRY_SHA256_HEX_LEN + 1];
    for (int i = 0; i <= FERRY_SHA256_HEX_LEN; i++)
        upper[i] = (char)(F.hex[i] >= 'a' && F.hex[i] <= 'f' ? F.hex[i] - 32 : F.hex[i]);
    artifact_path(path, sizeof(path), upper);
    CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 404);
    snprintf(path, sizeof(path), "ferry/artifact/%.63s", F.hex);
    CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 404);
    snprintf(path, sizeof(path), "ferry/artifact/%.63sg", F.hex);
    CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 404);
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/..x", -1, 0, &r), 404);
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/a/b", -1, 0, &r), 404);
    close(fd);
    /* Still serving. */
    CU_ASSERT(stock_download_matches("coap", NULL, 1024));
    stop_server();
}

static void status_json_and_cbor_reach_the_hook(void)
{
    start_server(2, NULL);
    char json[FERRY_STATUS_MAX_BYTES];
    status_json(json, sizeof(json), "node-7", 13);
    char *out = post_status("coap", NULL, "50", "-e", json, NULL);
    CU_ASSERT_EQUAL(F.status_calls, 1);
    CU_ASSERT_STRING_EQUAL(F.last.node, "node-7");
    CU_ASSERT_EQUAL(F.last.seq, 13);
    CU_ASSERT_EQUAL(F.last.state, FERRY_STATE_DOWNLOADING);
    CU_ASSERT_EQUAL(F.last.total, ART_SIZE);
    CU_ASSERT(F.identity_null); /* plain CoAP authenticates nobody */
    CU_ASSERT_PTR_NULL(strstr(out, "4."));
    CU_ASSERT_PTR_NULL(strstr(out, "5."));
    free(out);

    /* CBOR from a file. */
    struct ferry_status st = F.last;
    st.seq = 14;
    st.state = FERRY_STATE_VERIFYING;
    uint8_t cbor[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_status_to_cbor(&st, cbor, sizeof(cbor), &len, NULL) == FERRY_OK);
    char file[512];
    snprintf(file, sizeof(file), "%s/status.cbor", ferry_test_tmpdir());
    CU_ASSERT_FATAL(ferry_write_atomic(file, cbor, len, 0600, NULL) == FERRY_OK);
    free(post_status("coap", NULL, "60", "-f", file, NULL));
    CU_ASSERT_EQUAL(F.status_calls, 2);
    CU_ASSERT_EQUAL(F.last.seq, 14);
    CU_ASSERT_EQUAL(F.last.state, FERRY_STATE_VERIFYING);

    /* In 16-byte Block1 pieces: put together, delivered once. */
    status_json(json, sizeof(json), "node-8", 99);
    free(post_status("coap", NULL, "50", "-e", json, "16"));
    CU_ASSERT_EQUAL(F.status_calls, 3);
    CU_ASSERT_STRING_EQUAL(F.last.node, "node-8");
    CU_ASSERT_EQUAL(F.last.seq, 99);
    stop_server();
}

static void bad_status_records_are_refused_and_serving_goes_on(void)
{
    start_server(2, NULL);
    char *out = post_status("coap", NULL, "50", "-e", "{\"format\":1,\"node\":\"n\"}", NULL);
    CU_ASSERT(contains(out, "4.00"));
    CU_ASSERT(contains(out, "status")); /* the diagnostic names the problem */
    free(out);
    out = post_status("coap", NULL, "50", "-e", "not json at all", NULL);
    CU_ASSERT(contains(out, "4.00"));
    free(out);
    char json[FERRY_STATUS_MAX_BYTES];
    status_json(json, sizeof(json), "node-7", 1);
    out = post_status("coap", NULL, "0", "-e", json, NULL);
    CU_ASSERT(contains(out, "4.15"));
    free(out);
    /* Over the cap, in Block1 pieces: refused at the piece that crosses it. */
    char big[1600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    out = post_status("coap", NULL, "50", "-e", big, "64");
    CU_ASSERT(contains(out, "4.13"));
    free(out);
    CU_ASSERT_EQUAL(F.status_calls, 0);

    int fd = raw_socket();
    struct resp r;
    struct pdu p;
    /* Over the cap in one datagram, with Size1 telling the limit. */
    pdu_start(&p, 2, mid_seq++);
    pdu_path(&p, "ferry/status");
    pdu_uint(&p, 12, 50);
    pdu_payload(&p, big, 1100);
    CU_ASSERT_FATAL(raw_request(fd, &p, &r));
    CU_ASSERT_EQUAL(r.code, 413);
    CU_ASSERT_EQUAL(r.size1, FERRY_STATUS_MAX_BYTES);
    /* No Content-Format at all. */
    pdu_start(&p, 2, mid_seq++);
    pdu_path(&p, "ferry/status");
    pdu_payload(&p, json, strlen(json));
    CU_ASSERT_FATAL(raw_request(fd, &p, &r));
    CU_ASSERT_EQUAL(r.code, 415);
    /* A Block1 piece whose predecessors never came. */
    pdu_start(&p, 2, mid_seq++);
    pdu_path(&p, "ferry/status");
    pdu_uint(&p, 12, 50);
    pdu_uint(&p, 27, 3u << 4 | 1u << 3 | 0u);
    pdu_payload(&p, json, 16);
    CU_ASSERT_FATAL(raw_request(fd, &p, &r));
    CU_ASSERT_EQUAL(r.code, 408);
    close(fd);
    CU_ASSERT_EQUAL(F.status_calls, 0);
    CU_ASSERT(stock_download_matches("coap", NULL, 256));
    stop_server();
}

static void status_hook_answers_map_to_codes(void)
{
    start_server(2, NULL);
    char json[FERRY_STATUS_MAX_BYTES];
    status_json(json, sizeof(json), "node-7", 5);
    int fd = raw_socket();
    struct resp r;
    struct pdu p;
    struct {
        enum ferry_err ret;
        const char *msg;
        int code;
    } cases[] = {
        {FERRY_OK, NULL, 204},
        {FERRY_E_NOSPACE, "outbox: disk full", 503},
        {FERRY_E_BUSY, NULL, 503},
        {FERRY_E_PROTOCOL, "status: node 'node-7' is not the DTLS identity", 403},
        {FERRY_E_INVALID_ARG, "status: sequence went backwards", 400},
        {FERRY_E_IO, NULL, 500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        F.status_ret = cases[i].ret;
        F.status_msg = cases[i].msg;
        pdu_start(&p, 2, mid_seq++);
        pdu_path(&p, "ferry/status");
        pdu_uint(&p, 12, 50);
        pdu_payload(&p, json, strlen(json));
        CU_ASSERT_FATAL(raw_request(fd, &p, &r));
        CU_ASSERT_EQUAL(r.code, cases[i].code);
        if (cases[i].code == 503)
            CU_ASSERT(max_age_within(&r, BUSY_S));
        if (cases[i].msg) {
            CU_ASSERT_EQUAL(r.plen, strlen(cases[i].msg));
            CU_ASSERT(r.payload && memcmp(r.payload, cases[i].msg, r.plen) == 0);
        }
    }
    CU_ASSERT_EQUAL(F.status_calls, (int)(sizeof(cases) / sizeof(cases[0])));
    close(fd);
    stop_server();
}

static void fetching_and_unknown_artifacts(void)
{
    start_server(2, NULL);
    char path[128];
    artifact_path(path, sizeof(path), F.fetching_hex);
    char *out = coap_get(path, NULL, NULL);
    CU_ASSERT(contains(out, "5.03"));
    free(out);
    int fd = raw_socket();
    struct resp r;
    CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 503);
    CU_ASSERT(max_age_within(&r, FETCHING_S));
    uint8_t other[FERRY_SHA256_LEN];
    char other_hex[FERRY_SHA256_HEX_LEN + 1];
    memset(other, 0x11, sizeof(other));
    ferry_hex_encode(other, sizeof(other), other_hex);
    artifact_path(path, sizeof(path), other_hex);
    CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 404);
    close(fd);
    CU_ASSERT_EQUAL(F.complete, 0);
    stop_server();
}

static void change_manifest(void *arg)
{
    (void)arg;
    snprintf(F.envelope, sizeof(F.envelope), "{\"release\":\"second\"}");
    CU_ASSERT(gw_coap_manifest_changed(srv, PRODUCT) == FERRY_OK);
}

static void observers_hear_of_a_new_manifest(void)
{
    start_server(2, NULL);
    CU_ASSERT_FATAL(ferry_loop_timer(loop, 1500, change_manifest, NULL) != 0);
    char *out = coap_get("ferry/manifest/" PRODUCT, "-s", "4");
    CU_ASSERT(contains(out, "{\"release\":\"first\"}"));
    CU_ASSERT(contains(out, "{\"release\":\"second\"}"));
    free(out);

    int fd = raw_socket();
    struct resp r;
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/" PRODUCT, -1, 0, &r), 205);
    CU_ASSERT_EQUAL(r.content_format, 50);
    CU_ASSERT(r.max_age > 0);
    CU_ASSERT(r.etag_len > 0);
    CU_ASSERT(r.plen == strlen(F.envelope) && memcmp(r.payload, F.envelope, r.plen) == 0);
    /* A product the gateway has a release for but never announced. */
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/valve", -1, 0, &r), 205);
    CU_ASSERT(r.plen == strlen(F.envelope_valve) &&
              memcmp(r.payload, F.envelope_valve, r.plen) == 0);
    /* Withdrawn: an empty 2.05, with a Max-Age for pollers. */
    F.envelope[0] = '\0';
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/" PRODUCT, -1, 0, &r), 205);
    CU_ASSERT_EQUAL(r.plen, 0);
    CU_ASSERT(r.max_age > 0);
    close(fd);
    out = coap_get(".well-known/core", NULL, NULL);
    CU_ASSERT(contains(out, "</ferry/manifest/valve>"));
    free(out);
    stop_server();
}

/* GET with Observe: 0 from socket fd. */
static int raw_observe(int fd, const char *path, struct resp *r)
{
    struct pdu p;
    pdu_start(&p, 1, mid_seq++);
    pdu_uint(&p, 6, 0);
    pdu_path(&p, path);
    CU_ASSERT_FATAL(raw_request(fd, &p, r));
    return r->code;
}

static void release_pump(void *arg)
{
    (void)arg;
    snprintf(F.envelope_pump, sizeof(F.envelope_pump), "{\"release\":\"pump\"}");
    CU_ASSERT(gw_coap_manifest_changed(srv, "pump") == FERRY_OK);
}

static void a_product_without_a_release_stays_observed(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    /* The first GET makes the resource; it cannot register the observer. */
    CU_ASSERT_EQUAL(raw_observe(fd, "ferry/manifest/pump", &r), 205);
    CU_ASSERT_EQUAL(r.plen, 0);
    CU_ASSERT(r.max_age > 0);
    CU_ASSERT_EQUAL(r.observe, -1);
    /* Asked again, as ferry-edge does: now registered, still nothing offered. */
    CU_ASSERT_EQUAL(raw_observe(fd, "ferry/manifest/pump", &r), 205);
    CU_ASSERT_EQUAL(r.plen, 0);
    CU_ASSERT(r.observe >= 0);
    /* The product's first release reaches the observer as a notification. */
    CU_ASSERT_FATAL(ferry_loop_timer(loop, 200, release_pump, NULL) != 0);
    struct raw_wait w = {.fd = fd, .r = &r};
    CU_ASSERT_FATAL(run_until(raw_got, &w, 3000));
    parse_resp(&r);
    CU_ASSERT_EQUAL(r.code, 205);
    CU_ASSERT(r.observe >= 0);
    CU_ASSERT(r.plen == strlen(F.envelope_pump) && memcmp(r.payload, F.envelope_pump, r.plen) == 0);
    close(fd);
    stop_server();
}

static void products_without_a_release_are_capped(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    char path[64];
    for (int i = 0; i < GW_COAP_MAX_WAITING_PRODUCTS; i++) {
        snprintf(path, sizeof(path), "ferry/manifest/probe-%d", i);
        CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 205);
    }
    /* Beyond the cap: 4.04 for pollers, no new resource. */
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/probe-extra", -1, 0, &r), 404);
    CU_ASSERT(r.max_age > 0);
    CU_ASSERT(r.plen > 0 && memmem(r.payload, r.plen, "probe-extra", 11) != NULL);
    /* Products made earlier still answer; one with a release is still served. */
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/probe-0", -1, 0, &r), 205);
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/valve", -1, 0, &r), 205);
    CU_ASSERT(r.plen == strlen(F.envelope_valve) &&
              memcmp(r.payload, F.envelope_valve, r.plen) == 0);
    close(fd);
    char *doc = coap_get(".well-known/core", NULL, NULL);
    CU_ASSERT_PTR_NULL(strstr(doc, "probe-extra"));
    /* The listing (over 4 KiB) comes whole, in blocks. */
    CU_ASSERT(contains(doc, "</ferry/manifest/probe-0>"));
    CU_ASSERT(contains(doc, "</ferry/manifest/probe-63>"));
    CU_ASSERT(contains(doc, "</ferry/status>"));
    free(doc);
    stop_server();
}

/* GET block `block` (1 KiB) of the big artifact as node `node` (n=). */
static int as_node(int fd, const char *node, long block, struct resp *r)
{
    char path[128], q[80];
    artifact_path(path, sizeof(path), F.hex);
    snprintf(q, sizeof(q), "n=%s", node);
    const char *const query[] = {q, NULL};
    return raw_get_q(fd, path, query, -1, block, 6, r);
}

#define LAST_BLOCK (ART_SIZE / 1024 - 1)

/* Issue 9, 3: one node with several sessions took one slot per session. */
static void one_node_holds_one_slot_however_many_sessions(void)
{
    start_server(2, NULL);
    int a1 = raw_socket(), a2 = raw_socket(), a3 = raw_socket(), b = raw_socket(), c = raw_socket();
    struct resp r;
    CU_ASSERT_EQUAL(as_node(a1, "node-a", 0, &r), 205);
    CU_ASSERT_EQUAL(as_node(a2, "node-a", 1, &r), 205);
    CU_ASSERT_EQUAL(as_node(a3, "node-a", 2, &r), 205);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    /* So node-b still finds a slot, and node-c is the one that waits. */
    CU_ASSERT_EQUAL(as_node(b, "node-b", 0, &r), 205);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 2);
    CU_ASSERT_EQUAL(as_node(c, "node-c", 0, &r), 503);
    CU_ASSERT(max_age_within(&r, BUSY_S));
    /* node-a's sessions go on sharing its one slot. */
    CU_ASSERT_EQUAL(as_node(a2, "node-a", 3, &r), 205);
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + 3 * 1024, 1024) == 0);
    close(a1);
    close(a2);
    close(a3);
    close(b);
    close(c);
    stop_server();
}

/* Issue 9, 3: one host took one slot per session (a port each). Anonymous
 * clients are counted by their host: its clients share one slot. */
static void one_host_s_anonymous_clients_share_one_slot(void)
{
    start_server(2, NULL);
    int s1 = raw_socket(), s2 = raw_socket(), s3 = raw_socket(), b = raw_socket(), c = raw_socket();
    struct resp r;
    char path[128];
    artifact_path(path, sizeof(path), F.hex);
    CU_ASSERT_EQUAL(raw_get(s1, path, 0, 6, &r), 205);
    CU_ASSERT_EQUAL(raw_get(s2, path, 1, 6, &r), 205);
    CU_ASSERT_EQUAL(raw_get(s3, path, 2, 6, &r), 205);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    CU_ASSERT_EQUAL(as_node(b, "node-b", 0, &r), 205);
    CU_ASSERT_EQUAL(as_node(c, "node-c", 0, &r), 503);
    close(s1);
    close(s2);
    close(s3);
    close(b);
    close(c);
    stop_server();
}

/* Issue 9, 3: asking for the last block first ended the transfer at once,
 * and the grace that followed served the whole artifact outside the limit. */
static void the_last_block_first_is_no_way_around_the_limit(void)
{
    start_server(1, NULL);
    int a = raw_socket(), b = raw_socket();
    struct resp r;
    CU_ASSERT_EQUAL(as_node(a, "node-a", LAST_BLOCK, &r), 205);
    CU_ASSERT_EQUAL(r.block2, LAST_BLOCK << 4 | 6);
    /* node-a has one block of 200: its transfer runs, node-b waits. */
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    CU_ASSERT_EQUAL(as_node(b, "node-b", 0, &r), 503);
    for (long n = 0; n < LAST_BLOCK; n++) {
        CU_ASSERT_EQUAL_FATAL(as_node(a, "node-a", n, &r), 205);
        CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + n * 1024, 1024) == 0);
    }
    /* Every byte served once: done, the slot is free at once. */
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 0);
    CU_ASSERT_EQUAL(as_node(b, "node-b", 0, &r), 205);
    /* node-a's retransmissions are served in its grace, but only so many:
     * starting over is a new download, and node-b holds the one slot. */
    int served = 0;
    for (long n = 0; n < 2 * GW_PACER_DEFAULT_GRACE_REQUESTS; n++) {
        if (as_node(a, "node-a", n % (LAST_BLOCK + 1), &r) == 205)
            served++;
        else
            CU_ASSERT_EQUAL(r.code, 503);
    }
    CU_ASSERT_EQUAL(served, GW_PACER_DEFAULT_GRACE_REQUESTS);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    close(a);
    close(b);
    stop_server();
}

/* Issue 9, 3: one host kept every slot for as long as it kept asking. */
static void a_holder_yields_its_turn_while_others_wait(void)
{
    /* Wide enough that a loaded machine (the suite under ASan beside another
     * test) never leaves a hog silent for a whole idle time; the pacer's own
     * decisions are driven by a clock of the test's in test_gw_pacer. */
    server_idle_ms = 1000;
    server_turn_ms = 1500;
    start_server(2, NULL);
    int fds[3] = {raw_socket(), raw_socket(), raw_socket()};
    struct resp r;
    CU_ASSERT_EQUAL(as_node(fds[0], "hog-1", 0, &r), 205);
    CU_ASSERT_EQUAL(as_node(fds[1], "hog-2", 0, &r), 205);
    CU_ASSERT_EQUAL(as_node(fds[2], "node-c", 0, &r), 503);
    uint64_t t0 = ferry_now_ms();
    bool admitted = false;
    while (!admitted && ferry_now_ms() - t0 < 8000) {
        run_until(never, NULL, 20);
        /* The holders keep asking, as a greedy host would. */
        as_node(fds[0], "hog-1", 1, &r);
        as_node(fds[1], "hog-2", 1, &r);
        admitted = as_node(fds[2], "node-c", 0, &r) == 205;
    }
    CU_ASSERT(admitted);
    uint64_t waited = ferry_now_ms() - t0;
    CU_ASSERT(waited >= 1500 - 100 && waited < 1500 + 3000);
    /* Never more than two at once; the hogs take turns for the other slot. */
    CU_ASSERT(gw_coap_active_downloads(srv) <= 2);
    int back = (as_node(fds[0], "hog-1", 2, &r) == 205) + (as_node(fds[1], "hog-2", 2, &r) == 205);
    CU_ASSERT_EQUAL(back, 1);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 2);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    stop_server();
}

/* Answers collected from a socket until `want` have come. */
struct collect {
    int fd;
    int want, got;
    struct resp r[64];
    uint64_t at[64];
};

static bool collected(void *arg)
{
    struct collect *c = arg;
    while (c->got < c->want) {
        struct resp *r = &c->r[c->got];
        r->n = recv(c->fd, r->raw, sizeof(r->raw), MSG_DONTWAIT);
        if (r->n < 4)
            break;
        parse_resp(r);
        c->at[c->got++] = ferry_now_ms();
    }
    return c->got >= c->want;
}

static bool collected_both(void *arg)
{
    struct collect **c = arg;
    bool a = collected(c[0]), b = collected(c[1]);
    return a && b;
}

/* A NON GET of block `block` (1 KiB) as node `node`, with a token of its own
 * (the block number). */
static void send_non(int fd, const char *node, unsigned block)
{
    struct pdu p;
    pdu_start(&p, 1, mid_seq++);
    p.b[0] = 0x54; /* version 1, non-confirmable, 4-byte token */
    memcpy(p.b + 4, "nb", 2);
    p.b[6] = (uint8_t)(block >> 8);
    p.b[7] = (uint8_t)block;
    char path[128], q[80];
    artifact_path(path, sizeof(path), F.hex);
    snprintf(q, sizeof(q), "n=%s", node);
    pdu_path(&p, path);
    pdu_opt(&p, 15, q, strlen(q));
    pdu_uint(&p, 23, block << 4 | 6);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(sendto(fd, p.b, p.n, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)p.n);
}

/* Issue 12, 4: NON block requests beyond the link budget are answered
 * later, as NON 2.05 with their own token, fairly between nodes, and the
 * total stays within the budget. */
static void non_answers_wait_for_the_link_budget(void)
{
    server_link_rate = 20480;
    start_server(4, NULL);
    static struct collect a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.fd = raw_socket();
    b.fd = raw_socket();
    a.want = b.want = 24;
    uint64_t t0 = ferry_now_ms();
    /* Node A's window of 24 goes first; node B's comes a moment later. */
    for (unsigned n = 0; n < 24; n++)
        send_non(a.fd, "node-a", n);
    for (unsigned n = 0; n < 24; n++)
        send_non(b.fd, "node-b", n);
    struct collect *pair[] = {&a, &b};
    CU_ASSERT(run_until(collected_both, pair, 10000));
    uint64_t last = a.at[23] > b.at[23] ? a.at[23] : b.at[23];
    /* 48 datagrams of 1088 counted bytes at 20 KiB/s, less one bucket of
     * 200 ms: at least 2.3 s. */
    CU_ASSERT(last - t0 >= 2300);
    CU_ASSERT(last - t0 < 6000);
    struct collect *both[] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 24; i++) {
            struct resp *r = &both[k]->r[i];
            unsigned num = (unsigned)r->raw[6] << 8 | r->raw[7];
            CU_ASSERT_EQUAL(r->raw[0] >> 4 & 3, 1); /* NON */
            CU_ASSERT_EQUAL(r->code, 205);
            CU_ASSERT(memcmp(r->raw + 4, "nb", 2) == 0);
            CU_ASSERT_EQUAL(r->block2, (long)(num << 4 | 8 | 6));
            CU_ASSERT(r->plen == 1024 && memcmp(r->payload, F.art + num * 1024, 1024) == 0);
        }
    }
    /* Fair: node B, although behind node A's whole window, was served
     * alongside it: by the time A had half of its blocks, so had B, give or
     * take a few. */
    uint64_t half = a.at[11];
    int b_by_then = 0;
    for (int i = 0; i < 24; i++)
        b_by_then += b.at[i] <= half;
    CU_ASSERT(b_by_then >= 8 && b_by_then <= 16);
    close(a.fd);
    close(b.fd);
    stop_server();
}

/* D2: a CON block request is never answered late; beyond the budget it gets
 * 5.03 with a Max-Age. */
static void con_beyond_the_link_budget_gets_5_03(void)
{
    server_link_rate = 4096; /* a bucket of one block */
    start_server(4, NULL);
    int fd = raw_socket();
    struct resp r;
    CU_ASSERT_EQUAL(as_node(fd, "node-a", 0, &r), 205);
    CU_ASSERT_EQUAL(as_node(fd, "node-a", 1, &r), 503);
    CU_ASSERT(r.max_age >= 1 && r.max_age <= 2);
    CU_ASSERT(r.plen > 0 && memmem(r.payload, r.plen, "budget", 6) != NULL);
    run_until(never, NULL, 400);
    CU_ASSERT_EQUAL(as_node(fd, "node-a", 1, &r), 205);
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + 1024, 1024) == 0);
    close(fd);
    stop_server();
}

static size_t observers_now(void)
{
    struct gw_coap_stats st;
    gw_coap_get_stats(srv, &st);
    return st.observers;
}

/* Registers an observer of PRODUCT from fd as `node` (n=; NULL: anonymous). */
static int observe_as(int fd, const char *node, struct resp *r)
{
    char q[80];
    snprintf(q, sizeof(q), "n=%s", node ? node : "");
    const char *const query[] = {q, NULL};
    return raw_get_q(fd, "ferry/manifest/" PRODUCT, node ? query : NULL, 0, -1, 0, r);
}

/* Whether a notification of the second release reaches fd within ms. */
static bool notified(int fd, uint64_t ms)
{
    struct resp r;
    struct raw_wait w = {.fd = fd, .r = &r};
    if (!run_until(raw_got, &w, ms))
        return false;
    parse_resp(&r);
    return r.code == 205 && r.plen == strlen(F.envelope) &&
           memcmp(r.payload, F.envelope, r.plen) == 0;
}

static void release_second(void)
{
    snprintf(F.envelope, sizeof(F.envelope), "{\"release\":\"second\"}");
    CU_ASSERT(gw_coap_manifest_changed(srv, PRODUCT) == FERRY_OK);
}

/* Issue 9, 3: libcoap kept one Observe registration per session and query,
 * as many as a peer cared to make, and a session with observers forever. */
static void observations_are_capped_per_session_and_in_all(void)
{
    server_max_observers = 8;
    start_server(2, NULL);
    struct resp r;
    int peer = raw_socket();
    /* One session, five names: two registrations, then 4.29. */
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(observe_as(peer, names[i], &r), i < 2 ? 205 : 429);
        CU_ASSERT_EQUAL(r.observe >= 0, i < 2);
        if (i >= 2)
            CU_ASSERT(r.max_age > 0);
    }
    CU_ASSERT_EQUAL(observers_now(), 2);
    /* Ten more nodes: six fit the total of eight. */
    int fds[10];
    char name[16];
    for (int i = 0; i < 10; i++) {
        fds[i] = raw_socket();
        snprintf(name, sizeof(name), "node-%d", i);
        CU_ASSERT_EQUAL(observe_as(fds[i], name, &r), i < 6 ? 205 : 429);
    }
    CU_ASSERT_EQUAL(observers_now(), 8);
    /* Those refused hear nothing; the others hear of the release. */
    release_second();
    CU_ASSERT(notified(fds[0], 3000));
    CU_ASSERT(notified(fds[5], 3000));
    CU_ASSERT(!notified(fds[6], 300));
    close(peer);
    for (int i = 0; i < 10; i++)
        close(fds[i]);
    stop_server();
}

/* Issue 9, 3: a node that comes back from a new session (it restarted) left
 * its old session and registration behind for good. */
static void a_node_observing_from_a_new_session_ends_the_old_one(void)
{
    start_server(2, NULL);
    struct resp r;
    int s1 = raw_socket(), s2 = raw_socket(), s3 = raw_socket();
    CU_ASSERT_EQUAL(observe_as(s1, "node-x", &r), 205);
    CU_ASSERT_EQUAL(observe_as(s2, "node-x", &r), 205);
    CU_ASSERT_EQUAL(observers_now(), 2);
    CU_ASSERT_EQUAL(observe_as(s3, "node-x", &r), 205);
    CU_ASSERT(r.observe >= 0);
    CU_ASSERT_EQUAL(observers_now(), 2);
    release_second();
    CU_ASSERT(notified(s3, 3000));
    CU_ASSERT(notified(s2, 3000));
    CU_ASSERT(!notified(s1, 300)); /* its session was closed */
    /* Anonymous clients of one host are not one node: several may observe. */
    int anon[4];
    for (int i = 0; i < 4; i++) {
        anon[i] = raw_socket();
        CU_ASSERT_EQUAL(observe_as(anon[i], NULL, &r), 205);
    }
    CU_ASSERT_EQUAL(observers_now(), 6);
    close(s1);
    close(s2);
    close(s3);
    for (int i = 0; i < 4; i++)
        close(anon[i]);
    stop_server();
}

/* Issue 9, 3: libcoap kept Block1 state per Request-Tag. The server reads
 * Block1 itself now; a peer starting record after record keeps one slot. */
static void many_request_tags_keep_nothing(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    struct mallinfo2 before = mallinfo2();
    for (unsigned i = 0; i < 3000; i++) {
        struct pdu p;
        pdu_start(&p, 2, mid_seq++);
        pdu_path(&p, "ferry/status");
        pdu_uint(&p, 12, 50);
        pdu_uint(&p, 27, 0u << 4 | 1u << 3 | 0u); /* Block1 0, more, 16 bytes */
        uint8_t tag[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        pdu_opt(&p, 292, tag, sizeof(tag)); /* Request-Tag */
        pdu_payload(&p, "{\"format\":1,\"no", 16);
        CU_ASSERT_FATAL(raw_request(fd, &p, &r));
        CU_ASSERT_EQUAL_FATAL(r.code, 231);
    }
    struct mallinfo2 after = mallinfo2();
    struct gw_coap_stats st;
    gw_coap_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.partial_records, 1);
    if (before.uordblks == 0 && after.uordblks == 0) {
        fprintf(stderr, "SKIP: heap growth not measured (no mallinfo2 here)\n");
    } else {
        size_t grown = after.uordblks > before.uordblks ? after.uordblks - before.uordblks : 0;
        if (grown >= 256 * 1024)
            fprintf(stderr, "heap grew by %zu bytes for 3000 Request-Tags\n", grown);
        CU_ASSERT(grown < 256 * 1024);
    }
    close(fd);
    CU_ASSERT(stock_download_matches("coap", NULL, 1024));
    stop_server();
}

/* Issue 9, 5: the 64 resources for products without a release were never
 * released, so after 64 probes nobody could observe a new product. */
static void waiting_products_are_released(void)
{
    server_waiting_linger_ms = 300;
    start_server(2, NULL);
    int fd = raw_socket(), obs = raw_socket();
    struct resp r;
    char path[64];
    /* probe-0 is observed: it stays. */
    CU_ASSERT_EQUAL(raw_get(obs, "ferry/manifest/probe-0", -1, 0, &r), 205);
    CU_ASSERT_EQUAL(raw_observe(obs, "ferry/manifest/probe-0", &r), 205);
    CU_ASSERT(r.observe >= 0);
    for (int i = 1; i < GW_COAP_MAX_WAITING_PRODUCTS; i++) {
        snprintf(path, sizeof(path), "ferry/manifest/probe-%d", i);
        CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 205);
    }
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/late", -1, 0, &r), 404);
    run_until(never, NULL, 800);
    struct gw_coap_stats st;
    gw_coap_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.waiting_products, 1);
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/late", -1, 0, &r), 205);
    char *doc = coap_get(".well-known/core", NULL, NULL);
    CU_ASSERT(contains(doc, "</ferry/manifest/probe-0>"));
    CU_ASSERT(contains(doc, "</ferry/manifest/late>"));
    CU_ASSERT_PTR_NULL(strstr(doc, "</ferry/manifest/probe-1>"));
    free(doc);
    /* A product asked for again is served as before. */
    CU_ASSERT_EQUAL(raw_get(fd, "ferry/manifest/probe-1", -1, 0, &r), 205);
    close(fd);
    close(obs);
    stop_server();
}

static void one_download_at_a_time_refuses_the_second_node(void)
{
    start_server(1, NULL);
    int a = raw_socket(), b = raw_socket();
    struct resp r;
    long last = ART_SIZE / 1024 - 1;
    /* Node A starts. */
    CU_ASSERT_EQUAL(raw_get_artifact(a, 0, 6, &r), 205);
    CU_ASSERT_EQUAL(r.block2, 0 << 4 | 8 | 6);
    CU_ASSERT_EQUAL(r.size2, ART_SIZE);
    CU_ASSERT_EQUAL(r.content_format, 42);
    CU_ASSERT(etag_is(&r, F.sha));
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art, 1024) == 0);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    /* Node B waits; so does the stock client. */
    CU_ASSERT_EQUAL(raw_get_artifact(b, 0, 6, &r), 503);
    CU_ASSERT(max_age_within(&r, BUSY_S));
    char path[128];
    artifact_path(path, sizeof(path), F.hex);
    char *out = coap_get(path, NULL, NULL);
    CU_ASSERT(contains(out, "5.03"));
    free(out);
    /* A is never cut off while nobody else's turn is due: every block,
     * the last of which ends its transfer there and then (so each reached
     * our handler, not libcoap). */
    for (long n = 1; n < last; n++) {
        CU_ASSERT_EQUAL_FATAL(raw_get_artifact(a, n, 6, &r), 205);
        CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + n * 1024, 1024) == 0);
        CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    }
    CU_ASSERT_EQUAL(raw_get_artifact(a, last, 6, &r), 205);
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + last * 1024, 1024) == 0);
    CU_ASSERT_EQUAL(r.block2, last << 4 | 6); /* no more blocks */
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 0);
    /* B's turn at once. */
    CU_ASSERT_EQUAL(raw_get_artifact(b, 0, 6, &r), 205);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    /* A's acknowledgement was lost: its last block again is served in its
     * grace, without taking B's slot or a second one. */
    CU_ASSERT_EQUAL(raw_get_artifact(a, last, 6, &r), 205);
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + last * 1024, 1024) == 0);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    /* One answer of the hooks served all of that. */
    CU_ASSERT_EQUAL(F.complete, 1);
    CU_ASSERT_EQUAL(F.released, 0);
    /* Evicted: the answer is released at once and the listing drops it. */
    gw_coap_artifact_removed(srv, F.sha);
    CU_ASSERT_EQUAL(F.released, 1);
    out = coap_get(".well-known/core", NULL, NULL);
    CU_ASSERT(contains(out, "</ferry/status>"));
    CU_ASSERT_PTR_NULL(strstr(out, F.hex));
    free(out);
    /* The hooks still have it (say it came back): B goes on, served from a
     * fresh answer, and it is listed again. */
    CU_ASSERT_EQUAL(raw_get_artifact(b, 1, 6, &r), 205);
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + 1024, 1024) == 0);
    CU_ASSERT_EQUAL(F.complete, 2);
    out = coap_get(".well-known/core", NULL, NULL);
    CU_ASSERT(contains(out, F.hex));
    free(out);
    close(a);
    close(b);
    stop_server();
}

static void a_node_may_start_at_any_block(void)
{
    start_server(1, NULL);
    int a = raw_socket(), b = raw_socket();
    struct resp r;
    /* Block 5 of 256 bytes, nothing asked before: exactly that block, with
     * the ETag, Size2 and content format of every other. */
    CU_ASSERT_EQUAL(raw_get_artifact(a, 5, 4, &r), 205);
    CU_ASSERT_EQUAL(r.block2, 5 << 4 | 8 | 4);
    CU_ASSERT(r.plen == 256 && memcmp(r.payload, F.art + 5 * 256, 256) == 0);
    CU_ASSERT_EQUAL(r.size2, ART_SIZE);
    CU_ASSERT(etag_is(&r, F.sha));
    CU_ASSERT_EQUAL(r.content_format, 42);
    /* That is a transfer: B waits. */
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 1);
    CU_ASSERT_EQUAL(raw_get_artifact(b, 0, 6, &r), 503);
    /* Any block at any size, in any order. */
    const struct {
        long num;
        unsigned szx;
    } asks[] = {{40, 0}, {3, 6}, {1, 5}, {100, 2}, {7, 3}};
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        size_t size = (size_t)16 << asks[i].szx, off = (size_t)asks[i].num * size;
        CU_ASSERT_EQUAL(raw_get_artifact(a, asks[i].num, asks[i].szx, &r), 205);
        CU_ASSERT_EQUAL(r.block2, asks[i].num << 4 | 8 | (long)asks[i].szx);
        CU_ASSERT(r.plen == size && memcmp(r.payload, F.art + off, size) == 0);
        CU_ASSERT_EQUAL(r.size2, ART_SIZE);
        CU_ASSERT(etag_is(&r, F.sha));
    }
    /* Silent for the idle time: the slot goes to B. */
    run_until(never, NULL, IDLE_MS + 100);
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 0);
    CU_ASSERT_EQUAL(raw_get_artifact(b, 0, 6, &r), 205);
    close(a);
    close(b);
    stop_server();
}

static void without_block2_the_answer_is_block_0_or_the_whole(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    /* 200 KiB: block 0 of 1024 bytes, more to come. */
    char path[128];
    artifact_path(path, sizeof(path), F.hex);
    CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 205);
    CU_ASSERT_EQUAL(r.block2, 0 << 4 | 8 | 6);
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art, 1024) == 0);
    CU_ASSERT_EQUAL(r.size2, ART_SIZE);
    /* 600 bytes, never announced: the whole of it without Block2, with its
     * ETag and Size2; the transfer ends with that one answer. */
    artifact_path(path, sizeof(path), F.small_hex);
    CU_ASSERT_EQUAL(raw_get(fd, path, -1, 0, &r), 205);
    CU_ASSERT_EQUAL(r.block2, -1);
    CU_ASSERT(r.plen == SMALL_SIZE && memcmp(r.payload, F.small, SMALL_SIZE) == 0);
    CU_ASSERT_EQUAL(r.size2, SMALL_SIZE);
    CU_ASSERT(etag_is(&r, F.small_sha));
    CU_ASSERT_EQUAL(r.content_format, 42);
    /* The node's one slot moved to the small artifact, which it now has. */
    CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 0);
    /* Asked in blocks, it says which block each answer is. */
    CU_ASSERT_EQUAL(raw_get(fd, path, 0, 6, &r), 205);
    CU_ASSERT_EQUAL(r.block2, 0 << 4 | 6);
    CU_ASSERT_EQUAL(r.plen, SMALL_SIZE);
    CU_ASSERT_EQUAL(raw_get(fd, path, 2, 4, &r), 205);
    CU_ASSERT_EQUAL(r.block2, 2 << 4 | 4);
    CU_ASSERT(r.plen == SMALL_SIZE - 512 && memcmp(r.payload, F.small + 512, r.plen) == 0);
    CU_ASSERT_EQUAL(raw_get(fd, path, 3, 4, &r), 402);
    close(fd);
    char *doc = coap_get(".well-known/core", NULL, NULL);
    CU_ASSERT(contains(doc, F.small_hex));
    free(doc);
    stop_server();
}

static void three_stock_downloads_in_a_row_with_one_slot(void)
{
    server_idle_ms = 10000; /* however slowly the clients start */
    start_server(1, NULL);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(stock_download_matches("coap", NULL, 1024));
        /* Its last block ended the transfer: no slot lingers. */
        CU_ASSERT_EQUAL(gw_coap_active_downloads(srv), 0);
    }
    /* One answer of the hooks served the three. */
    CU_ASSERT_EQUAL(F.complete, 1);
    stop_server();
}

static void the_answer_is_released_after_idle_time(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    /* Requests closer together than the idle time keep one answer. */
    for (long n = 0; n < 4; n++) {
        if (n > 0)
            run_until(never, NULL, IDLE_MS / 2);
        CU_ASSERT_EQUAL(raw_get_artifact(fd, n, 6, &r), 205);
    }
    CU_ASSERT_EQUAL(F.complete, 1);
    CU_ASSERT_EQUAL(F.released, 0);
    uint64_t before_last = ferry_now_ms();
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 4, 6, &r), 205);
    CU_ASSERT(run_until(body_released, NULL, IDLE_MS + 1000));
    uint64_t after = ferry_now_ms() - before_last;
    CU_ASSERT(after >= IDLE_MS && after < IDLE_MS + 500);
    CU_ASSERT_EQUAL(F.complete, 1);
    /* The next request asks the hooks again. */
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 5, 6, &r), 205);
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + 5 * 1024, 1024) == 0);
    CU_ASSERT_EQUAL(F.complete, 2);
    close(fd);
    stop_server(); /* releases the second */
}

static void bogus_block2_options_are_refused(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 0, 7, &r), 400); /* SZX 7 is BERT, TCP only */
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 3, 7, &r), 400);
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 200, 6, &r), 402);    /* starts at the end */
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 100000, 0, &r), 402); /* far beyond */
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 199, 6, &r), 205);    /* the real last one */
    CU_ASSERT_EQUAL(r.plen, 1024);
    /* The same once this node's transfer is under way. */
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 0, 6, &r), 205);
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 200, 6, &r), 402);
    CU_ASSERT_EQUAL(raw_get_artifact(fd, 1, 6, &r), 205);
    close(fd);
    CU_ASSERT(run_until(all_released, NULL, 1000));
    CU_ASSERT(stock_download_matches("coap", NULL, 64));
    stop_server();
}

static void who_is(const struct gw_coap_requester *w, enum gw_coap_requester_kind kind,
                   const char *id)
{
    CU_ASSERT_EQUAL(w->kind, kind);
    CU_ASSERT_STRING_EQUAL(w->id, id);
}

static void the_hooks_learn_who_is_asking(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    char anon[64], path[128];
    artifact_path(path, sizeof(path), F.hex);
    /* Raw socket (the connected UDP socket gets its port on first send). */
    CU_ASSERT_EQUAL(raw_get_q(fd, "ferry/manifest/" PRODUCT, NULL, -1, -1, 0, &r), 205);
    local_name(fd, anon, sizeof(anon));
    who_is(&F.manifest_who, GW_COAP_REQUESTER_ANONYMOUS, anon);
    CU_ASSERT_EQUAL(raw_get_q(fd, path, NULL, -1, 0, 6, &r), 205);
    who_is(&F.artifact_who, GW_COAP_REQUESTER_ANONYMOUS, anon);
    /* A node names itself with n=, among other query options. */
    const char *const named[] = {"x=1", "n=meter-0042", NULL};
    CU_ASSERT_EQUAL(raw_get_q(fd, "ferry/manifest/" PRODUCT, named, -1, -1, 0, &r), 205);
    who_is(&F.manifest_who, GW_COAP_REQUESTER_DECLARED, "meter-0042");
    CU_ASSERT(r.plen == strlen(F.envelope) && memcmp(r.payload, F.envelope, r.plen) == 0);
    CU_ASSERT_EQUAL(raw_get_q(fd, path, named + 1, -1, 1, 6, &r), 205);
    who_is(&F.artifact_who, GW_COAP_REQUESTER_DECLARED, "meter-0042");
    CU_ASSERT(r.plen == 1024 && memcmp(r.payload, F.art + 1024, 1024) == 0);
    /* Also on paths without a resource yet. */
    CU_ASSERT_EQUAL(raw_get_q(fd, "ferry/manifest/valve", named + 1, -1, -1, 0, &r), 205);
    who_is(&F.manifest_who, GW_COAP_REQUESTER_DECLARED, "meter-0042");
    /* A bad n= is refused by name, before any hook is asked. */
    const char *const bad[][3] = {{"n=../x", NULL}, {"n=", NULL}, {"n=a", "n=a", NULL}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int calls = F.manifest_calls + F.artifact_calls;
        CU_ASSERT_EQUAL(raw_get_q(fd, "ferry/manifest/" PRODUCT, bad[i], -1, -1, 0, &r), 400);
        CU_ASSERT(r.plen > 0 && memmem(r.payload, r.plen, "n=", 2) != NULL);
        CU_ASSERT_EQUAL(raw_get_q(fd, path, bad[i], -1, 0, 6, &r), 400);
        CU_ASSERT_EQUAL(F.manifest_calls + F.artifact_calls, calls);
    }
    /* The hooks may withhold an artifact from a node: 4.03, nothing mapped. */
    F.withheld = true;
    int mapped = F.complete;
    CU_ASSERT_EQUAL(raw_get_q(fd, path, named + 1, -1, 2, 6, &r), 403);
    CU_ASSERT_EQUAL(F.complete, mapped);
    F.withheld = false;
    CU_ASSERT_EQUAL(raw_get_q(fd, path, named + 1, -1, 2, 6, &r), 205);
    close(fd);
    stop_server();
}

static void release_meter_second(void *arg)
{
    (void)arg;
    F.manifest_who.id[0] = '\0';
    snprintf(F.envelope, sizeof(F.envelope), "{\"release\":\"second\"}");
    CU_ASSERT(gw_coap_manifest_changed(srv, PRODUCT) == FERRY_OK);
}

static void a_notification_asks_for_its_observer(void)
{
    start_server(2, NULL);
    int fd = raw_socket();
    struct resp r;
    const char *const q[] = {"n=meter-7", NULL};
    CU_ASSERT_EQUAL(raw_get_q(fd, "ferry/manifest/" PRODUCT, q, 0, -1, 0, &r), 205);
    CU_ASSERT(r.observe >= 0);
    CU_ASSERT_FATAL(ferry_loop_timer(loop, 100, release_meter_second, NULL) != 0);
    struct raw_wait w = {.fd = fd, .r = &r};
    CU_ASSERT_FATAL(run_until(raw_got, &w, 3000));
    parse_resp(&r);
    CU_ASSERT_EQUAL(r.code, 205);
    CU_ASSERT(r.plen == strlen(F.envelope) && memcmp(r.payload, F.envelope, r.plen) == 0);
    /* The hook was asked for this observer, by the name it registered with. */
    who_is(&F.manifest_who, GW_COAP_REQUESTER_DECLARED, "meter-7");
    close(fd);
    stop_server();
}

#define NODE_KEY     "secret-key-node1" /* 16 bytes, as coap-client takes them */
#define NODE_KEY_HEX "7365637265742d6b65792d6e6f646531"

static void dtls_with_per_node_keys(void)
{
    char psk[512];
    snprintf(psk, sizeof(psk), "%s/psk.txt", ferry_test_tmpdir());
    const char *keys = "# test keys\nnode-1 " NODE_KEY_HEX "\nnode-2 " NODE_KEY_HEX "ff\n";
    CU_ASSERT_FATAL(ferry_write_atomic(psk, keys, strlen(keys), 0600, NULL) == FERRY_OK);
    start_server(2, psk);
    const char *good[] = {"-u", "node-1", "-k", NODE_KEY, NULL};
    CU_ASSERT(stock_download_matches("coaps", good, 1024));
    char json[FERRY_STATUS_MAX_BYTES];
    status_json(json, sizeof(json), "node-1", 3);
    free(post_status("coaps", good, "50", "-e", json, NULL));
    CU_ASSERT_EQUAL(F.status_calls, 1);
    CU_ASSERT(!F.identity_null);
    CU_ASSERT_STRING_EQUAL(F.identity, "node-1");
    who_is(&F.artifact_who, GW_COAP_REQUESTER_PSK, "node-1");
    /* Over DTLS the identity is the key's: n= may repeat it, not change it. */
    char u[256];
    uri(u, sizeof(u), "coaps", "ferry/manifest/" PRODUCT "?n=node-1");
    const char *same[] = {
        "coap-client-openssl", "-B", "20", "-u", "node-1", "-k", NODE_KEY, u, NULL};
    int code = 0;
    char *got = run_client(same, &code);
    CU_ASSERT(contains(got, "{\"release\":\"first\"}"));
    who_is(&F.manifest_who, GW_COAP_REQUESTER_PSK, "node-1");
    free(got);
    int calls = F.manifest_calls;
    uri(u, sizeof(u), "coaps", "ferry/manifest/" PRODUCT "?n=node-2");
    got = run_client(same, &code);
    CU_ASSERT(contains(got, "4.03"));
    CU_ASSERT(contains(got, "n=node-2"));
    CU_ASSERT_EQUAL(F.manifest_calls, calls);
    free(got);

    const char *wrong_key[] = {"-u", "node-1", "-k", "secret-key-nodeX", NULL};
    const char *unknown[] = {"-u", "node-9", "-k", NODE_KEY, NULL};
    client_wait = "4";
    /* The handshake fails, so the stock client has nothing to send on. */
    const char *const *refused[] = {wrong_key, unknown};
    for (size_t i = 0; i < 2; i++) {
        char *out = post_status("coaps", refused[i], "50", "-e", json, NULL);
        CU_ASSERT(contains(out, "cannot send CoAP pdu"));
        free(out);
    }
    CU_ASSERT_EQUAL(F.status_calls, 1);
    /* Plain CoAP is not spoken on a DTLS port. */
    free(post_status("coap", NULL, "50", "-e", json, NULL));
    CU_ASSERT_EQUAL(F.status_calls, 1);
    client_wait = "20";
    stop_server();
}

static void setup_errors_are_named(void)
{
    fake_reset();
    CU_ASSERT_FATAL(ferry_loop_new(&loop, NULL) == FERRY_OK);
    struct gw_coap_hooks h = {.arg = &F,
                              .manifest = fake_manifest,
                              .artifact = fake_artifact,
                              .artifact_map = fake_artifact_map,
                              .artifact_release = fake_release,
                              .status = fake_status};
    struct gw_coap_opts o = {.addr = "localhost", .max_downloads = 1};
    struct gw_coap *s = NULL, *s2 = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_coap_new(loop, &o, &h, &s, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT(contains(d.msg, "'localhost'"));
    o.addr = "127.0.0.1";
    o.max_downloads = 0;
    CU_ASSERT_EQUAL(gw_coap_new(loop, &o, &h, &s, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT(contains(d.msg, "max_downloads"));
    o.max_downloads = 1;
    h.status = NULL;
    CU_ASSERT_EQUAL(gw_coap_new(loop, &o, &h, &s, &d), FERRY_E_INVALID_ARG);
    h.status = fake_status;
    char missing[512];
    snprintf(missing, sizeof(missing), "%s/no-such-psk.txt", ferry_test_tmpdir());
    o.psk_file = missing;
    CU_ASSERT_EQUAL(gw_coap_new(loop, &o, &h, &s, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT(contains(d.msg, "no-such-psk.txt"));
    CU_ASSERT_PTR_NULL(s);
    o.psk_file = NULL;
    CU_ASSERT_FATAL(gw_coap_new(loop, &o, &h, &s, &d) == FERRY_OK);
    o.port = gw_coap_port(s);
    CU_ASSERT_EQUAL(gw_coap_new(loop, &o, &h, &s2, &d), FERRY_E_IO);
    CU_ASSERT(contains(d.msg, "cannot listen"));
    CU_ASSERT_PTR_NULL(s2);
    CU_ASSERT_EQUAL(gw_coap_manifest_changed(s, "../x"), FERRY_E_INVALID_ARG);
    gw_coap_artifact_removed(s, F.sha); /* unknown: ignored */
    gw_coap_free(s);
    gw_coap_free(NULL);
    ferry_loop_free(loop);
    loop = NULL;
}

const struct ferry_test_case ferry_tests[] = {
    {"stock_client_downloads_at_every_block_size", stock_client_downloads_at_every_block_size},
    {"well_known_core_lists_every_resource", well_known_core_lists_every_resource},
    {"wrong_paths_and_methods_are_refused", wrong_paths_and_methods_are_refused},
    {"status_json_and_cbor_reach_the_hook", status_json_and_cbor_reach_the_hook},
    {"bad_status_records_are_refused_and_serving_goes_on",
     bad_status_records_are_refused_and_serving_goes_on},
    {"status_hook_answers_map_to_codes", status_hook_answers_map_to_codes},
    {"fetching_and_unknown_artifacts", fetching_and_unknown_artifacts},
    {"observers_hear_of_a_new_manifest", observers_hear_of_a_new_manifest},
    {"a_product_without_a_release_stays_observed", a_product_without_a_release_stays_observed},
    {"products_without_a_release_are_capped", products_without_a_release_are_capped},
    {"one_node_holds_one_slot_however_many_sessions",
     one_node_holds_one_slot_however_many_sessions},
    {"one_host_s_anonymous_clients_share_one_slot", one_host_s_anonymous_clients_share_one_slot},
    {"the_last_block_first_is_no_way_around_the_limit",
     the_last_block_first_is_no_way_around_the_limit},
    {"a_holder_yields_its_turn_while_others_wait", a_holder_yields_its_turn_while_others_wait},
    {"non_answers_wait_for_the_link_budget", non_answers_wait_for_the_link_budget},
    {"con_beyond_the_link_budget_gets_5_03", con_beyond_the_link_budget_gets_5_03},
    {"observations_are_capped_per_session_and_in_all",
     observations_are_capped_per_session_and_in_all},
    {"a_node_observing_from_a_new_session_ends_the_old_one",
     a_node_observing_from_a_new_session_ends_the_old_one},
    {"many_request_tags_keep_nothing", many_request_tags_keep_nothing},
    {"waiting_products_are_released", waiting_products_are_released},
    {"one_download_at_a_time_refuses_the_second_node",
     one_download_at_a_time_refuses_the_second_node},
    {"a_node_may_start_at_any_block", a_node_may_start_at_any_block},
    {"without_block2_the_answer_is_block_0_or_the_whole",
     without_block2_the_answer_is_block_0_or_the_whole},
    {"three_stock_downloads_in_a_row_with_one_slot", three_stock_downloads_in_a_row_with_one_slot},
    {"the_answer_is_released_after_idle_time", the_answer_is_released_after_idle_time},
    {"bogus_block2_options_are_refused", bogus_block2_options_are_refused},
    {"the_hooks_learn_who_is_asking", the_hooks_learn_who_is_asking},
    {"a_notification_asks_for_its_observer", a_notification_asks_for_its_observer},
    {"dtls_with_per_node_keys", dtls_with_per_node_keys},
    {"setup_errors_are_named", setup_errors_are_named},
    {NULL, NULL},
};

const char *const ferry_suite_name = "gw_coap";
