#include "ferry_coapglue.h"

#include "ferry_bytes.h"
#include "ferry_fs.h"
#include "ferry_hex.h"

#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

/* ---- the library --------------------------------------------------------- */

static unsigned users; /* ferry_coapglue_up() without its _down() */

static void log_bridge(coap_log_t level, const char *message)
{
    /* libcoap's levels are syslog's. */
    enum ferry_log_level l = level <= LOG_ERR       ? FERRY_LOG_ERROR
                             : level == LOG_WARNING ? FERRY_LOG_WARN
                             : level <= LOG_INFO    ? FERRY_LOG_INFO
                                                    : FERRY_LOG_DEBUG;
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        n--;
    ferry_log(l, "coap: %.*s", (int)n, message);
}

void ferry_coapglue_up(void)
{
    if (users++ > 0)
        return;
    coap_startup();
    coap_set_log_handler(log_bridge);
    coap_set_log_level(ferry_log_enabled(FERRY_LOG_DEBUG) ? LOG_INFO : LOG_WARNING);
}

void ferry_coapglue_down(void)
{
    if (users > 0 && --users == 0)
        coap_cleanup();
}

/* ---- the loop ------------------------------------------------------------ */

void ferry_coapglue_io_process(struct ferry_coapglue_io *io)
{
    io->in_pass = true;
    coap_io_process(io->ctx, COAP_IO_NO_WAIT);
    io->in_pass = false;
    if (io->after_pass)
        io->after_pass(io->arg);
}

static void on_fd(void *arg, uint32_t events)
{
    (void)events;
    ferry_coapglue_io_process(arg);
}

static void on_kick(void *arg)
{
    struct ferry_coapglue_io *io = arg;
    io->kick_timer = 0;
    ferry_coapglue_io_process(io);
}

enum ferry_err ferry_coapglue_io_start(struct ferry_coapglue_io *io, struct ferry_loop *loop,
                                       coap_context_t *ctx, ferry_coapglue_pass_cb after_pass,
                                       void *arg, struct ferry_diag *d)
{
    memset(io, 0, sizeof(*io));
    io->loop = loop;
    io->ctx = ctx;
    io->after_pass = after_pass;
    io->arg = arg;
    io->fd = coap_context_get_coap_fd(ctx);
    if (io->fd < 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: libcoap was built without epoll");
    if (ferry_loop_add_fd(loop, io->fd, EPOLLIN, on_fd, io) != FERRY_OK)
        return ferry_fail(d, FERRY_E_IO, "coap: cannot watch libcoap's descriptor");
    io->registered = true;
    return FERRY_OK;
}

void ferry_coapglue_io_stop(struct ferry_coapglue_io *io)
{
    if (io->registered)
        ferry_loop_del_fd(io->loop, io->fd);
    io->registered = false;
    if (io->kick_timer)
        ferry_loop_cancel(io->loop, io->kick_timer);
    io->kick_timer = 0;
}

void ferry_coapglue_io_kick(struct ferry_coapglue_io *io)
{
    if (io->registered && !io->kick_timer)
        io->kick_timer = ferry_loop_timer(io->loop, 0, on_kick, io);
}

bool ferry_coapglue_io_in_pass(const struct ferry_coapglue_io *io)
{
    return io->in_pass;
}

/* ---- options --------------------------------------------------------------- */

static const char *option_name(coap_option_num_t opt)
{
    switch (opt) {
    case COAP_OPTION_BLOCK1:
        return "Block1";
    case COAP_OPTION_BLOCK2:
        return "Block2";
    case COAP_OPTION_SIZE1:
        return "Size1";
    case COAP_OPTION_SIZE2:
        return "Size2";
    case COAP_OPTION_MAXAGE:
        return "Max-Age";
    case COAP_OPTION_CONTENT_FORMAT:
        return "Content-Format";
    case COAP_OPTION_ETAG:
        return "ETag";
    case COAP_OPTION_OBSERVE:
        return "Observe";
    default:
        return "an option";
    }
}

/* The one occurrence of opt in pdu: NULL when absent, *twice when repeated. */
static coap_opt_t *only_option(const coap_pdu_t *pdu, coap_option_num_t opt, bool *twice)
{
    coap_opt_filter_t f;
    coap_option_filter_clear(&f);
    coap_option_filter_set(&f, opt);
    coap_opt_iterator_t it;
    if (!coap_option_iterator_init(pdu, &it, &f))
        return NULL;
    coap_opt_t *o = coap_option_next(&it);
    *twice = o && coap_option_next(&it) != NULL;
    return o;
}

enum ferry_err ferry_coapglue_get_block(const coap_pdu_t *pdu, coap_option_num_t opt, bool *present,
                                        struct ferry_coapglue_block *b, struct ferry_diag *d)
{
    bool twice = false;
    coap_opt_t *o = only_option(pdu, opt, &twice);
    *present = o != NULL;
    if (!o)
        return FERRY_OK;
    if (twice)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: given twice", option_name(opt));
    uint32_t len = coap_opt_length(o);
    if (len > 3)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "%s: longer than 3 bytes", option_name(opt));
    unsigned v = coap_decode_var_bytes(coap_opt_value(o), len);
    if ((v & 7) == 7)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: SZX 7 (BERT) is for TCP only",
                          option_name(opt));
    b->num = v >> 4;
    b->szx = v & 7;
    b->more = (v & 8) != 0;
    return FERRY_OK;
}

bool ferry_coapglue_add_block(coap_pdu_t *pdu, coap_option_num_t opt,
                              const struct ferry_coapglue_block *b)
{
    if (b->num > FERRY_COAPGLUE_BLOCK_NUM_MAX || b->szx > FERRY_COAPGLUE_SZX_MAX)
        return false;
    return ferry_coapglue_add_uint(pdu, opt, (uint64_t)b->num << 4 | (b->more ? 8u : 0u) | b->szx);
}

bool ferry_coapglue_add_uint(coap_pdu_t *pdu, coap_option_num_t opt, uint64_t v)
{
    uint8_t buf[8];
    return coap_add_option(pdu, opt, coap_encode_var_safe8(buf, sizeof(buf), v), buf) != 0;
}

enum ferry_err ferry_coapglue_get_uint(const coap_pdu_t *pdu, coap_option_num_t opt,
                                       size_t max_bytes, bool *present, uint64_t *v,
                                       struct ferry_diag *d)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(pdu, opt, &it);
    *present = o != NULL;
    *v = 0;
    if (!o)
        return FERRY_OK;
    size_t len = coap_opt_length(o);
    if (len > max_bytes || len > 8)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: %zu bytes, at most %zu", option_name(opt), len,
                          max_bytes);
    *v = coap_decode_var_bytes8(coap_opt_value(o), len);
    return FERRY_OK;
}

uint64_t ferry_coapglue_etag_of(const uint8_t sha[FERRY_SHA256_LEN])
{
    uint64_t v = ferry_get_be64(sha);
    return v ? v : 1;
}

bool ferry_coapglue_add_etag(coap_pdu_t *pdu, const uint8_t sha[FERRY_SHA256_LEN])
{
    return ferry_coapglue_add_uint(pdu, COAP_OPTION_ETAG, ferry_coapglue_etag_of(sha));
}

bool ferry_coapglue_etag_is(const coap_pdu_t *pdu, const uint8_t sha[FERRY_SHA256_LEN])
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(pdu, COAP_OPTION_ETAG, &it);
    if (!o)
        return false;
    uint8_t want[8];
    unsigned n = coap_encode_var_safe8(want, sizeof(want), ferry_coapglue_etag_of(sha));
    return coap_opt_length(o) == n && memcmp(coap_opt_value(o), want, n) == 0;
}

/* ---- who is asking: the n= query ------------------------------------------ */

bool ferry_coapglue_add_node_query(coap_pdu_t *pdu, const char *node)
{
    if (!ferry_id_valid(node))
        return false;
    char q[sizeof(FERRY_COAPGLUE_NODE_QUERY) + FERRY_ID_MAX];
    size_t n = strlen(FERRY_COAPGLUE_NODE_QUERY);
    memcpy(q, FERRY_COAPGLUE_NODE_QUERY, n);
    size_t len = strlen(node);
    memcpy(q + n, node, len);
    return coap_add_option(pdu, COAP_OPTION_URI_QUERY, n + len, (const uint8_t *)q) != 0;
}

enum ferry_err ferry_coapglue_get_node_query(const coap_pdu_t *pdu, char out[FERRY_ID_MAX + 1],
                                             bool *present, struct ferry_diag *d)
{
    const size_t prefix = strlen(FERRY_COAPGLUE_NODE_QUERY);
    coap_opt_filter_t f;
    coap_option_filter_clear(&f);
    coap_option_filter_set(&f, COAP_OPTION_URI_QUERY);
    coap_opt_iterator_t it;
    bool found = false;
    char id[FERRY_ID_MAX + 1] = "";
    if (coap_option_iterator_init(pdu, &it, &f)) {
        for (coap_opt_t *o; (o = coap_option_next(&it));) {
            size_t len = coap_opt_length(o);
            const uint8_t *v = coap_opt_value(o);
            if (len < prefix || memcmp(v, FERRY_COAPGLUE_NODE_QUERY, prefix) != 0)
                continue;
            if (found)
                return ferry_fail(d, FERRY_E_MALFORMED, "query: n= given twice");
            found = true;
            len -= prefix;
            if (len == 0 || len > FERRY_ID_MAX)
                return ferry_fail(d, FERRY_E_MALFORMED,
                                  "query: n= must name a node id of 1..%d characters",
                                  FERRY_ID_MAX);
            memcpy(id, v + prefix, len);
            id[len] = '\0';
            if (strlen(id) != len || !ferry_id_valid(id))
                return ferry_fail(d, FERRY_E_MALFORMED, "query: n= is not a node identifier");
        }
    }
    *present = found;
    if (found)
        memcpy(out, id, strlen(id) + 1);
    return FERRY_OK;
}

/* ---- peers ------------------------------------------------------------------- */

enum ferry_err ferry_coapglue_resolve(const char *uri, const char *what, coap_address_t *dst,
                                      bool *dtls, struct ferry_diag *d)
{
    coap_uri_t u;
    if (!uri || coap_split_uri((const uint8_t *)uri, strlen(uri), &u) < 0 ||
        (u.scheme != COAP_URI_SCHEME_COAP && u.scheme != COAP_URI_SCHEME_COAPS))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: '%.200s' is not a coap:// or coaps:// URI",
                          what, uri ? uri : "");
    char host[256];
    char port[8];
    if (u.host.length == 0 || u.host.length >= sizeof(host))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: '%.200s' has no usable host", what, uri);
    memcpy(host, u.host.s, u.host.length);
    host[u.host.length] = '\0';
    snprintf(port, sizeof(port), "%u", (unsigned)u.port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "%s: cannot resolve '%s': %s", what, host,
                          gai_strerror(rc));
    coap_address_init(dst);
    dst->size = res->ai_addrlen;
    memcpy(&dst->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    *dtls = u.scheme == COAP_URI_SCHEME_COAPS;
    return FERRY_OK;
}

enum ferry_err ferry_coapglue_read_psk(const char *path, uint8_t *key, size_t *key_len,
                                       struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(path, 4096, &buf, &len, d);
    if (err != FERRY_OK)
        return err;
    char hex[2 * FERRY_COAPGLUE_PSK_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < len && err == FERRY_OK; i++) {
        if (isspace(buf[i]))
            continue;
        if (n == sizeof(hex) - 1)
            err = FERRY_E_INVALID_ARG;
        else
            hex[n++] = (char)buf[i];
    }
    hex[n] = '\0';
    explicit_bzero(buf, len);
    free(buf);
    if (err == FERRY_OK &&
        (n % 2 || n < 2 * FERRY_COAPGLUE_PSK_MIN || ferry_hex_decode(hex, key, n / 2) != FERRY_OK))
        err = FERRY_E_INVALID_ARG;
    explicit_bzero(hex, sizeof(hex));
    if (err != FERRY_OK)
        return ferry_fail(d, err, "%s: expected a key of %d..%d bytes in hex", path,
                          FERRY_COAPGLUE_PSK_MIN, FERRY_COAPGLUE_PSK_MAX);
    *key_len = n / 2;
    return FERRY_OK;
}
