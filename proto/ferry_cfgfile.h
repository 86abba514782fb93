/* Reads a program's JSON config file (a flat object whose keys mirror the
 * long flags) for ferry_opts_parse(). Values may be strings, integers,
 * booleans or arrays of strings; anything else is refused, naming the key. */
#ifndef FERRY_CFGFILE_H
#define FERRY_CFGFILE_H

#include "ferry_err.h"
#include "ferry_opts.h"

#define FERRY_CFGFILE_MAX_BYTES 65536

/* Matches ferry_kv_loader. */
enum ferry_err ferry_cfgfile_load(const char *path, struct ferry_kv **out, size_t *n,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
