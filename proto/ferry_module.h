/* Update modules in the manifest (PROTOCOL.md, "Update modules"): a release
 * whose artifact.media_type is application/vnd.ferry.module.<name> is
 * installed by the node's update module <name> instead of being written
 * into an image slot, with the manifest's `module` object as its
 * parameters (for the `file` module, the path it replaces).
 *
 * The two go together: a module media type without `module`, or `module`
 * with another media type, is malformed. That is what keeps a node that
 * predates modules safe: it refuses the unknown `module` key rather than
 * write a configuration file into its image slot and boot it.
 *
 * `module` holds 0..FERRY_MODULE_ARGS_MAX string members; keys are
 * [a-z][a-z0-9_]* of at most FERRY_MODULE_KEY_MAX bytes, values 1..
 * FERRY_MODULE_VALUE_MAX bytes of UTF-8 without control characters. A
 * module name is [a-z0-9][a-z0-9_-]* of at most FERRY_MODULE_NAME_MAX. */
#ifndef FERRY_MODULE_H
#define FERRY_MODULE_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>

#define FERRY_MODULE_MEDIA_PREFIX "application/vnd.ferry.module."
#define FERRY_MODULE_NAME_MAX     32
#define FERRY_MODULE_ARGS_MAX     8
#define FERRY_MODULE_KEY_MAX      32
#define FERRY_MODULE_VALUE_MAX    255

struct ferry_module_args {
    bool present; /* the manifest has a `module` object */
    size_t n;
    char key[FERRY_MODULE_ARGS_MAX][FERRY_MODULE_KEY_MAX + 1];
    char value[FERRY_MODULE_ARGS_MAX][FERRY_MODULE_VALUE_MAX + 1];
};

/* True when media_type names a module; its name into out. */
bool ferry_module_name(const char *media_type, char out[FERRY_MODULE_NAME_MAX + 1]);

/* The value of an argument, or NULL. */
const char *ferry_module_arg(const struct ferry_module_args *a, const char *key);

/* The rules above for a media type and its arguments (FERRY_E_MALFORMED
 * naming the field). */
enum ferry_err ferry_module_check(const char *media_type, const struct ferry_module_args *a,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Parses "key=value" (a command-line flag) into one more argument. */
enum ferry_err ferry_module_add_arg(struct ferry_module_args *a, const char *key_eq_value,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
