/* The node's persistent identity file (STATE/node.cfg): who the node is and
 * where it gets updates. It must stay readable by every Ferry version the
 * node may run, older and newer, since an update or a rollback can change
 * the reader at any boot. Hence plain text:
 *
 *   # comment lines and blank lines are ignored (and not kept by a save)
 *   format=1
 *   id=node-7
 *   product=meter-fw                   (optional; "firmware" when absent)
 *   hw_model=meter-v2
 *   hw_revision=B                      (optional)
 *   gateway=coap://[fd00::1]:5683
 *   trust=/etc/ferry/trust.json        (the operator's keyring file)
 *   tag.ring=canary                    (optional, one line per tag: what a
 *                                       rollout may select the node by,
 *                                       set with ferry-edge --tag ring=canary)
 *   x-anything=kept as it is
 *   crc32=1c291ca3
 *
 * Rules: one key=value per line, '\n' endings; keys are 1..64 of [a-z0-9_.-],
 * values up to EDGE_NODECFG_VALUE_MAX printable bytes (no control
 * characters; '=' allowed). Each key once. The last line is crc32= with 8
 * lower-case hex digits of the CRC-32 over every byte before that line: a
 * file without it, or with anything after it, is corrupt (truncation and
 * stray edits show up). Compatibility: new versions only ever add keys; a
 * reader keeps keys it does not know and writes them back unchanged, in
 * order, and takes any format >= 1 (format records the writer's layout,
 * never a reason for an older reader to give up). */
#ifndef FERRY_EDGE_NODECFG_H
#define FERRY_EDGE_NODECFG_H

#include "ferry_err.h"
#include "ferry_io.h"
#include "ferry_manifest.h"
#include "ferry_names.h"
#include "ferry_nodeinfo.h"

#include <stddef.h>

#define EDGE_NODECFG_FORMAT    1
#define EDGE_NODECFG_MAX_BYTES 16384
#define EDGE_NODECFG_VALUE_MAX 1024
#define EDGE_NODECFG_KEY_MAX   64
#define EDGE_NODECFG_MAX_EXTRA 128

/* A key this version does not know, kept for the next save. */
struct edge_nodecfg_kv {
    char *key;
    char *value;
};

struct edge_nodecfg {
    char id[FERRY_ID_MAX + 1];                  /* required, ferry_id_valid() */
    char product[FERRY_ID_MAX + 1];             /* "" when absent (the default line) */
    char hw_model[FERRY_ID_MAX + 1];            /* required, ferry_id_valid() */
    char hw_revision[FERRY_REVISION_MAX + 1];   /* "" when absent */
    char gateway[EDGE_NODECFG_VALUE_MAX + 1];   /* required, coap:// or coaps:// */
    char trust[EDGE_NODECFG_VALUE_MAX + 1];     /* required, keyring path */
    struct ferry_tag tags[FERRY_NODE_MAX_TAGS]; /* "tag.<key>" lines, sorted by key */
    size_t ntags;
    struct edge_nodecfg_kv *extra; /* owned; in file order */
    size_t nextra;
};

/* An empty configuration for a caller to fill and save. NULL when out of memory. */
struct edge_nodecfg *edge_nodecfg_new(void);
void edge_nodecfg_free(struct edge_nodecfg *cfg);

/* Parses file contents. FERRY_E_CORRUPT for a missing or wrong CRC line,
 * FERRY_E_TOO_LARGE above the caps, FERRY_E_MALFORMED naming the line or
 * key for anything else. The caller frees *out with edge_nodecfg_free(). */
enum ferry_err edge_nodecfg_parse(const char *buf, size_t len, struct edge_nodecfg **out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Reads and parses path; FERRY_E_NOT_FOUND when it does not exist. The
 * _io form goes through io (ferry_io.h; NULL: the system's). */
enum ferry_err edge_nodecfg_load(const char *path, struct edge_nodecfg **out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err edge_nodecfg_load_io(const struct ferry_io *io, const char *path,
                                    struct edge_nodecfg **out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Serialises (after checking every field as parse would) into a new
 * NUL-terminated string the caller frees; *len excludes the NUL. */
enum ferry_err edge_nodecfg_format(const struct edge_nodecfg *cfg, char **out, size_t *len,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Formats and writes path atomically (ferry_write_atomic(), mode 0644): a
 * power cut at any point leaves the old file or the new one, whole. The
 * _io form goes through io (ferry_io.h; NULL: the system's). */
enum ferry_err edge_nodecfg_save(const struct edge_nodecfg *cfg, const char *path,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err edge_nodecfg_save_io(const struct ferry_io *io, const struct edge_nodecfg *cfg,
                                    const char *path, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The value of a kept unknown key, or NULL. Owned by cfg. */
const char *edge_nodecfg_extra(const struct edge_nodecfg *cfg, const char *key);

#endif
