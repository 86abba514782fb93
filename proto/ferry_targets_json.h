/* The manifest's `nodes` array in JSON (internal to proto/). */
#ifndef FERRY_TARGETS_JSON_H
#define FERRY_TARGETS_JSON_H

#include "ferry_targets.h"

#include <cjson/cJSON.h>

/* Reads root's optional `nodes` (n 0 when absent); errors name the field. */
enum ferry_err ferry_targets_read(const cJSON *root, struct ferry_targets *out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adds `nodes` to root when t->n > 0; false when out of memory. */
bool ferry_targets_write(cJSON *root, const struct ferry_targets *t);

#endif
