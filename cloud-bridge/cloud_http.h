/* The operator's console inside `ferry-cloud serve`: an HTTP API over the
 * fleet inventory and its rollouts, live updates by Server-Sent Events, and
 * one page that uses them. Off unless --http ADDR:PORT is given.
 * docs/api.md documents every resource with an example; README, "The
 * console", says how to run it.
 *
 * Threads. serve has one event loop, which ingests status records; nothing
 * here runs on it but cloud_http_message() (a presence message: a copy
 * under a mutex). libmicrohttpd runs a thread per connection (at most
 * --http-max-connections), and the event stream a watcher thread
 * (cloud_http_events.h). Reads go through a pool of CLOUD_HTTP_READERS
 * read-only connections of their own (cloud_http_sql.h: never serve's),
 * which also bounds how many queries run at once; SQLite's WAL mode (and
 * PostgreSQL's snapshots) let them read while serve writes. An action opens its own
 * read-write connection and runs the rollout command's transaction
 * (cloud_rollout_ops.h), which waits for serve's (BEGIN IMMEDIATE) like any
 * second writer and holds it for a few statements.
 *
 * Priority. Ingestion acknowledges gateways; the console only shows. Every
 * thread here (a connection's, the event stream's watcher) lowers its own
 * scheduling priority to nice CLOUD_HTTP_NICE when it starts (Linux: nice
 * is a thread's own), so on a busy host the page's queries take the CPU
 * that ingestion leaves and never the other way round
 * (bench/README.md, "The console"). And each client address gets a share
 * of the readers' time (cloud_http_share.h: CLOUD_HTTP_SHARE_BURST_US at
 * once, then CLOUD_HTTP_SHARE_PERMILLE of a core): past it, its next read
 * waits, so a client reading back to back cannot take ingestion's CPU.
 *
 * Bounds. Connections (--http-max-connections, half of them per client
 * address), event streams (--http-max-streams), a request's body
 * (FERRY_API_BODY_MAX, refused with 413 before it is read when its
 * Content-Length says so), query parameters (CLOUD_HTTP_PARAMS_MAX), the
 * headers (libmicrohttpd's 32 KiB per connection), idle connections (closed
 * after CLOUD_HTTP_IDLE_S), every list (cloud_http_views.h). Anything
 * refused gets a 4xx with a JSON body naming the problem:
 *   {"status":400,"error":"bad-request","message":"unknown parameter 'x' ..."}
 *
 * Access (who reads, who acts, where it listens): cloud_http_access.h. */
#ifndef FERRY_CLOUD_HTTP_H
#define FERRY_CLOUD_HTTP_H

#include "cloud_subcmd.h"
#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_HTTP_READERS         2
#define CLOUD_HTTP_IDLE_S          60
#define CLOUD_HTTP_MAX_CONNECTIONS 64
#define CLOUD_HTTP_MAX_STREAMS     16
#define CLOUD_HTTP_NICE            10

/* Lowers the calling thread's priority to CLOUD_HTTP_NICE, once per thread
 * (a failure is logged at debug level and changes nothing else). */
void cloud_http_thread_nice(void);

/* The --http flags, as a struct serve's config embeds as `http`. */
struct cloud_http_cfg {
    char *listen; /* --http ADDR:PORT; NULL: off */
    char *cert, *key;
    char *token_file, *read_token_file;
    bool insecure;
    uint64_t max_connections, max_streams;
};

#define CLOUD_OPT_HTTP(cfgtype)                                                                    \
    CLOUD_OPT(cfgtype, "http", FERRY_OPT_STR, http.listen, "ADDR:PORT",                            \
              "serve the console and its HTTP API there (off by default; PORT alone or :PORT "     \
              "is 127.0.0.1:PORT; plain HTTP only on loopback, see --http-cert)",                  \
              0),                                                                                  \
        CLOUD_OPT(cfgtype, "http-cert", FERRY_OPT_STR, http.cert, "FILE",                          \
                  "HTTPS: the server's certificate (PEM, with --http-key)", 0),                    \
        CLOUD_OPT(cfgtype, "http-key", FERRY_OPT_STR, http.key, "FILE",                            \
                  "HTTPS: its private key (PEM)", 0),                                              \
        CLOUD_OPT(cfgtype, "http-token-file", FERRY_OPT_STR, http.token_file, "FILE",              \
                  "bearer tokens that may act on rollouts (and read), one 'NAME:TOKEN' a line; "   \
                  "without it the API only reads",                                                 \
                  0),                                                                              \
        CLOUD_OPT(cfgtype, "http-read-token-file", FERRY_OPT_STR, http.read_token_file, "FILE",    \
                  "bearer tokens that may read; without it reads are open on loopback and need "   \
                  "an action token elsewhere",                                                     \
                  0),                                                                              \
        CLOUD_OPT(cfgtype, "http-insecure", FERRY_OPT_BOOL, http.insecure, NULL,                   \
                  "allow plain HTTP on an address that is not loopback", 0),                       \
        CLOUD_OPT(cfgtype, "http-max-connections", FERRY_OPT_U64, http.max_connections, "N",       \
                  "connections at once (default 64; half of them per client address)", 0),         \
        CLOUD_OPT(cfgtype, "http-max-streams", FERRY_OPT_U64, http.max_streams, "N",               \
                  "live event streams at once (default 16)", 0)

/* Fills the defaults of what the flags leave at zero. */
void cloud_http_cfg_defaults(struct cloud_http_cfg *c);

/* Checks the flags together (no file is read): the address, the listening
 * rules, cert and key together, the bounds. FERRY_E_INVALID_ARG naming the
 * flag. */
enum ferry_err cloud_http_cfg_check(const struct cloud_http_cfg *c,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

struct cloud_http;

/* Starts serving: reads the token, certificate and key files, opens the
 * readers on db (which serve has opened, so it exists) and the store at
 * store (for the releases), binds and starts the threads. Call it after
 * the thread that runs serve's loop has blocked its signals (ferry_loop_new()),
 * so the threads started here never take them. fleet names the presence
 * topic. */
enum ferry_err cloud_http_start(const struct cloud_http_cfg *c, const char *db, const char *store,
                                const char *fleet, struct cloud_http **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Stops every thread and closes every connection. NULL is fine. */
void cloud_http_stop(struct cloud_http *h);

/* The topic filter serve subscribes to for gateway presence
 * (ferry/v1/<fleet>/presence/+), and the messages on it: true when topic
 * was one (handled, or logged and dropped when malformed). Called on serve's
 * loop. */
const char *cloud_http_presence_filter(const struct cloud_http *h);
bool cloud_http_message(struct cloud_http *h, const char *topic, const uint8_t *payload,
                        size_t len);

/* The port it listens on (the one chosen when --http gave port 0). */
unsigned cloud_http_port(const struct cloud_http *h);

#endif
