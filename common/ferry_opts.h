/* Typed configuration from one table: command-line flags and a JSON config
 * file share the same names, the same parsers and the same error messages.
 *
 * A program describes its settings once, as an array of `struct ferry_opt`
 * pointing into its own config struct. ferry_opts_parse() then
 *   1. applies the table's defaults (already in the struct: the caller
 *      initialises it),
 *   2. loads `--config FILE` if given, through the injected loader (the JSON
 *      reader lives in proto/, the only code that touches cJSON), rejecting
 *      unknown keys,
 *   3. applies the flags, which override the file (a list flag given on the
 *      command line replaces the file's list),
 *   4. checks that every FERRY_OPT_REQUIRED setting is present.
 * Every error names the flag or key at fault. Strings and lists that it
 * stores are owned by the config struct; release them with ferry_opts_free().
 */
#ifndef FERRY_OPTS_H
#define FERRY_OPTS_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ferry_opt_type {
    FERRY_OPT_STR,      /* char *, owned */
    FERRY_OPT_STRLIST,  /* struct ferry_strlist, repeatable flag / JSON array */
    FERRY_OPT_U64,      /* uint64_t, decimal */
    FERRY_OPT_BOOL,     /* bool; flag takes no value; JSON true/false */
    FERRY_OPT_DURATION, /* int64_t seconds; "90", "45s", "30m", "12h", "7d" */
    FERRY_OPT_LOGLEVEL, /* enum ferry_log_level */
};

#define FERRY_OPT_REQUIRED 1u

struct ferry_opt {
    const char *name; /* long flag without "--"; also the config file key */
    enum ferry_opt_type type;
    size_t offset;       /* offsetof(config struct, field) */
    const char *metavar; /* shown in --help, e.g. "URL" */
    const char *help;
    unsigned flags;
};

struct ferry_strlist {
    char **v;
    size_t n;
};

/* One setting from a config file: its key and its values as text (a JSON
 * array gives several, true/false give "true"/"false", numbers their digits). */
struct ferry_kv {
    char *key;
    char **vals;
    size_t nvals;
};

/* Loads a flat JSON object into an array of ferry_kv; the caller frees it with
 * ferry_kv_free(). Errors name the key at fault. */
typedef enum ferry_err (*ferry_kv_loader)(const char *path, struct ferry_kv **out, size_t *n,
                                          struct ferry_diag *d);

void ferry_kv_free(struct ferry_kv *kv, size_t n);

/* Parses argv[first..argc) into cfg as described above. *help is set when
 * --help was given (nothing else is then checked). loader may be NULL, in
 * which case --config is refused. */
enum ferry_err ferry_opts_parse(const struct ferry_opt *opts, size_t nopts, void *cfg, int argc,
                                char **argv, int first, ferry_kv_loader loader, bool *help,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Frees what ferry_opts_parse() stored in cfg. */
void ferry_opts_free(const struct ferry_opt *opts, size_t nopts, void *cfg);

/* Prints "  --name METAVAR   help" for every option (plus --config, --help). */
void ferry_opts_usage(FILE *out, const struct ferry_opt *opts, size_t nopts);

/* Parses a duration as FERRY_OPT_DURATION does. */
enum ferry_err ferry_parse_duration(const char *s, int64_t *out) FERRY_MUST_CHECK;

/* Parses a decimal unsigned 64-bit integer, rejecting signs, spaces, overflow. */
enum ferry_err ferry_parse_u64(const char *s, uint64_t *out) FERRY_MUST_CHECK;

#endif
