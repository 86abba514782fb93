/* A node's description: what a rollout may select it by, besides what its
 * status records say (gateway, version). PROTOCOL.md, "Node descriptions".
 *
 *   node -> gateway   in the Uri-Query of every manifest GET (and Observe
 *                     re-registration): n=<node> hw=<model> rev=<revision>
 *                     tag=<key>=<value> ..., constant for the node's run
 *                     (DECISIONS D1: the n= is also its identity over plain
 *                     CoAP); the product is the manifest path's last segment;
 *   gateway -> cloud  retained JSON on ferry/v1/<fleet>/node-info/<gw>/<node>:
 *     {"format":1,"node":"n1","product":"firmware","hw_model":"m1",
 *      "hw_revision":"B","tags":{"ring":"canary","site":"depot-7"}}
 *
 * Tags come from `ferry-edge --tag k=v` (kept in its node.cfg). A key is
 * 1..32 of [a-z0-9_.-], not starting with '.', and not one of the names a
 * selection gives another meaning (node, gateway, product, hw-model,
 * hw-revision, version); a value is an identifier (ferry_id_valid). At most
 * FERRY_NODE_MAX_TAGS, each key once; kept sorted by key, so equal
 * descriptions encode to equal bytes. */
#ifndef FERRY_NODEINFO_H
#define FERRY_NODEINFO_H

#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_names.h"

#include <stdbool.h>
#include <stddef.h>

#define FERRY_TAG_KEY_MAX        32
#define FERRY_TAG_VALUE_MAX      FERRY_ID_MAX
#define FERRY_NODE_MAX_TAGS      16
#define FERRY_NODEINFO_MAX_BYTES 2048
#define FERRY_NODEINFO_QUERY_MAX (3 + FERRY_NODE_MAX_TAGS) /* items of the query form */
#define FERRY_NODEINFO_ITEM_MAX  (4 + FERRY_TAG_KEY_MAX + 1 + FERRY_TAG_VALUE_MAX + 1)
#define FERRY_NODEINFO_FORMAT    1

struct ferry_tag {
    char key[FERRY_TAG_KEY_MAX + 1];
    char value[FERRY_TAG_VALUE_MAX + 1];
};

struct ferry_nodeinfo {
    char node[FERRY_ID_MAX + 1];
    char product[FERRY_ID_MAX + 1];
    char hw_model[FERRY_ID_MAX + 1];
    char hw_revision[FERRY_REVISION_MAX + 1]; /* "" when the node has none */
    struct ferry_tag tags[FERRY_NODE_MAX_TAGS];
    size_t ntags;
};

bool ferry_tag_key_valid(const char *key);
/* A selection key that is not a tag ("gateway", "hw-model", ...). */
bool ferry_tag_key_reserved(const char *key);

/* Parses "key=value" into out. FERRY_E_INVALID_ARG naming what is wrong. */
enum ferry_err ferry_tag_parse(const char *kv, struct ferry_tag *out,
                               struct ferry_diag *d) FERRY_MUST_CHECK;

/* Sets (or, with an empty value, removes) a tag, keeping the list sorted.
 * FERRY_E_TOO_LARGE beyond FERRY_NODE_MAX_TAGS. */
enum ferry_err ferry_nodeinfo_set_tag(struct ferry_nodeinfo *ni, const char *key, const char *value,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;

/* The value of tag key, or NULL. */
const char *ferry_nodeinfo_tag(const struct ferry_nodeinfo *ni, const char *key);

/* Checks every field as the decoders do. */
enum ferry_err ferry_nodeinfo_check(const struct ferry_nodeinfo *ni,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* JSON form; the caller frees *out. */
enum ferry_err ferry_nodeinfo_to_json(const struct ferry_nodeinfo *ni, char **out, size_t *len,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_nodeinfo_from_json(const uint8_t *buf, size_t len, struct ferry_nodeinfo *out,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;

/* Query form: items[0..*n) get "n=...", "hw=...", "rev=..." (when set) and
 * one "tag=k=v" per tag. */
enum ferry_err
ferry_nodeinfo_to_query(const struct ferry_nodeinfo *ni,
                        char items[FERRY_NODEINFO_QUERY_MAX][FERRY_NODEINFO_ITEM_MAX], size_t *n,
                        struct ferry_diag *d) FERRY_MUST_CHECK;

/* Reads the query items (lens[i] bytes each, not NUL-terminated) of a
 * manifest request into out: node, hw_model, hw_revision and tags; the
 * product is the caller's to set. Items it does not know are skipped (other
 * parameters may share the query). FERRY_E_NOT_FOUND when there is no hw=
 * (a client that does not describe itself: nothing to report), else
 * FERRY_E_INVALID_ARG for a malformed or repeated item. */
enum ferry_err ferry_nodeinfo_from_query(const char *const *items, const size_t *lens, size_t n,
                                         struct ferry_nodeinfo *out,
                                         struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
