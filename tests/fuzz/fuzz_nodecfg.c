/* libFuzzer target for the node's identity file, STATE/node.cfg
 * (edge_nodecfg.h). Each input is tried as it is and, so that the fuzzer
 * gets past the CRC line, with a correct crc32 line appended. A refused
 * file gets a message; an accepted one formats again into a file that
 * parses and formats to the very same bytes (unknown keys kept, in order).
 * A violation aborts. */
#include "edge_nodecfg.h"
#include "ferry_crc32.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *text, size_t len)
{
    struct edge_nodecfg *cfg = NULL, *back = NULL;
    struct ferry_diag d = {{0}};
    if (edge_nodecfg_parse(text, len, &cfg, &d) != FERRY_OK) {
        if (!d.msg[0])
            abort();
        return;
    }
    char *one = NULL, *two = NULL;
    size_t one_len = 0, two_len = 0;
    if (edge_nodecfg_format(cfg, &one, &one_len, NULL) != FERRY_OK ||
        edge_nodecfg_parse(one, one_len, &back, NULL) != FERRY_OK ||
        edge_nodecfg_format(back, &two, &two_len, NULL) != FERRY_OK || one_len != two_len ||
        memcmp(one, two, one_len) != 0 || strcmp(cfg->id, back->id) != 0 ||
        cfg->nextra != back->nextra || cfg->ntags != back->ntags)
        abort();
    free(one);
    free(two);
    edge_nodecfg_free(cfg);
    edge_nodecfg_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > EDGE_NODECFG_MAX_BYTES + 64)
        return 0;
    check((const char *)data, size);
    char *fixed = malloc(size + 32);
    if (!fixed)
        abort();
    memcpy(fixed, data, size);
    size_t len = size;
    if (len && fixed[len - 1] != '\n')
        fixed[len++] = '\n';
    len += (size_t)snprintf(fixed + len, 32, "crc32=%08x\n", (unsigned)ferry_crc32(0, fixed, len));
    check(fixed, len);
    free(fixed);
    return 0;
}
