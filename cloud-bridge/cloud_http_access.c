#include "cloud_http_access.h"

#include "ferry_fs.h"
#include "ferry_names.h"
#include "ferry_sha256.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define TOKEN_FILE_MAX (64 * 1024)

struct token {
    char name[CLOUD_HTTP_TOKEN_NAME_MAX + 1];
    uint8_t digest[FERRY_SHA256_LEN];
};

struct cloud_http_tokens {
    struct token v[CLOUD_HTTP_TOKENS_MAX];
    size_t n;
};

static bool token_char(char c)
{
    return c > 0x20 && c < 0x7f;
}

/* One line (NUL-terminated, no newline) into t; "" and comments skipped. */
static enum ferry_err parse_line(const char *path, unsigned lineno, char *line,
                                 struct cloud_http_tokens *t, struct ferry_diag *d)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    while (*line == ' ' || *line == '\t')
        line++;
    if (!line[0] || line[0] == '#')
        return FERRY_OK;
    if (t->n == CLOUD_HTTP_TOKENS_MAX)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "%s: more than %d tokens", path,
                          CLOUD_HTTP_TOKENS_MAX);
    struct token *k = &t->v[t->n];
    const char *token = line;
    char *colon = strchr(line, ':');
    if (colon) {
        *colon = '\0';
        if (!ferry_id_valid(line) || strlen(line) > CLOUD_HTTP_TOKEN_NAME_MAX)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "%s line %u: the name before ':' must be an identifier of at most "
                              "%d bytes",
                              path, lineno, CLOUD_HTTP_TOKEN_NAME_MAX);
        snprintf(k->name, sizeof(k->name), "%s", line);
        token = colon + 1;
    } else {
        snprintf(k->name, sizeof(k->name), "token-%u", lineno);
    }
    size_t n = strlen(token);
    if (n < CLOUD_HTTP_TOKEN_MIN || n > CLOUD_HTTP_TOKEN_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "%s line %u: a token is %d..%d bytes, this one %zu (make one with "
                          "'openssl rand -hex 32')",
                          path, lineno, CLOUD_HTTP_TOKEN_MIN, CLOUD_HTTP_TOKEN_MAX, n);
    for (size_t i = 0; i < n; i++) {
        if (!token_char(token[i]))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "%s line %u: a token is printable ASCII without spaces", path,
                              lineno);
    }
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].name, k->name) == 0)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "%s line %u: the name '%s' is taken", path,
                              lineno, k->name);
    }
    ferry_sha256(token, n, k->digest);
    t->n++;
    return FERRY_OK;
}

enum ferry_err cloud_http_tokens_load(const char *path, struct cloud_http_tokens **out,
                                      struct ferry_diag *d)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "token file %s: no such file", path);
    if (st.st_mode & (S_IROTH | S_IWOTH))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "token file %s: readable or writable by others (chmod o-rwx %s)", path,
                          path);
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(path, TOKEN_FILE_MAX, &buf, &len, d);
    if (err != FERRY_OK)
        return err;
    struct cloud_http_tokens *t = calloc(1, sizeof(*t));
    if (!t) {
        free(buf);
        return ferry_fail(d, FERRY_E_NOMEM, "token file %s: out of memory", path);
    }
    if (memchr(buf, '\0', len))
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "token file %s: holds a NUL byte", path);
    char *line = (char *)buf;
    for (unsigned lineno = 1; err == FERRY_OK && line && *line; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        err = parse_line(path, lineno, line, t, d);
        line = nl ? nl + 1 : NULL;
    }
    explicit_bzero(buf, len);
    free(buf);
    if (err == FERRY_OK && t->n == 0)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "token file %s: no token in it", path);
    if (err != FERRY_OK) {
        cloud_http_tokens_free(t);
        return err;
    }
    *out = t;
    return FERRY_OK;
}

void cloud_http_tokens_free(struct cloud_http_tokens *t)
{
    if (t)
        explicit_bzero(t, sizeof(*t));
    free(t);
}

bool cloud_http_tokens_match(const struct cloud_http_tokens *t, const char *token, size_t len,
                             const char **name)
{
    if (!t)
        return false;
    uint8_t digest[FERRY_SHA256_LEN];
    ferry_sha256(token, len, digest);
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < t->n; i++) {
        volatile uint8_t diff = 0;
        for (size_t k = 0; k < FERRY_SHA256_LEN; k++)
            diff |= digest[k] ^ t->v[i].digest[k];
        /* Every token is compared whichever matches. */
        if (diff == 0 && found == SIZE_MAX)
            found = i;
    }
    if (found == SIZE_MAX)
        return false;
    if (name)
        *name = t->v[found].name;
    return true;
}

bool cloud_http_reads_need_token(const struct cloud_http_access *a)
{
    return a->read || !a->loopback;
}

enum cloud_http_verdict cloud_http_authorize(const struct cloud_http_access *a,
                                             enum cloud_http_right right, const char *authorization,
                                             const char **who)
{
    *who = "";
    if (right == CLOUD_HTTP_ACT && !a->act)
        return CLOUD_HTTP_ACTIONS_OFF;
    if (right == CLOUD_HTTP_READ && !cloud_http_reads_need_token(a))
        return CLOUD_HTTP_ALLOWED;
    if (!authorization || !authorization[0])
        return CLOUD_HTTP_NO_TOKEN;
    /* RFC 6750: "Bearer" (any case), one or more spaces, the token. */
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return CLOUD_HTTP_BAD_TOKEN;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    while (len && token[len - 1] == ' ')
        len--;
    if (cloud_http_tokens_match(a->act, token, len, who))
        return CLOUD_HTTP_ALLOWED;
    if (cloud_http_tokens_match(a->read, token, len, who))
        return right == CLOUD_HTTP_READ ? CLOUD_HTTP_ALLOWED : CLOUD_HTTP_READ_ONLY;
    *who = "";
    return CLOUD_HTTP_BAD_TOKEN;
}

/* ---- where it listens --------------------------------------------------------------------- */

static bool parse_port(const char *s, unsigned *port)
{
    unsigned long v = 0;
    if (!*s || strlen(s) > 5)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return false;
    *port = (unsigned)v;
    return true;
}

enum ferry_err cloud_http_addr_parse(const char *spec, struct cloud_http_addr *out,
                                     struct ferry_diag *d)
{
    char host[CLOUD_HTTP_ADDR_TEXT];
    const char *port_text;
    memset(out, 0, sizeof(*out));
    if (!spec || !spec[0] || strlen(spec) >= sizeof(host))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--http: expected ADDR:PORT, got '%.80s'",
                          spec ? spec : "");
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':')
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "--http '%s': an IPv6 address is written [ADDR]:PORT", spec);
        snprintf(host, sizeof(host), "%.*s", (int)(end - spec - 1), spec + 1);
        port_text = end + 2;
    } else if (strchr(spec, ':')) {
        const char *colon = strrchr(spec, ':');
        snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
        port_text = colon + 1;
        if (strchr(host, ':'))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "--http '%s': an IPv6 address is written [ADDR]:PORT", spec);
    } else {
        host[0] = '\0';
        port_text = spec;
    }
    unsigned port = 0;
    if (!parse_port(port_text, &port))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--http '%s': the port must be 0..65535", spec);
    if (!host[0] || strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len = sizeof(*v4);
        out->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        snprintf(out->text, sizeof(out->text), "%s:%u", host, port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*v6);
        out->ipv6 = true;
        const uint8_t *b = v6->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        out->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) ||
                        (memcmp(b, mapped, sizeof(mapped)) == 0 && b[12] == 127);
        snprintf(out->text, sizeof(out->text), "[%s]:%u", host, port);
    } else {
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--http '%s': '%s' is not a numeric address (or localhost)", spec, host);
    }
    return FERRY_OK;
}

enum ferry_err cloud_http_listen_check(const struct cloud_http_addr *a, bool tls, bool insecure,
                                       bool act_tokens, bool read_tokens, struct ferry_diag *d)
{
    if (!a->loopback && !tls && !insecure)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--http %s is not a loopback address: serve HTTPS there (--http-cert "
                          "and --http-key), or say --http-insecure",
                          a->text);
    if (!a->loopback && !act_tokens && !read_tokens)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--http %s is not a loopback address: reads there need a token "
                          "(--http-read-token-file or --http-token-file)",
                          a->text);
    return FERRY_OK;
}
