#include "inst_grubenv.h"

#include "ferry_fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGNATURE "# GRUB Environment Block\n"

/* One line of the block: [start, end) without its '\n'. */
struct line {
    const char *start;
    size_t len;
};

/* The next line from *pos (a '\n' after a backslash does not end it). */
static bool next_line(const char *buf, size_t len, size_t *pos, struct line *out)
{
    if (*pos >= len)
        return false;
    size_t i = *pos;
    while (i < len && buf[i] != '\n') {
        if (buf[i] == '\\' && i + 1 < len)
            i++;
        i++;
    }
    out->start = buf + *pos;
    out->len = (i < len ? i : len) - *pos;
    *pos = i + 1;
    return true;
}

static int our_var(const struct line *l)
{
    for (int i = 0; i < INST_ENV_NVARS; i++) {
        size_t n = strlen(INST_ENV_NAMES[i]);
        if (l->len > n && memcmp(l->start, INST_ENV_NAMES[i], n) == 0 && l->start[n] == '=')
            return i;
    }
    return -1;
}

static enum ferry_err check_block(const char *block, size_t len, struct ferry_diag *d)
{
    if (len != INST_GRUBENV_SIZE)
        return ferry_fail(d, FERRY_E_CORRUPT, "grubenv: %zu bytes, a block has %d", len,
                          INST_GRUBENV_SIZE);
    if (memcmp(block, SIGNATURE, sizeof(SIGNATURE) - 1) != 0)
        return ferry_fail(d, FERRY_E_CORRUPT, "grubenv: no '# GRUB Environment Block' signature");
    return FERRY_OK;
}

enum ferry_err inst_grubenv_parse(const char *block, size_t len, struct inst_env_vars *out,
                                  struct ferry_diag *d)
{
    enum ferry_err err = check_block(block, len, d);
    if (err != FERRY_OK)
        return err;
    memset(out, 0, sizeof(*out));
    size_t pos = sizeof(SIGNATURE) - 1;
    struct line l;
    while (next_line(block, len, &pos, &l)) {
        int v = l.len && l.start[0] != '#' ? our_var(&l) : -1;
        if (v < 0)
            continue;
        size_t n = strlen(INST_ENV_NAMES[v]) + 1, o = 0;
        char *val = out->val[v];
        for (size_t i = n; i < l.len && o < INST_ENV_VALUE_MAX; i++) {
            if (l.start[i] == '\\' && i + 1 < l.len)
                i++;
            val[o++] = l.start[i];
        }
        val[o] = '\0';
        out->set[v] = true;
    }
    return FERRY_OK;
}

/* Appends bytes to out at *o, false when they do not fit. */
static bool put(char *out, size_t *o, const char *s, size_t n)
{
    if (*o + n > INST_GRUBENV_SIZE)
        return false;
    memcpy(out + *o, s, n);
    *o += n;
    return true;
}

static bool put_var(char *out, size_t *o, int v, const char *value)
{
    if (!put(out, o, INST_ENV_NAMES[v], strlen(INST_ENV_NAMES[v])) || !put(out, o, "=", 1))
        return false;
    for (const char *p = value; *p; p++) {
        if ((*p == '\\' || *p == '\n') && !put(out, o, "\\", 1))
            return false;
        if (!put(out, o, p, 1))
            return false;
    }
    return put(out, o, "\n", 1);
}

/* A run of '#' to the end of the block: GRUB's padding, not a comment. */
static bool is_padding(const struct line *l, const char *block, size_t len)
{
    for (const char *p = l->start; p < block + len; p++) {
        if (*p != '#' && *p != '\n')
            return false;
    }
    return true;
}

enum ferry_err inst_grubenv_update(const char *block, size_t len, const struct inst_env_vars *vars,
                                   char out[INST_GRUBENV_SIZE], struct ferry_diag *d)
{
    if (block) {
        enum ferry_err err = check_block(block, len, d);
        if (err != FERRY_OK)
            return err;
    }
    size_t o = 0;
    bool done[INST_ENV_NVARS] = {false};
    bool fits = put(out, &o, SIGNATURE, sizeof(SIGNATURE) - 1);
    size_t pos = sizeof(SIGNATURE) - 1;
    struct line l;
    while (fits && block && next_line(block, len, &pos, &l)) {
        if (l.len && l.start[0] == '#' && is_padding(&l, block, len))
            break;
        int v = l.len && l.start[0] != '#' ? our_var(&l) : -1;
        if (v < 0) {
            fits = put(out, &o, l.start, l.len) && put(out, &o, "\n", 1);
        } else if (vars->set[v] && !done[v]) {
            fits = put_var(out, &o, v, vars->val[v]);
            done[v] = true;
        }
    }
    for (int v = 0; fits && v < INST_ENV_NVARS; v++) {
        if (vars->set[v] && !done[v])
            fits = put_var(out, &o, v, vars->val[v]);
    }
    if (!fits)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "grubenv: the variables do not fit in %d bytes",
                          INST_GRUBENV_SIZE);
    memset(out + o, '#', INST_GRUBENV_SIZE - o);
    return FERRY_OK;
}

/* ---- the store ------------------------------------------------------------ */

struct inst_grubenv {
    struct inst_env_store store;
    const struct ferry_io *io; /* NULL: the system's */
    char path[PATH_MAX];
    bool create;
};

/* The block on disk; *block NULL when the file is missing and may be. */
static enum ferry_err read_block(const struct inst_grubenv *g, char **block, size_t *len,
                                 struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    enum ferry_err err = ferry_read_file_io(g->io, g->path, INST_GRUBENV_SIZE, &buf, len, d);
    if (err == FERRY_E_NOT_FOUND && g->create) {
        *block = NULL;
        *len = 0;
        return FERRY_OK;
    }
    if (err == FERRY_E_TOO_LARGE)
        err = ferry_fail(d, FERRY_E_CORRUPT, "%s: larger than a %d-byte block", g->path,
                         INST_GRUBENV_SIZE);
    else if (err != FERRY_OK)
        ferry_diag_prefix(d, "grubenv");
    if (err == FERRY_OK)
        *block = (char *)buf;
    return err;
}

static enum ferry_err ge_load(void *ctx, struct inst_env_vars *out, struct ferry_diag *d)
{
    struct inst_grubenv *g = ctx;
    char *block = NULL;
    size_t len = 0;
    enum ferry_err err = read_block(g, &block, &len, d);
    if (err != FERRY_OK)
        return err;
    if (!block) {
        memset(out, 0, sizeof(*out));
        return FERRY_OK;
    }
    err = inst_grubenv_parse(block, len, out, d);
    free(block);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, g->path);
    return err;
}

static enum ferry_err ge_store(void *ctx, const struct inst_env_vars *vars, struct ferry_diag *d)
{
    struct inst_grubenv *g = ctx;
    char *block = NULL;
    size_t len = 0;
    char out[INST_GRUBENV_SIZE];
    enum ferry_err err = read_block(g, &block, &len, d);
    if (err == FERRY_OK)
        err = inst_grubenv_update(block, len, vars, out, d);
    free(block);
    if (err == FERRY_OK)
        err = ferry_write_atomic_io(g->io, g->path, out, sizeof(out), 0644, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, g->path);
    return err;
}

static const struct inst_env_ops GRUBENV_OPS = {.load = ge_load, .store = ge_store};

enum ferry_err inst_grubenv_open(const char *path, bool create, struct inst_grubenv **out,
                                 struct ferry_diag *d)
{
    return inst_grubenv_open_io(NULL, path, create, out, d);
}

enum ferry_err inst_grubenv_open_io(const struct ferry_io *io, const char *path, bool create,
                                    struct inst_grubenv **out, struct ferry_diag *d)
{
    if (!path || !path[0] || strlen(path) >= PATH_MAX - 32)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "grubenv: path missing or too long");
    struct inst_grubenv *g = calloc(1, sizeof(*g));
    if (!g)
        return ferry_fail(d, FERRY_E_NOMEM, "grubenv: out of memory");
    snprintf(g->path, sizeof(g->path), "%s", path);
    g->create = create;
    g->io = io;
    g->store.ops = &GRUBENV_OPS;
    g->store.ctx = g;
    struct inst_env_vars probe;
    enum ferry_err err = ge_load(g, &probe, d);
    if (err != FERRY_OK) {
        free(g);
        return err;
    }
    *out = g;
    return FERRY_OK;
}

void inst_grubenv_free(struct inst_grubenv *g)
{
    free(g);
}

const struct inst_env_store *inst_grubenv_store(const struct inst_grubenv *g)
{
    return &g->store;
}
