/* The manifest's `module` object in JSON (internal to proto/, which alone
 * touches cJSON): read and write it for ferry_manifest.c. */
#ifndef FERRY_MODULE_JSON_H
#define FERRY_MODULE_JSON_H

#include "ferry_module.h"

#include <cjson/cJSON.h>

/* Reads root's optional `module` member into *out (present false when
 * absent). Errors name the field. */
enum ferry_err ferry_module_read(const cJSON *root, struct ferry_module_args *out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adds `module` to root when a->present; false when out of memory. */
bool ferry_module_write(cJSON *root, const struct ferry_module_args *a);

#endif
