/* Who may use `ferry-cloud serve --http`, and where it may listen.
 *
 * Two rights. Reading (every GET) and acting (POST a rollout action) are
 * separate:
 *   - acting needs a bearer token from --http-token-file
 *     ("Authorization: Bearer <token>"); without that file nobody acts;
 *   - reading needs a token from --http-read-token-file or from
 *     --http-token-file (who may act may read), except that reads are open
 *     when the server listens on a loopback address and no
 *     --http-read-token-file is given: whoever can connect to 127.0.0.1 is
 *     on the cloud host already. On any other address, reads always need a
 *     token, so at least one token file is required there.
 * A token is compared in constant time: the SHA-256 of what the client
 * sent against the SHA-256 of every token in the files, each comparison
 * over all 32 bytes, every token compared, so neither the position of the
 * first wrong byte nor the token's length shows in the time taken.
 *
 * A token file: one token per line, "NAME:TOKEN" or just "TOKEN" (named
 * "token-<line>"); blank lines and lines starting with '#' are skipped.
 * NAME is an identifier of at most CLOUD_HTTP_TOKEN_NAME_MAX bytes and
 * goes into the rollout's decision log as who acted ("http:<NAME>"); TOKEN
 * is 16..256 printable ASCII bytes without spaces (e.g. `openssl rand -hex
 * 32`). The file must not be readable by others (mode o-rwx); at most
 * CLOUD_HTTP_TOKENS_MAX tokens.
 *
 * Where: --http ADDR:PORT ([V6]:PORT, :PORT or PORT for 127.0.0.1; ADDR
 * numeric or "localhost"; PORT 0 picks a free one). Without TLS
 * (--http-cert and --http-key) it listens on loopback only, unless
 * --http-insecure says a plain-HTTP listener elsewhere is wanted (behind a
 * TLS proxy on the same host, say).
 *
 * Pure but for reading the token files. */
#ifndef FERRY_CLOUD_HTTP_ACCESS_H
#define FERRY_CLOUD_HTTP_ACCESS_H

#include "ferry_err.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define CLOUD_HTTP_TOKEN_NAME_MAX 24
#define CLOUD_HTTP_TOKEN_MIN      16
#define CLOUD_HTTP_TOKEN_MAX      256
#define CLOUD_HTTP_TOKENS_MAX     64
#define CLOUD_HTTP_ADDR_TEXT      64

struct cloud_http_tokens;

enum ferry_err cloud_http_tokens_load(const char *path, struct cloud_http_tokens **out,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_http_tokens_free(struct cloud_http_tokens *t); /* NULL is fine */

/* Whether token (len bytes) is one of t's; *name (may be NULL) gets its
 * name, valid while t lives. t may be NULL (no match). */
bool cloud_http_tokens_match(const struct cloud_http_tokens *t, const char *token, size_t len,
                             const char **name);

enum cloud_http_right {
    CLOUD_HTTP_READ,
    CLOUD_HTTP_ACT,
};

struct cloud_http_access {
    const struct cloud_http_tokens *act;  /* --http-token-file; NULL: nobody acts */
    const struct cloud_http_tokens *read; /* --http-read-token-file; may be NULL */
    bool loopback;                        /* listening on a loopback address */
};

enum cloud_http_verdict {
    CLOUD_HTTP_ALLOWED,
    CLOUD_HTTP_NO_TOKEN,    /* 401: the right needs a token and none came */
    CLOUD_HTTP_BAD_TOKEN,   /* 401: not a token this server knows, or not "Bearer" */
    CLOUD_HTTP_READ_ONLY,   /* 403: a read token, for an action */
    CLOUD_HTTP_ACTIONS_OFF, /* 403: an action, and no --http-token-file */
};

/* The verdict for right given the request's Authorization header (NULL
 * when absent). *who gets the token's name when one was accepted, "" for
 * an open read. */
enum cloud_http_verdict cloud_http_authorize(const struct cloud_http_access *a,
                                             enum cloud_http_right right, const char *authorization,
                                             const char **who);

/* Whether reads need a token under a. */
bool cloud_http_reads_need_token(const struct cloud_http_access *a);

/* ---- where it listens --------------------------------------------------------------------- */

struct cloud_http_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool ipv6;
    bool loopback;
    char text[CLOUD_HTTP_ADDR_TEXT]; /* "127.0.0.1:8080", "[::1]:8080" */
};

/* Parses --http's value (see above). FERRY_E_INVALID_ARG naming what is
 * wrong. */
enum ferry_err cloud_http_addr_parse(const char *spec, struct cloud_http_addr *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* The listening rules: plain HTTP only on loopback unless insecure; reads
 * on another address need a token file. FERRY_E_INVALID_ARG saying which
 * flag is missing. */
enum ferry_err cloud_http_listen_check(const struct cloud_http_addr *a, bool tls, bool insecure,
                                       bool act_tokens, bool read_tokens,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
