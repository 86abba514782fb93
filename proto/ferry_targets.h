/* A release meant for some nodes only (PROTOCOL.md, "Targeted releases"):
 * the manifest's optional `nodes` array names them, 1..FERRY_MAX_TARGETS
 * node ids. A node not named passes the release over without a word, as
 * if the line had none; absent, every node of the product line is meant.
 * A node from before this field refuses the unknown key (rejected,
 * malformed) instead of installing what was meant for another node: a
 * restored configuration, above all. */
#ifndef FERRY_TARGETS_H
#define FERRY_TARGETS_H

#include "ferry_err.h"
#include "ferry_names.h"

#include <stdbool.h>
#include <stddef.h>

#define FERRY_MAX_TARGETS 16

struct ferry_targets {
    size_t n; /* 0: every node */
    char node[FERRY_MAX_TARGETS][FERRY_ID_MAX + 1];
};

/* True when the release is meant for `node`. */
bool ferry_targets_include(const struct ferry_targets *t, const char *node);

/* Identifiers, no repeats, at most FERRY_MAX_TARGETS (FERRY_E_MALFORMED). */
enum ferry_err ferry_targets_check(const struct ferry_targets *t,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adds one node (a command-line flag); FERRY_E_INVALID_ARG when full or
 * not an identifier. */
enum ferry_err ferry_targets_add(struct ferry_targets *t, const char *node,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
