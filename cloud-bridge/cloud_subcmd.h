/* What the long-running ferry-cloud subcommands (publish, serve, status)
 * share: option parsing with --help and --config, the one-line error form
 * and exit statuses of cloud_cli.h, and the MQTT connection flags (those of
 * the session keeper, ferry_keeper.h, as every MQTT program takes them).
 *
 * Exit statuses: 0 success, CLOUD_EXIT_FAILED when the operation failed,
 * CLOUD_EXIT_USAGE for a bad or missing flag. */
#ifndef FERRY_CLOUD_SUBCMD_H
#define FERRY_CLOUD_SUBCMD_H

#include "ferry_err.h"
#include "ferry_log.h"
#include "ferry_keeper.h"
#include "ferry_opts.h"

#include <stddef.h>

#define CLOUD_EXIT_FAILED 1
#define CLOUD_EXIT_USAGE  2

/* One entry of an option table pointing into `struct cfgtype`. */
#define CLOUD_OPT(cfgtype, name, type, field, metavar, help, flags)                                \
    {                                                                                              \
        name, type, offsetof(struct cfgtype, field), metavar, help, flags                          \
    }
#define CLOUD_OPT_LOG_LEVEL(cfgtype)                                                               \
    CLOUD_OPT(cfgtype, "log-level", FERRY_OPT_LOGLEVEL, log_level, "LEVEL",                        \
              "error, warn, info or debug", 0)

/* The broker flags, for a config struct that embeds a struct
 * ferry_keeper_conf as `mqtt`; checked with ferry_keeper_conf_check(). */
#define CLOUD_OPT_MQTT(cfgtype) FERRY_KEEPER_OPTS(cfgtype, mqtt)

struct cloud_subcmd {
    const char *name;     /* "publish" */
    const char *synopsis; /* flags after the name, for the usage line */
    const char *about;
    const struct ferry_opt *opts;
    size_t nopts;
};

/* Parses argv[1..] into cfg (flags and --config FILE) and starts logging at
 * *level (read after parsing, so the flag applies). Returns -1 when the
 * command should run, else the exit status to return at once (0 after
 * --help, CLOUD_EXIT_USAGE after reporting a bad flag). */
int cloud_subcmd_parse(const struct cloud_subcmd *c, void *cfg, const enum ferry_log_level *level,
                       int argc, char **argv);

/* Prints "ferry-cloud <cmd>: <message>" on stderr (plus a pointer to --help
 * for CLOUD_EXIT_USAGE) and returns status. */
int cloud_subcmd_report(const struct cloud_subcmd *c, const struct ferry_diag *d,
                        enum ferry_err err, int status);

#endif
