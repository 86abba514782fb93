/* libFuzzer target for the gateway's PSK file (gw_psk.h). A refused file
 * gets a message; an accepted one holds exactly one key of
 * GW_PSK_KEY_MIN..GW_PSK_KEY_MAX bytes for each node line, found under the
 * line's first field. A violation aborts. */
#include "gw_psk.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_psk *t = NULL;
    struct ferry_diag d = {{0}};
    const char *text = (const char *)data;
    if (gw_psk_parse("fuzz.txt", text, size, &t, &d) != FERRY_OK) {
        if (!d.msg[0])
            abort();
        return 0;
    }
    size_t lines = 0;
    for (size_t pos = 0; pos < size;) {
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t next = nl ? (size_t)(nl - text) + 1 : size;
        size_t end = nl ? (size_t)(nl - text) : size;
        if (end > pos && text[end - 1] == '\r')
            end--; /* CRLF endings are accepted */
        size_t a = pos;
        while (a < end && blank(text[a]))
            a++;
        size_t b = a;
        while (b < end && !blank(text[b]) && text[b] != '#')
            b++;
        if (b > a && text[a] != '#') {
            size_t key_len = 0;
            const uint8_t *key = gw_psk_find(t, data + a, b - a, &key_len);
            if (!key || key_len < GW_PSK_KEY_MIN || key_len > GW_PSK_KEY_MAX)
                abort();
            lines++;
        }
        pos = next;
    }
    if (lines == 0 || lines != gw_psk_count(t))
        abort();
    gw_psk_free(t);
    return 0;
}
