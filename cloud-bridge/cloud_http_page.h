/* The console's page: cloud-bridge/console/index.html, console.css and
 * console.js, compiled into ferry-cloud at build time (the generated
 * cloud_http_assets.c, made by console/embed.cmake), so the page needs no
 * file beside the program and no font, script or style from anywhere else:
 * fleets sit on closed networks. serve --http serves them at /,
 * /console.css and /console.js with a Content-Security-Policy that lets the
 * page load nothing from any other origin. */
#ifndef FERRY_CLOUD_HTTP_PAGE_H
#define FERRY_CLOUD_HTTP_PAGE_H

#include <stddef.h>

struct cloud_http_asset {
    const char *path; /* "/", "/console.css", ... */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

/* The generated table (cloud_http_assets.c), ended by a NULL path. */
extern const struct cloud_http_asset cloud_http_assets[];

/* The asset served at path, or NULL. */
const struct cloud_http_asset *cloud_http_asset_find(const char *path);

/* A strong ETag for the asset ("\"<16 hex digits>\""), computed once. */
const char *cloud_http_asset_etag(const struct cloud_http_asset *a);

#endif
