#include "ferry_opts.h"

#include "ferry_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(cfg, opt, type) ((type *)((char *)(cfg) + (opt)->offset))

void ferry_kv_free(struct ferry_kv *kv, size_t n)
{
    if (!kv)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        for (size_t j = 0; j < kv[i].nvals; j++)
            free(kv[i].vals[j]);
        free(kv[i].vals);
    }
    free(kv);
}

enum ferry_err ferry_parse_u64(const char *s, uint64_t *out)
{
    if (!s[0] || s[0] < '0' || s[0] > '9')
        return FERRY_E_INVALID_ARG;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return FERRY_E_INVALID_ARG;
    *out = v;
    return FERRY_OK;
}

enum ferry_err ferry_parse_duration(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 20)
        return FERRY_E_INVALID_ARG;
    char num[24];
    memcpy(num, s, len + 1);
    int64_t mult = 1;
    switch (num[len - 1]) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    default:
        mult = 0;
        break;
    }
    if (mult)
        num[len - 1] = 0;
    else
        mult = 1;
    uint64_t v;
    if (ferry_parse_u64(num, &v) != FERRY_OK || v > (uint64_t)INT64_MAX / (uint64_t)mult)
        return FERRY_E_INVALID_ARG;
    *out = (int64_t)v * mult;
    return FERRY_OK;
}

static const struct ferry_opt *find_opt(const struct ferry_opt *opts, size_t nopts,
                                        const char *name, size_t name_len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == name_len && strncmp(opts[i].name, name, name_len) == 0)
            return &opts[i];
    }
    return NULL;
}

static void strlist_clear(struct ferry_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static enum ferry_err strlist_push(struct ferry_strlist *l, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        return FERRY_E_NOMEM;
    char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
    if (!nv) {
        free(copy);
        return FERRY_E_NOMEM;
    }
    nv[l->n++] = copy;
    l->v = nv;
    return FERRY_OK;
}

/* Stores one textual value; `what` names the source ("--seq" or "key 'seq'")
 * for the message. */
static enum ferry_err set_value(const struct ferry_opt *o, void *cfg, const char *val,
                                const char *what, struct ferry_diag *d)
{
    switch (o->type) {
    case FERRY_OPT_STR: {
        char *copy = strdup(val);
        if (!copy)
            return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
        free(*FIELD(cfg, o, char *));
        *FIELD(cfg, o, char *) = copy;
        return FERRY_OK;
    }
    case FERRY_OPT_STRLIST:
        if (strlist_push(FIELD(cfg, o, struct ferry_strlist), val) != FERRY_OK)
            return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
        return FERRY_OK;
    case FERRY_OPT_U64: {
        uint64_t v;
        if (ferry_parse_u64(val, &v) != FERRY_OK)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "%s: expected a non-negative integer, got '%s'", what, val);
        *FIELD(cfg, o, uint64_t) = v;
        return FERRY_OK;
    }
    case FERRY_OPT_BOOL:
        if (strcmp(val, "true") == 0)
            *FIELD(cfg, o, bool) = true;
        else if (strcmp(val, "false") == 0)
            *FIELD(cfg, o, bool) = false;
        else
            return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: expected true or false, got '%s'", what,
                              val);
        return FERRY_OK;
    case FERRY_OPT_DURATION: {
        int64_t v;
        if (ferry_parse_duration(val, &v) != FERRY_OK)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "%s: expected a duration such as 90s, 30m, 12h or 7d, got '%s'", what,
                              val);
        *FIELD(cfg, o, int64_t) = v;
        return FERRY_OK;
    }
    case FERRY_OPT_LOGLEVEL: {
        enum ferry_log_level lv;
        if (ferry_log_level_parse(val, &lv) != FERRY_OK)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "%s: expected error, warn, info or debug, got '%s'", what, val);
        *FIELD(cfg, o, enum ferry_log_level) = lv;
        return FERRY_OK;
    }
    }
    return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: unsupported option type", what);
}

static enum ferry_err apply_file(const struct ferry_opt *opts, size_t nopts, void *cfg,
                                 const char *path, ferry_kv_loader loader, bool *seen,
                                 struct ferry_diag *d)
{
    struct ferry_kv *kv = NULL;
    size_t n = 0;
    enum ferry_err err = loader(path, &kv, &n, d);
    if (err != FERRY_OK)
        return err;
    for (size_t i = 0; i < n && err == FERRY_OK; i++) {
        char what[160];
        snprintf(what, sizeof(what), "config %s: key '%s'", path, kv[i].key);
        const struct ferry_opt *o = find_opt(opts, nopts, kv[i].key, strlen(kv[i].key));
        if (!o) {
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: unknown key", what);
            break;
        }
        if (o->type != FERRY_OPT_STRLIST && kv[i].nvals != 1) {
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: expected a single value", what);
            break;
        }
        seen[o - opts] = true;
        for (size_t j = 0; j < kv[i].nvals && err == FERRY_OK; j++)
            err = set_value(o, cfg, kv[i].vals[j], what, d);
    }
    ferry_kv_free(kv, n);
    return err;
}

enum ferry_err ferry_opts_parse(const struct ferry_opt *opts, size_t nopts, void *cfg, int argc,
                                char **argv, int first, ferry_kv_loader loader, bool *help,
                                struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    bool *seen = calloc(nopts + 1, sizeof(bool));
    bool *list_reset = calloc(nopts + 1, sizeof(bool));
    if (!seen || !list_reset) {
        err = ferry_fail(d, FERRY_E_NOMEM, "options: out of memory");
        goto out;
    }
    *help = false;

    /* First pass: --help and --config, so the file is applied before flags. */
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = true;
            goto out;
        }
    }
    for (int i = first; i < argc; i++) {
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                err = ferry_fail(d, FERRY_E_INVALID_ARG, "--config: expected a FILE");
                goto out;
            }
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
        if (!path)
            continue;
        if (!loader) {
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "--config is not supported here");
            goto out;
        }
        err = apply_file(opts, nopts, cfg, path, loader, seen, d);
        if (err != FERRY_OK)
            goto out;
    }

    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "unexpected argument '%s'", arg);
            goto out;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        if (name_len == 6 && strncmp(name, "config", 6) == 0) {
            if (!eq)
                i++;
            continue;
        }
        const struct ferry_opt *o = find_opt(opts, nopts, name, name_len);
        if (!o) {
            err =
                ferry_fail(d, FERRY_E_INVALID_ARG, "unknown option '--%.*s'", (int)name_len, name);
            goto out;
        }
        const char *val;
        if (o->type == FERRY_OPT_BOOL && !eq) {
            val = "true";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "--%s: expected a %s", o->name,
                             o->metavar ? o->metavar : "value");
            goto out;
        }
        size_t idx = (size_t)(o - opts);
        if (o->type == FERRY_OPT_STRLIST && !list_reset[idx]) {
            /* Flags replace a list from the file rather than extend it. */
            strlist_clear(FIELD(cfg, o, struct ferry_strlist));
            list_reset[idx] = true;
        }
        char what[96];
        snprintf(what, sizeof(what), "--%s", o->name);
        err = set_value(o, cfg, val, what, d);
        if (err != FERRY_OK)
            goto out;
        seen[idx] = true;
    }

    for (size_t i = 0; i < nopts; i++) {
        if ((opts[i].flags & FERRY_OPT_REQUIRED) && !seen[i]) {
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "missing required option --%s", opts[i].name);
            goto out;
        }
    }
out:
    free(seen);
    free(list_reset);
    return err;
}

void ferry_opts_free(const struct ferry_opt *opts, size_t nopts, void *cfg)
{
    for (size_t i = 0; i < nopts; i++) {
        const struct ferry_opt *o = &opts[i];
        if (o->type == FERRY_OPT_STR) {
            free(*FIELD(cfg, o, char *));
            *FIELD(cfg, o, char *) = NULL;
        } else if (o->type == FERRY_OPT_STRLIST) {
            strlist_clear(FIELD(cfg, o, struct ferry_strlist));
        }
    }
}

void ferry_opts_usage(FILE *out, const struct ferry_opt *opts, size_t nopts)
{
    for (size_t i = 0; i < nopts; i++) {
        char lhs[64];
        const struct ferry_opt *o = &opts[i];
        if (o->type == FERRY_OPT_BOOL)
            snprintf(lhs, sizeof(lhs), "--%s", o->name);
        else
            snprintf(lhs, sizeof(lhs), "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        fprintf(out, "  %-28s %s%s%s\n", lhs, o->help,
                o->type == FERRY_OPT_STRLIST ? " (repeatable)" : "",
                (o->flags & FERRY_OPT_REQUIRED) ? " (required)" : "");
    }
    fprintf(out, "  %-28s %s\n", "--config FILE",
            "JSON object whose keys are these long flags; flags override it");
    fprintf(out, "  %-28s %s\n", "--help", "show this help");
}
