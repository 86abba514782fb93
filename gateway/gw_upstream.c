#include "gw_upstream.h"

#include <stdlib.h>

/* ---- dispatch ------------------------------------------------------------- */

void gw_upstream_free(struct gw_upstream *u)
{
    if (!u)
        return;
    u->ops->free(u->impl);
    free(u);
}

bool gw_upstream_is_up(const struct gw_upstream *u)
{
    return u->ops->is_up(u->impl);
}

enum ferry_err gw_upstream_publish(struct gw_upstream *u, enum ferry_topic which, const char *node,
                                   const void *buf, size_t len, bool retain)
{
    return u->ops->publish(u->impl, which, node, buf, len, retain);
}

void gw_upstream_want(struct gw_upstream *u, const char *product)
{
    if (u->ops->want)
        u->ops->want(u->impl, product);
}

/* ---- MQTT to the cloud: gw_uplink behind the interface -------------------- */

static bool mqtt_is_up(const void *impl)
{
    return gw_uplink_is_up(impl);
}

static enum ferry_err mqtt_publish(void *impl, enum ferry_topic which, const char *node,
                                   const void *buf, size_t len, bool retain)
{
    return gw_uplink_publish(impl, which, node, buf, len, 1, retain, NULL);
}

static void mqtt_free(void *impl)
{
    gw_uplink_free(impl);
}

static const struct gw_upstream_ops mqtt_ops = {
    .is_up = mqtt_is_up,
    .publish = mqtt_publish,
    .want = NULL, /* release/+ brings every product */
    .free = mqtt_free,
};

enum ferry_err gw_upstream_mqtt_new(struct ferry_loop *loop, const struct gw_uplink_opts *opts,
                                    const gw_upstream_handlers *h, struct gw_upstream **out,
                                    struct ferry_diag *d)
{
    struct gw_upstream *u = calloc(1, sizeof(*u));
    if (!u)
        return ferry_fail(d, FERRY_E_NOMEM, "uplink: out of memory");
    struct gw_uplink *link = NULL;
    enum ferry_err err = gw_uplink_new(loop, opts, h, &link, d);
    if (err != FERRY_OK) {
        free(u);
        return err;
    }
    u->ops = &mqtt_ops;
    u->impl = link;
    *out = u;
    return FERRY_OK;
}
