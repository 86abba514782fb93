/* A node's configuration report: its properties file (edge_nodecfg.h,
 * STATE/node.cfg) as the node last read it, sent up as part of its twin so
 * the operator keeps the last good copy of every node's configuration and
 * can restore it (PROTOCOL.md, "Configuration reports").
 *
 *   {"format":1,"node":"node-7","gateway":"gw-1","healthy":true,
 *    "ts":1795780800,"path":"/var/lib/ferry-edge/node.cfg",
 *    "properties":"format=1\nid=node-7\n...crc32=1c291ca3\n"}
 *
 * node is an identifier; gateway an identifier or absent/"" (the node sends
 * none, the gateway fills it); healthy true when the node ran a confirmed
 * image with no update under way as it reported; ts unix seconds; path the
 * absolute path of the file on the node (what a restore replaces);
 * properties its exact bytes, valid UTF-8 without NUL. Cap:
 * FERRY_CONFIG_REPORT_MAX_BYTES encoded, so a report travels in one CoAP
 * datagram like a status record. Unknown keys beginning with "x-" are
 * ignored; others are refused. */
#ifndef FERRY_CONFIG_REPORT_H
#define FERRY_CONFIG_REPORT_H

#include "ferry_err.h"
#include "ferry_names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_CONFIG_REPORT_FORMAT    1
#define FERRY_CONFIG_REPORT_MAX_BYTES 1024
#define FERRY_CONFIG_PATH_MAX         255
#define FERRY_CONFIG_PROPERTIES_MAX   900

struct ferry_config_report {
    char node[FERRY_ID_MAX + 1];
    char gateway[FERRY_ID_MAX + 1];
    bool healthy;
    int64_t ts;
    char path[FERRY_CONFIG_PATH_MAX + 1];
    char properties[FERRY_CONFIG_PROPERTIES_MAX + 1];
};

/* Checks and encodes compact JSON into a new NUL-terminated string the
 * caller frees. FERRY_E_TOO_LARGE above the cap (a properties file too big
 * to report), FERRY_E_INVALID_ARG naming a bad field. */
enum ferry_err ferry_config_report_encode(const struct ferry_config_report *r, char **out,
                                          size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Strict parse; FERRY_E_MALFORMED / FERRY_E_TOO_LARGE naming the field. */
enum ferry_err ferry_config_report_decode(const uint8_t *buf, size_t len,
                                          struct ferry_config_report *out,
                                          struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
