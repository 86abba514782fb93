#include "cloud_http_page.h"

#include "ferry_hex.h"
#include "ferry_sha256.h"

#include <pthread.h>
#include <string.h>

#define ETAG_LEN 19 /* quote, 16 hex digits, quote, NUL */

static char etags[16][ETAG_LEN];
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void make_etags(void)
{
    for (size_t i = 0; cloud_http_assets[i].path && i < 16; i++) {
        uint8_t digest[FERRY_SHA256_LEN];
        char hex[2 * FERRY_SHA256_LEN + 1];
        ferry_sha256(cloud_http_assets[i].data, cloud_http_assets[i].len, digest);
        ferry_hex_encode(digest, FERRY_SHA256_LEN, hex);
        etags[i][0] = '"';
        memcpy(etags[i] + 1, hex, 16);
        etags[i][17] = '"';
        etags[i][18] = '\0';
    }
}

const struct cloud_http_asset *cloud_http_asset_find(const char *path)
{
    for (size_t i = 0; cloud_http_assets[i].path; i++) {
        if (strcmp(cloud_http_assets[i].path, path) == 0)
            return &cloud_http_assets[i];
    }
    return NULL;
}

const char *cloud_http_asset_etag(const struct cloud_http_asset *a)
{
    pthread_once(&etags_once, make_etags);
    size_t i = (size_t)(a - cloud_http_assets);
    return i < 16 ? etags[i] : "\"0\"";
}
