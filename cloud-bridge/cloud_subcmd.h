/* What the long-running ferry-cloud subcommands (publish, serve, status)
 * share: option parsing with --help and --config, the one-line error form
 * and exit statuses of cloud_cli.h, and the MQTT connection flags.
 *
 * Exit statuses: 0 success, CLOUD_EXIT_FAILED when the operation failed,
 * CLOUD_EXIT_USAGE for a bad or missing flag. */
#ifndef FERRY_CLOUD_SUBCMD_H
#define FERRY_CLOUD_SUBCMD_H

#include "ferry_err.h"
#include "ferry_log.h"
#include "ferry_mqtt.h"
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

/* The broker flags, as a struct a command's config embeds as `mqtt`. */
struct cloud_mqtt_cfg {
    char *broker; /* mqtt://host:port or mqtts://host:port */
    char *ca_file;
    char *cert_file;
    char *key_file;
};
#define CLOUD_OPT_MQTT(cfgtype)                                                                    \
    CLOUD_OPT(cfgtype, "broker", FERRY_OPT_STR, mqtt.broker, "URL",                                \
              "MQTT broker, mqtt://host:port or mqtts://host:port", FERRY_OPT_REQUIRED),           \
        CLOUD_OPT(cfgtype, "ca-file", FERRY_OPT_STR, mqtt.ca_file, "FILE",                         \
                  "mqtts: CA certificate(s) that sign the broker's certificate", 0),               \
        CLOUD_OPT(cfgtype, "cert-file", FERRY_OPT_STR, mqtt.cert_file, "FILE",                     \
                  "mqtts: client certificate (with --key-file)", 0),                               \
        CLOUD_OPT(cfgtype, "key-file", FERRY_OPT_STR, mqtt.key_file, "FILE",                       \
                  "mqtts: the client certificate's private key", 0)

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

/* Checks the TLS flags against the URL's scheme: mqtts:// needs --ca-file,
 * mqtt:// takes none of them, --cert-file and --key-file come together. */
enum ferry_err cloud_mqtt_cfg_check(const struct cloud_mqtt_cfg *m,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Fills o from m (borrowed strings) with the given client id; every other
 * field of o is zeroed (clean start, no will). */
void cloud_mqtt_cfg_apply(const struct cloud_mqtt_cfg *m, const char *client_id,
                          struct ferry_mqtt_opts *o);

#endif
