#include "ferry_rollout.h"

#include "ferry_envelope.h"
#include "ferry_json.h"
#include "ferry_ratecap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MIN_FINAL 1000000
#define MAX_SOAK_S    (30 * 86400)

static const char *const STATE_NAMES[FERRY_ROLLOUT__COUNT] = {
    "scheduled", "running", "paused", "halted", "cancelled", "completed"};

const char *ferry_rollout_state_name(enum ferry_rollout_state s)
{
    return (unsigned)s < FERRY_ROLLOUT__COUNT ? STATE_NAMES[s] : "unknown";
}

enum ferry_err ferry_rollout_state_from_name(const char *name, enum ferry_rollout_state *out)
{
    for (int i = 0; i < FERRY_ROLLOUT__COUNT; i++) {
        if (name && strcmp(name, STATE_NAMES[i]) == 0) {
            *out = (enum ferry_rollout_state)i;
            return FERRY_OK;
        }
    }
    return FERRY_E_INVALID_ARG;
}

bool ferry_rollout_state_is_final(enum ferry_rollout_state s)
{
    return s == FERRY_ROLLOUT_CANCELLED || s == FERRY_ROLLOUT_COMPLETED;
}

/* ---- selections -------------------------------------------------------------- */

static const char *const SEL_KEYS[] = {"node", "gateway", "hw-model", "hw-revision", "version"};

static bool sel_value_valid(const char *v)
{
    size_t n = strlen(v);
    return n > 0 && n <= FERRY_SEL_VALUE_MAX && v[0] != '.' &&
           strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") == n;
}

static bool sel_key_valid(const char *k)
{
    for (size_t i = 0; i < sizeof(SEL_KEYS) / sizeof(SEL_KEYS[0]); i++)
        if (strcmp(k, SEL_KEYS[i]) == 0)
            return true;
    return ferry_tag_key_valid(k);
}

enum ferry_err ferry_sel_term_parse(const char *kv, struct ferry_sel_term *out,
                                    struct ferry_diag *d)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    size_t kn = eq ? (size_t)(eq - kv) : 0;
    struct ferry_sel_term t;
    memset(&t, 0, sizeof(t)); /* whole bytes: terms are compared and stored */
    if (!eq || kn == 0 || kn > FERRY_SEL_KEY_MAX || strlen(eq + 1) > FERRY_SEL_VALUE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "selection '%.100s': expected key=value",
                          kv ? kv : "");
    memcpy(t.key, kv, kn);
    t.key[kn] = 0;
    snprintf(t.value, sizeof(t.value), "%s", eq + 1);
    if (!sel_key_valid(t.key))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "selection '%.100s': the key must be node, gateway, hw-model, "
                          "hw-revision, version or a tag key ([a-z0-9_.-])",
                          kv);
    if (!sel_value_valid(t.value))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "selection '%.100s': the value must be 1..%d of [A-Za-z0-9._+-]", kv,
                          FERRY_SEL_VALUE_MAX);
    *out = t;
    return FERRY_OK;
}

enum ferry_err ferry_sel_add(struct ferry_sel *s, const char *kv, struct ferry_diag *d)
{
    struct ferry_sel_term t;
    enum ferry_err err = ferry_sel_term_parse(kv, &t, d);
    if (err != FERRY_OK)
        return err;
    if (s->n == FERRY_SEL_MAX)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "selection: more than %d terms", FERRY_SEL_MAX);
    s->t[s->n++] = t;
    return FERRY_OK;
}

static const char *subject_value(const struct ferry_sel_subject *who, const char *key)
{
    if (strcmp(key, "node") == 0)
        return who->node;
    if (strcmp(key, "gateway") == 0)
        return who->gateway;
    if (strcmp(key, "hw-model") == 0)
        return who->hw_model;
    if (strcmp(key, "hw-revision") == 0)
        return who->hw_revision;
    if (strcmp(key, "version") == 0)
        return who->version;
    return who->info ? ferry_nodeinfo_tag(who->info, key) : NULL;
}

bool ferry_sel_term_match(const struct ferry_sel_term *t, const struct ferry_sel_subject *who)
{
    const char *v = subject_value(who, t->key);
    return v && v[0] && strcmp(v, t->value) == 0;
}

bool ferry_sel_match(const struct ferry_sel *s, const struct ferry_sel_subject *who)
{
    for (size_t i = 0; i < s->n; i++) {
        bool seen = false, any = false;
        /* Only the first term of each key decides, for all of its terms. */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(s->t[j].key, s->t[i].key) == 0;
        if (seen)
            continue;
        for (size_t j = i; j < s->n && !any; j++)
            any = strcmp(s->t[j].key, s->t[i].key) == 0 && ferry_sel_term_match(&s->t[j], who);
        if (!any)
            return false;
    }
    return true;
}

void ferry_sel_format(const struct ferry_sel *s, char out[FERRY_SEL_TEXT_MAX])
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < s->n && used < FERRY_SEL_TEXT_MAX; i++)
        used += (size_t)snprintf(out + used, FERRY_SEL_TEXT_MAX - used, "%s%s=%s", i ? "," : "",
                                 s->t[i].key, s->t[i].value);
}

/* ---- waves ----------------------------------------------------------------------- */

/* "10", "0.5", "12.25" -> basis points, 1..FERRY_SHARE_FULL; 0 if not a share. */
static uint32_t parse_share(const char *s, size_t n)
{
    uint32_t whole = 0, frac = 0, fdigits = 0;
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i < 3)
        whole = whole * 10 + (uint32_t)(s[i++] - '0');
    if (i == 0)
        return 0;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9' && fdigits < 2) {
            frac = frac * 10 + (uint32_t)(s[i++] - '0');
            fdigits++;
        }
        if (fdigits == 0)
            return 0;
        if (fdigits == 1)
            frac *= 10;
    }
    if (i < n && s[i] == '%')
        i++;
    uint32_t bp = whole * 100 + frac;
    return i == n && bp >= 1 && bp <= FERRY_SHARE_FULL ? bp : 0;
}

void ferry_share_format(uint32_t bp, char out[16])
{
    if (bp % 100 == 0)
        snprintf(out, 16, "%u", bp / 100);
    else if (bp % 10 == 0)
        snprintf(out, 16, "%u.%u", bp / 100, (bp % 100) / 10);
    else
        snprintf(out, 16, "%u.%02u", bp / 100, bp % 100);
}

enum ferry_err ferry_waves_parse(const char *text, struct ferry_rollout_plan *p,
                                 struct ferry_diag *d)
{
    struct ferry_wave_spec w[FERRY_ROLLOUT_MAX_WAVES];
    size_t n = 0;
    for (const char *s = text ? text : ""; *s;) {
        size_t len = strcspn(s, ",");
        char item[FERRY_SEL_KEY_MAX + FERRY_SEL_VALUE_MAX + 2];
        if (len == 0 || len >= sizeof(item))
            return ferry_fail(d, FERRY_E_INVALID_ARG, "waves '%.100s': an empty or long item",
                              text);
        if (n == FERRY_ROLLOUT_MAX_WAVES)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "waves: more than %d",
                              FERRY_ROLLOUT_MAX_WAVES);
        memcpy(item, s, len);
        item[len] = 0;
        memset(&w[n], 0, sizeof(w[n]));
        if (strchr(item, '=')) {
            enum ferry_err err = ferry_sel_term_parse(item, &w[n].sel, d);
            if (err != FERRY_OK)
                return err;
            w[n].group = true;
        } else if (!(w[n].share_bp = parse_share(item, len))) {
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "waves: '%s' is neither a percentage (0.01..100) nor a group "
                              "key=value",
                              item);
        }
        n++;
        s += len;
        if (*s == ',' && *++s == 0)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "waves '%.100s' end with a comma", text);
    }
    struct ferry_rollout_plan tmp = *p;
    memcpy(tmp.waves, w, n * sizeof(w[0]));
    tmp.nwaves = n;
    bool shares = false;
    for (size_t i = 0; i < n; i++) {
        if (w[i].group && shares)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "waves: group '%s=%s' must come before the percentages", w[i].sel.key,
                              w[i].sel.value);
        if (!w[i].group && shares && w[i].share_bp <= w[i - 1].share_bp)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "waves: percentages are cumulative and must grow (%u.%02u after "
                              "%u.%02u)",
                              w[i].share_bp / 100, w[i].share_bp % 100, w[i - 1].share_bp / 100,
                              w[i - 1].share_bp % 100);
        shares = shares || !w[i].group;
    }
    if (n == 0 || w[n - 1].group || w[n - 1].share_bp != FERRY_SHARE_FULL)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "waves '%.100s': the last wave must be 100 (every target)",
                          text ? text : "");
    *p = tmp;
    return FERRY_OK;
}

void ferry_waves_format(const struct ferry_rollout_plan *p, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < p->nwaves && used < cap; i++) {
        char share[16];
        if (p->waves[i].group)
            used += (size_t)snprintf(out + used, cap - used, "%s%s=%s", i ? "," : "",
                                     p->waves[i].sel.key, p->waves[i].sel.value);
        else {
            ferry_share_format(p->waves[i].share_bp, share);
            used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", share);
        }
    }
}

/* ---- plan -------------------------------------------------------------------------- */

enum ferry_err ferry_rollout_plan_check(const struct ferry_rollout_plan *p, struct ferry_diag *d)
{
    char text[FERRY_ROLLOUT_MAX_WAVES * 100];
    ferry_waves_format(p, text, sizeof(text));
    struct ferry_rollout_plan tmp = *p;
    enum ferry_err err = ferry_waves_parse(text, &tmp, d);
    if (err != FERRY_OK)
        return err;
    if (p->success_pct > 100 || p->halt_pct > 100)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "success and halt are percentages, 0..100");
    if (p->min_final < 1 || p->min_final > MAX_MIN_FINAL)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "min-final must be 1..%d", MAX_MIN_FINAL);
    if (p->soak_s < 0 || p->soak_s > MAX_SOAK_S)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "soak must be 0..30 days");
    if (p->rate_per_min > FERRY_RATECAP_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rate must be 0..%d per minute",
                          FERRY_RATECAP_MAX);
    if (p->select.n > FERRY_SEL_MAX || p->nwindows > FERRY_ROLLOUT_MAX_WINDOWS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "too many selection terms or windows");
    for (size_t i = 0; i < p->nwindows; i++) {
        struct ferry_window w;
        const struct ferry_window *pw = &p->windows[i].w;
        if (p->windows[i].sel.n > FERRY_SEL_MAX ||
            ferry_window_set(&w, pw->zone, pw->rule, pw->r, pw->n, d) != FERRY_OK)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "window %zu is not valid", i + 1);
    }
    return FERRY_OK;
}

static bool add_sel(cJSON *o, const char *key, const struct ferry_sel *s)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (size_t i = 0; a && i < s->n; i++) {
        char kv[FERRY_SEL_KEY_MAX + FERRY_SEL_VALUE_MAX + 2];
        snprintf(kv, sizeof(kv), "%s=%s", s->t[i].key, s->t[i].value);
        cJSON *str = cJSON_CreateString(kv);
        if (!str || !cJSON_AddItemToArray(a, str)) {
            cJSON_Delete(str);
            return false;
        }
    }
    return a != NULL;
}

static cJSON *window_json(const struct ferry_window *w, const struct ferry_sel *sel)
{
    cJSON *o = cJSON_CreateObject(), *ranges = NULL;
    bool ok = o && (!sel || add_sel(o, "select", sel)) &&
              cJSON_AddStringToObject(o, "zone", w->zone) &&
              cJSON_AddStringToObject(o, "rule", w->rule) &&
              (ranges = cJSON_AddArrayToObject(o, "ranges")) != NULL;
    for (size_t i = 0; ok && i < w->n; i++) {
        cJSON *r = cJSON_CreateObject();
        ok = r && cJSON_AddItemToArray(ranges, r);
        if (!ok) {
            cJSON_Delete(r);
            break;
        }
        ok = cJSON_AddNumberToObject(r, "days", w->r[i].days) &&
             cJSON_AddNumberToObject(r, "from", w->r[i].from) &&
             cJSON_AddNumberToObject(r, "to", w->r[i].to);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static enum ferry_err sel_from_json(const cJSON *o, const char *key, struct ferry_sel *s,
                                    const char *what, struct ferry_diag *d)
{
    memset(s, 0, sizeof(*s));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a)
        return FERRY_OK;
    if (!cJSON_IsArray(a))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be an array", what, key);
    for (const cJSON *e = a->child; e; e = e->next) {
        if (!cJSON_IsString(e) || ferry_sel_add(s, e->valuestring, d) != FERRY_OK)
            return ferry_fail(d, FERRY_E_MALFORMED, "%s: '%s' holds a bad selection term", what,
                              key);
    }
    return FERRY_OK;
}

static enum ferry_err window_from_json(const cJSON *o, struct ferry_window *w,
                                       struct ferry_sel *sel, const char *what,
                                       struct ferry_diag *d)
{
    static const char *const keys[] = {"select", "zone", "rule", "ranges", NULL};
    static const char *const rkeys[] = {"days", "from", "to", NULL};
    char zone[FERRY_ZONE_MAX + 1], rule[FERRY_TZRULE_MAX + 1];
    struct ferry_window_range r[FERRY_WINDOW_MAX_RANGES];
    size_t n = 0;
    if (!cJSON_IsObject(o))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: a window must be an object", what);
    enum ferry_err err = ferry_json_only_keys(o, keys, false, what, d);
    if (err == FERRY_OK && sel)
        err = sel_from_json(o, "select", sel, what, d);
    else if (err == FERRY_OK && cJSON_GetObjectItemCaseSensitive(o, "select"))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: a window here carries no selection", what);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "zone", true, FERRY_ZONE_MAX, zone, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "rule", true, FERRY_TZRULE_MAX, rule, what, d);
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(o, "ranges");
    if (err == FERRY_OK && !cJSON_IsArray(ra))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: a window needs an array 'ranges'", what);
    for (const cJSON *e = ra ? ra->child : NULL; err == FERRY_OK && e; e = e->next) {
        int64_t days = 0, from = 0, to = 0;
        if (n == FERRY_WINDOW_MAX_RANGES || !cJSON_IsObject(e))
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: too many or bad ranges", what);
        if (err == FERRY_OK)
            err = ferry_json_only_keys(e, rkeys, false, what, d);
        if (err == FERRY_OK)
            err = ferry_json_int(e, "days", true, 1, FERRY_WINDOW_ALL_DAYS, &days, what, d);
        if (err == FERRY_OK)
            err = ferry_json_int(e, "from", true, 0, 1439, &from, what, d);
        if (err == FERRY_OK)
            err = ferry_json_int(e, "to", true, 1, 1440, &to, what, d);
        if (err == FERRY_OK)
            r[n++] = (struct ferry_window_range){(uint8_t)days, (uint16_t)from, (uint16_t)to};
    }
    if (err == FERRY_OK && ferry_window_set(w, zone, rule, r, n, d) != FERRY_OK)
        err = FERRY_E_MALFORMED;
    return err;
}

/* A wave as the documents write it: "key=value" for a group, else its
 * share ("10%"). */
#define WAVE_SPEC_MAX (FERRY_SEL_KEY_MAX + FERRY_SEL_VALUE_MAX + 2)

static void wave_spec(const struct ferry_wave_spec *w, char out[WAVE_SPEC_MAX])
{
    if (w->group)
        snprintf(out, WAVE_SPEC_MAX, "%s=%s", w->sel.key, w->sel.value);
    else
        ferry_share_format(w->share_bp, out);
}

/* The plan's rules into o: select, waves, success, min_final, soak, halt,
 * rate, and an empty "windows" array (*windows), which each document fills
 * its own way. False when out of memory. */
static bool add_rules(cJSON *o, const struct ferry_rollout_plan *p, cJSON **windows)
{
    cJSON *waves = NULL;
    bool ok = add_sel(o, "select", &p->select) &&
              (waves = cJSON_AddArrayToObject(o, "waves")) != NULL &&
              cJSON_AddNumberToObject(o, "success", p->success_pct) &&
              cJSON_AddNumberToObject(o, "min_final", p->min_final) &&
              cJSON_AddNumberToObject(o, "soak", (double)p->soak_s) &&
              cJSON_AddNumberToObject(o, "halt", p->halt_pct) &&
              cJSON_AddNumberToObject(o, "rate", p->rate_per_min) &&
              (*windows = cJSON_AddArrayToObject(o, "windows")) != NULL;
    for (size_t i = 0; ok && i < p->nwaves; i++) {
        char item[WAVE_SPEC_MAX];
        wave_spec(&p->waves[i], item);
        cJSON *str = cJSON_CreateString(item);
        ok = str && cJSON_AddItemToArray(waves, str);
        if (!ok)
            cJSON_Delete(str);
    }
    return ok;
}

enum ferry_err ferry_rollout_plan_to_json(const struct ferry_rollout_plan *p, char **out,
                                          size_t *len, struct ferry_diag *d)
{
    enum ferry_err err = ferry_rollout_plan_check(p, d);
    if (err != FERRY_OK)
        return err;
    cJSON *o = cJSON_CreateObject(), *windows = NULL;
    bool ok = o && cJSON_AddNumberToObject(o, "format", FERRY_ROLLOUT_FORMAT) &&
              add_rules(o, p, &windows);
    for (size_t i = 0; ok && i < p->nwindows; i++) {
        cJSON *w = window_json(&p->windows[i].w, &p->windows[i].sel);
        ok = w && cJSON_AddItemToArray(windows, w);
        if (!ok)
            cJSON_Delete(w);
    }
    err = ok ? ferry_json_print(o, out, len, d)
             : ferry_fail(d, FERRY_E_NOMEM, "rollout plan: out of memory");
    cJSON_Delete(o);
    return err;
}

enum ferry_err ferry_rollout_plan_from_json(const uint8_t *buf, size_t len,
                                            struct ferry_rollout_plan *out, struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "select", "waves", "success", "min_final",
                                       "soak",   "halt",   "rate",  "windows", NULL};
    static const char what[] = "rollout plan";
    cJSON *o = NULL;
    struct ferry_rollout_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
    int64_t format = 0, success = 0, min_final = 0, soak = 0, halt = 0, rate = 0;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_ROLLOUT_PLAN_MAX, what, &o, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(o, keys, false, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "format", true, FERRY_ROLLOUT_FORMAT, FERRY_ROLLOUT_FORMAT, &format,
                             what, d);
    if (err == FERRY_OK)
        err = sel_from_json(o, "select", &p->select, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "success", true, 0, 100, &success, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "min_final", true, 1, MAX_MIN_FINAL, &min_final, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "soak", true, 0, MAX_SOAK_S, &soak, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "halt", true, 0, 100, &halt, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "rate", true, 0, FERRY_RATECAP_MAX, &rate, what, d);
    const cJSON *waves = o ? cJSON_GetObjectItemCaseSensitive(o, "waves") : NULL;
    char text[FERRY_ROLLOUT_MAX_WAVES * 100] = "";
    size_t used = 0;
    if (err == FERRY_OK && !cJSON_IsArray(waves))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'waves' must be an array", what);
    for (const cJSON *e = waves ? waves->child : NULL; err == FERRY_OK && e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, ',') ||
            strlen(e->valuestring) + used + 2 > sizeof(text))
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: a wave must be a short string", what);
        else
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", used ? "," : "",
                                     e->valuestring);
    }
    if (err == FERRY_OK && ferry_waves_parse(text, p, d) != FERRY_OK)
        err = FERRY_E_MALFORMED;
    const cJSON *windows = o ? cJSON_GetObjectItemCaseSensitive(o, "windows") : NULL;
    if (err == FERRY_OK && !cJSON_IsArray(windows))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'windows' must be an array", what);
    for (const cJSON *e = windows ? windows->child : NULL; err == FERRY_OK && e; e = e->next) {
        if (p->nwindows == FERRY_ROLLOUT_MAX_WINDOWS)
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: more than %d windows", what,
                             FERRY_ROLLOUT_MAX_WINDOWS);
        else
            err = window_from_json(e, &p->windows[p->nwindows].w, &p->windows[p->nwindows].sel,
                                   what, d);
        if (err == FERRY_OK)
            p->nwindows++;
    }
    cJSON_Delete(o);
    if (err == FERRY_OK) {
        p->success_pct = (uint32_t)success;
        p->min_final = (uint32_t)min_final;
        p->soak_s = soak;
        p->halt_pct = (uint32_t)halt;
        p->rate_per_min = (uint32_t)rate;
        *out = *p;
    }
    free(p);
    return err;
}

/* ---- doc ------------------------------------------------------------------------------ */

static bool add_envelope(cJSON *o, const char *key, const uint8_t *env, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        return false;
    memcpy(s, env, len);
    s[len] = 0;
    bool ok = cJSON_AddStringToObject(o, key, s) != NULL;
    free(s);
    return ok;
}

enum ferry_err ferry_rollout_doc_to_json(const struct ferry_rollout_doc *doc, char **out,
                                         size_t *len, struct ferry_diag *d)
{
    if (!doc->release || !doc->release_len || doc->release_len > FERRY_ENVELOPE_MAX_BYTES ||
        memchr(doc->release, 0, doc->release_len) ||
        (doc->revert &&
         (doc->revert_len > FERRY_ENVELOPE_MAX_BYTES || memchr(doc->revert, 0, doc->revert_len))))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rollout doc: bad envelope");
    cJSON *o = cJSON_CreateObject(), *windows = NULL, *targets = NULL;
    bool ok = o && cJSON_AddNumberToObject(o, "format", FERRY_ROLLOUT_FORMAT) &&
              cJSON_AddNumberToObject(o, "rollout", (double)doc->rollout) &&
              cJSON_AddNumberToObject(o, "revision", (double)doc->revision) &&
              cJSON_AddNumberToObject(o, "resume", (double)doc->resume) &&
              cJSON_AddStringToObject(o, "gateway", doc->gateway) &&
              cJSON_AddStringToObject(o, "product", doc->product) &&
              cJSON_AddStringToObject(o, "state", ferry_rollout_state_name(doc->state)) &&
              add_envelope(o, "release", doc->release, doc->release_len) &&
              (!doc->revert || add_envelope(o, "revert", doc->revert, doc->revert_len)) &&
              cJSON_AddNumberToObject(o, "halt", doc->halt_pct) &&
              cJSON_AddNumberToObject(o, "min_final", doc->min_final) &&
              cJSON_AddNumberToObject(o, "rate", doc->rate_per_min) &&
              cJSON_AddNumberToObject(o, "waves", doc->nwaves) &&
              cJSON_AddNumberToObject(o, "open_waves", doc->open_waves) &&
              (windows = cJSON_AddArrayToObject(o, "windows")) != NULL &&
              (targets = cJSON_AddArrayToObject(o, "targets")) != NULL;
    for (size_t i = 0; ok && i < doc->nwindows; i++) {
        cJSON *w = window_json(&doc->windows[i], NULL);
        ok = w && cJSON_AddItemToArray(windows, w);
        if (!ok)
            cJSON_Delete(w);
    }
    for (size_t i = 0; ok && i < doc->ntargets; i++) {
        const struct ferry_rollout_target *t = &doc->targets[i];
        cJSON *a = cJSON_CreateArray();
        ok = a && cJSON_AddItemToArray(targets, a);
        if (!ok) {
            cJSON_Delete(a);
            break;
        }
        const char *state = t->state >= 0 ? ferry_state_name((enum ferry_state)t->state) : "";
        cJSON *items[4] = {cJSON_CreateString(t->node), cJSON_CreateNumber(t->wave),
                           cJSON_CreateNumber(t->window), cJSON_CreateString(state)};
        for (int k = 0; k < 4; k++) {
            if (ok && items[k] && cJSON_AddItemToArray(a, items[k]))
                continue;
            ok = false;
            cJSON_Delete(items[k]);
        }
    }
    enum ferry_err err = ok ? ferry_json_print(o, out, len, d)
                            : ferry_fail(d, FERRY_E_NOMEM, "rollout doc: out of memory");
    cJSON_Delete(o);
    return err;
}

void ferry_rollout_doc_free(struct ferry_rollout_doc *doc)
{
    if (!doc)
        return;
    free(doc->release);
    free(doc->revert);
    free(doc->targets);
    free(doc);
}

static enum ferry_err envelope_field(const cJSON *o, const char *key, bool required, uint8_t **out,
                                     size_t *len, const char *what, struct ferry_diag *d)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!f && !required)
        return FERRY_OK;
    if (!cJSON_IsString(f) || !f->valuestring[0] ||
        strlen(f->valuestring) > FERRY_ENVELOPE_MAX_BYTES)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be a signed envelope", what,
                          key);
    *len = strlen(f->valuestring);
    *out = malloc(*len);
    if (!*out)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
    memcpy(*out, f->valuestring, *len);
    return FERRY_OK;
}

static enum ferry_err target_from_json(const cJSON *a, const struct ferry_rollout_doc *doc,
                                       struct ferry_rollout_target *t, struct ferry_diag *d)
{
    static const char what[] = "rollout doc";
    const cJSON *e[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0;
    for (const cJSON *c = cJSON_IsArray(a) ? a->child : NULL; c && n < 5; c = c->next, n++)
        if (n < 4)
            e[n] = c;
    if (n != 4 || !cJSON_IsString(e[0]) || !cJSON_IsNumber(e[1]) || !cJSON_IsNumber(e[2]) ||
        !cJSON_IsString(e[3]))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: a target must be [node, wave, window, state]",
                          what);
    double wave = e[1]->valuedouble, window = e[2]->valuedouble;
    enum ferry_state st = FERRY_STATE_IDLE;
    if (!ferry_id_valid(e[0]->valuestring) || wave != (int)wave || wave < 0 ||
        wave >= doc->nwaves || window != (int)window || window < -1 ||
        window >= (double)doc->nwindows ||
        (e[3]->valuestring[0] && ferry_state_from_name(e[3]->valuestring, &st) != FERRY_OK))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: target '%.64s' is out of range", what,
                          cJSON_IsString(e[0]) ? e[0]->valuestring : "?");
    snprintf(t->node, sizeof(t->node), "%s", e[0]->valuestring);
    t->wave = (uint8_t)wave;
    t->window = (int8_t)window;
    t->state = e[3]->valuestring[0] ? (int8_t)st : -1;
    return FERRY_OK;
}

static enum ferry_err doc_fields(const cJSON *o, struct ferry_rollout_doc *doc,
                                 struct ferry_diag *d)
{
    static const char *const keys[] = {"format",    "rollout", "revision", "resume",     "gateway",
                                       "product",   "state",   "release",  "revert",     "halt",
                                       "min_final", "rate",    "waves",    "open_waves", "windows",
                                       "targets",   NULL};
    static const char what[] = "rollout doc";
    int64_t v[9] = {0};
    char state[16] = "";
    enum ferry_err err = ferry_json_only_keys(o, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "format", true, 1, FERRY_ROLLOUT_FORMAT, &v[0], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "rollout", true, 1, INT64_C(1) << 53, &v[1], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "revision", true, 1, INT64_C(1) << 53, &v[2], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "resume", true, 0, INT64_C(1) << 53, &v[3], what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "gateway", true, FERRY_ID_MAX, doc->gateway, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "product", true, FERRY_ID_MAX, doc->product, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "state", true, sizeof(state) - 1, state, what, d);
    if (err == FERRY_OK && ferry_rollout_state_from_name(state, &doc->state) != FERRY_OK)
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: unknown state '%s'", what, state);
    if (err == FERRY_OK && (!ferry_id_valid(doc->gateway) || !ferry_id_valid(doc->product)))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: gateway or product is not an id", what);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "halt", true, 0, 100, &v[4], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "min_final", true, 1, MAX_MIN_FINAL, &v[5], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "rate", true, 0, FERRY_RATECAP_MAX, &v[6], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "waves", true, 1, FERRY_ROLLOUT_MAX_WAVES, &v[7], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "open_waves", true, 0, v[7], &v[8], what, d);
    if (err != FERRY_OK)
        return err;
    doc->rollout = (uint64_t)v[1];
    doc->revision = (uint64_t)v[2];
    doc->resume = (uint64_t)v[3];
    doc->halt_pct = (uint32_t)v[4];
    doc->min_final = (uint32_t)v[5];
    doc->rate_per_min = (uint32_t)v[6];
    doc->nwaves = (uint32_t)v[7];
    doc->open_waves = (uint32_t)v[8];
    return FERRY_OK;
}

enum ferry_err ferry_rollout_doc_from_json(const uint8_t *buf, size_t len,
                                           struct ferry_rollout_doc **out, struct ferry_diag *d)
{
    static const char what[] = "rollout doc";
    cJSON *o = NULL;
    struct ferry_rollout_doc *doc = calloc(1, sizeof(*doc));
    if (!doc)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_ROLLOUT_DOC_MAX_BYTES, what, &o, d);
    if (err == FERRY_OK)
        err = doc_fields(o, doc, d);
    if (err == FERRY_OK)
        err = envelope_field(o, "release", true, &doc->release, &doc->release_len, what, d);
    if (err == FERRY_OK)
        err = envelope_field(o, "revert", false, &doc->revert, &doc->revert_len, what, d);
    const cJSON *windows = o ? cJSON_GetObjectItemCaseSensitive(o, "windows") : NULL;
    if (err == FERRY_OK && !cJSON_IsArray(windows))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'windows' must be an array", what);
    for (const cJSON *e = windows ? windows->child : NULL; err == FERRY_OK && e; e = e->next) {
        if (doc->nwindows == FERRY_ROLLOUT_MAX_WINDOWS)
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: more than %d windows", what,
                             FERRY_ROLLOUT_MAX_WINDOWS);
        else
            err = window_from_json(e, &doc->windows[doc->nwindows], NULL, what, d);
        if (err == FERRY_OK)
            doc->nwindows++;
    }
    const cJSON *targets = o ? cJSON_GetObjectItemCaseSensitive(o, "targets") : NULL;
    int count = targets ? cJSON_GetArraySize(targets) : 0;
    if (err == FERRY_OK && (!cJSON_IsArray(targets) || count > FERRY_ROLLOUT_DOC_MAX_NODES))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'targets' must be an array of at most %d",
                         what, FERRY_ROLLOUT_DOC_MAX_NODES);
    if (err == FERRY_OK && count > 0 &&
        !(doc->targets = calloc((size_t)count, sizeof(*doc->targets))))
        err = ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory for %d targets", what, count);
    for (const cJSON *e = targets ? targets->child : NULL; err == FERRY_OK && e; e = e->next)
        err = target_from_json(e, doc, &doc->targets[doc->ntargets++], d);
    cJSON_Delete(o);
    if (err != FERRY_OK) {
        ferry_rollout_doc_free(doc);
        return err;
    }
    *out = doc;
    return FERRY_OK;
}

/* ---- report --------------------------------------------------------------------------- */

enum ferry_err ferry_rollout_report_to_json(const struct ferry_rollout_report *r, char **out,
                                            size_t *len, struct ferry_diag *d)
{
    cJSON *o = cJSON_CreateObject(), *items = NULL;
    bool ok = o && r->n <= FERRY_ROLLOUT_REPORT_ITEMS &&
              cJSON_AddNumberToObject(o, "format", FERRY_ROLLOUT_FORMAT) &&
              cJSON_AddStringToObject(o, "gateway", r->gateway) &&
              cJSON_AddNumberToObject(o, "at", (double)r->at) &&
              (items = cJSON_AddArrayToObject(o, "rollouts")) != NULL;
    for (size_t i = 0; ok && i < r->n; i++) {
        const struct ferry_rollout_report_item *it = &r->items[i];
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(items, e);
        if (!ok) {
            cJSON_Delete(e);
            break;
        }
        ok = cJSON_AddNumberToObject(e, "rollout", (double)it->rollout) &&
             cJSON_AddNumberToObject(e, "revision", (double)it->revision) &&
             cJSON_AddNumberToObject(e, "resume", (double)it->resume) &&
             cJSON_AddStringToObject(e, "product", it->product) &&
             cJSON_AddBoolToObject(e, "halted", it->halted) &&
             (!it->halted || (cJSON_AddNumberToObject(e, "halted_at", (double)it->halted_at) &&
                              cJSON_AddBoolToObject(e, "offline", it->offline) &&
                              cJSON_AddNumberToObject(e, "finals", (double)it->finals) &&
                              cJSON_AddNumberToObject(e, "failed", (double)it->failed) &&
                              cJSON_AddStringToObject(e, "reason", it->reason)));
    }
    enum ferry_err err = ok ? ferry_json_print(o, out, len, d)
                            : ferry_fail(d, FERRY_E_NOMEM, "rollout report: out of memory");
    cJSON_Delete(o);
    return err;
}

static enum ferry_err report_item(const cJSON *e, struct ferry_rollout_report_item *it,
                                  struct ferry_diag *d)
{
    static const char *const keys[] = {"rollout", "revision",  "resume",  "product",
                                       "halted",  "halted_at", "offline", "finals",
                                       "failed",  "reason",    NULL};
    static const char what[] = "rollout report";
    const int64_t big = INT64_C(1) << 53;
    int64_t v[6] = {0};
    memset(it, 0, sizeof(*it));
    if (!cJSON_IsObject(e))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: an item must be an object", what);
    enum ferry_err err = ferry_json_only_keys(e, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(e, "rollout", true, 1, big, &v[0], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(e, "revision", true, 1, big, &v[1], what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(e, "resume", true, 0, big, &v[2], what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(e, "product", true, FERRY_ID_MAX, it->product, what, d);
    if (err == FERRY_OK && !ferry_id_valid(it->product))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: product is not an id", what);
    if (err == FERRY_OK)
        err = ferry_json_bool(e, "halted", true, &it->halted, what, d);
    if (err == FERRY_OK && it->halted)
        err = ferry_json_int(e, "halted_at", true, 0, big, &v[3], what, d);
    if (err == FERRY_OK && it->halted)
        err = ferry_json_bool(e, "offline", true, &it->offline, what, d);
    if (err == FERRY_OK && it->halted)
        err = ferry_json_int(e, "finals", true, 0, big, &v[4], what, d);
    if (err == FERRY_OK && it->halted)
        err = ferry_json_int(e, "failed", true, 0, v[4], &v[5], what, d);
    if (err == FERRY_OK && it->halted)
        err = ferry_json_str(e, "reason", true, FERRY_ROLLOUT_REASON_MAX, it->reason, what, d);
    it->rollout = (uint64_t)v[0];
    it->revision = (uint64_t)v[1];
    it->resume = (uint64_t)v[2];
    it->halted_at = v[3];
    it->finals = (uint64_t)v[4];
    it->failed = (uint64_t)v[5];
    return err;
}

enum ferry_err ferry_rollout_report_from_json(const uint8_t *buf, size_t len,
                                              struct ferry_rollout_report *out,
                                              struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "gateway", "at", "rollouts", NULL};
    static const char what[] = "rollout report";
    cJSON *o = NULL;
    struct ferry_rollout_report *r = calloc(1, sizeof(*r));
    if (!r)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
    int64_t format = 0;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_ROLLOUT_REPORT_MAX, what, &o, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(o, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "format", true, 1, FERRY_ROLLOUT_FORMAT, &format, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "gateway", true, FERRY_ID_MAX, r->gateway, what, d);
    if (err == FERRY_OK && !ferry_id_valid(r->gateway))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: gateway is not an id", what);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "at", true, 0, INT64_C(1) << 53, &r->at, what, d);
    const cJSON *items = o ? cJSON_GetObjectItemCaseSensitive(o, "rollouts") : NULL;
    if (err == FERRY_OK && !cJSON_IsArray(items))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'rollouts' must be an array", what);
    for (const cJSON *e = items ? items->child : NULL; err == FERRY_OK && e; e = e->next) {
        if (r->n == FERRY_ROLLOUT_REPORT_ITEMS)
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: more than %d items", what,
                             FERRY_ROLLOUT_REPORT_ITEMS);
        else
            err = report_item(e, &r->items[r->n++], d);
    }
    cJSON_Delete(o);
    if (err == FERRY_OK)
        *out = *r;
    free(r);
    return err;
}

/* ---- fleet configuration ------------------------------------------------------------ */

enum ferry_err ferry_fleet_config_to_json(const struct ferry_fleet_config *c, char **out,
                                          size_t *len, struct ferry_diag *d)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "format", FERRY_ROLLOUT_FORMAT) &&
              cJSON_AddBoolToObject(o, "require_rollout", c->require_rollout);
    enum ferry_err err = ok ? ferry_json_print(o, out, len, d)
                            : ferry_fail(d, FERRY_E_NOMEM, "fleet config: out of memory");
    cJSON_Delete(o);
    return err;
}

enum ferry_err ferry_fleet_config_from_json(const uint8_t *buf, size_t len,
                                            struct ferry_fleet_config *out, struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "require_rollout", NULL};
    static const char what[] = "fleet config";
    cJSON *o = NULL;
    int64_t format = 0;
    struct ferry_fleet_config c = {false};
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_FLEET_CONFIG_MAX, what, &o, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(o, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "format", true, 1, FERRY_ROLLOUT_FORMAT, &format, what, d);
    if (err == FERRY_OK)
        err = ferry_json_bool(o, "require_rollout", false, &c.require_rollout, what, d);
    cJSON_Delete(o);
    if (err == FERRY_OK)
        *out = c;
    return err;
}

/* ---- view ----------------------------------------------------------------------------- */

static bool add_states(cJSON *o, const char *key, const uint64_t *by_state)
{
    cJSON *st = cJSON_AddObjectToObject(o, key);
    for (int s = 0; st && s < FERRY_STATE__COUNT; s++)
        if (by_state[s] && !cJSON_AddNumberToObject(st, ferry_state_name((enum ferry_state)s),
                                                    (double)by_state[s]))
            return false;
    return st != NULL;
}

static cJSON *rules_json(const struct ferry_rollout_plan *p)
{
    cJSON *o = cJSON_CreateObject(), *windows = NULL;
    bool ok = o && add_rules(o, p, &windows);
    for (size_t i = 0; ok && i < p->nwindows; i++) {
        char text[FERRY_WINDOW_TEXT_MAX], sel[FERRY_SEL_TEXT_MAX],
            item[FERRY_WINDOW_TEXT_MAX + FERRY_SEL_TEXT_MAX + 4];
        ferry_window_format(&p->windows[i].w, text);
        ferry_sel_format(&p->windows[i].sel, sel);
        snprintf(item, sizeof(item), "%s%s%s", sel, sel[0] ? ": " : "", text);
        cJSON *str = cJSON_CreateString(item);
        ok = str && cJSON_AddItemToArray(windows, str);
        if (!ok)
            cJSON_Delete(str);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool view_waves(cJSON *o, const struct ferry_rollout_view *v)
{
    cJSON *waves = cJSON_AddArrayToObject(o, "waves");
    uint64_t targets = 0, totals[FERRY_STATE__COUNT] = {0};
    bool ok = waves != NULL;
    for (size_t i = 0; ok && i < v->plan->nwaves; i++) {
        const struct ferry_rollout_view_wave *w = &v->waves[i];
        char spec[WAVE_SPEC_MAX];
        wave_spec(&v->plan->waves[i], spec);
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(waves, e);
        if (!ok) {
            cJSON_Delete(e);
            break;
        }
        uint64_t reported = 0;
        for (int s = 0; s < FERRY_STATE__COUNT; s++) {
            reported += w->by_state[s];
            totals[s] += w->by_state[s];
        }
        targets += w->targets;
        ok = cJSON_AddNumberToObject(e, "wave", (double)(i + 1)) &&
             cJSON_AddStringToObject(e, "spec", spec) &&
             cJSON_AddBoolToObject(e, "open", w->open) &&
             cJSON_AddNumberToObject(e, "opened_at", (double)w->opened_at) &&
             cJSON_AddNumberToObject(e, "targets", (double)w->targets) &&
             cJSON_AddNumberToObject(e, "silent",
                                     (double)(w->targets > reported ? w->targets - reported : 0)) &&
             add_states(e, "states", w->by_state) &&
             cJSON_AddNumberToObject(e, "last_success_at", (double)w->last_success_at);
    }
    cJSON *t = ok ? cJSON_AddObjectToObject(o, "totals") : NULL;
    return t && cJSON_AddNumberToObject(t, "targets", (double)targets) &&
           add_states(t, "states", totals);
}

enum ferry_err ferry_rollout_view_to_json(const struct ferry_rollout_view *v, char **out,
                                          size_t *len, struct ferry_diag *d)
{
    cJSON *o = cJSON_CreateObject(), *rules = v->plan ? rules_json(v->plan) : NULL, *halt = NULL;
    bool ok = o && rules && cJSON_AddNumberToObject(o, "id", (double)v->id) &&
              cJSON_AddStringToObject(o, "product", v->product) &&
              cJSON_AddStringToObject(o, "release", v->release) &&
              cJSON_AddStringToObject(o, "version", v->version) &&
              cJSON_AddNumberToObject(o, "seq", (double)v->seq);
    if (ok && v->revert_release[0]) {
        cJSON *r = cJSON_AddObjectToObject(o, "revert");
        ok = r && cJSON_AddStringToObject(r, "release", v->revert_release) &&
             cJSON_AddNumberToObject(r, "seq", (double)v->revert_seq);
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "revert") != NULL;
    }
    ok = ok && cJSON_AddStringToObject(o, "state", ferry_rollout_state_name(v->state)) &&
         cJSON_AddNumberToObject(o, "state_at", (double)v->state_at) &&
         cJSON_AddNumberToObject(o, "created_at", (double)v->created_at) &&
         cJSON_AddStringToObject(o, "created_by", v->created_by) &&
         cJSON_AddNumberToObject(o, "start_at", (double)v->start_at) &&
         cJSON_AddNumberToObject(o, "revision", (double)v->revision) &&
         cJSON_AddItemToObject(o, "rules", rules);
    if (!ok && rules && (!o || !cJSON_GetObjectItemCaseSensitive(o, "rules")))
        cJSON_Delete(rules);
    ok = ok && cJSON_AddNumberToObject(o, "open_waves", v->open_waves) && view_waves(o, v) &&
         (halt = cJSON_AddObjectToObject(o, "halt")) != NULL &&
         cJSON_AddNumberToObject(halt, "finals", (double)v->halt_finals) &&
         cJSON_AddNumberToObject(halt, "failed", (double)v->halt_failed) &&
         cJSON_AddStringToObject(o, "waiting", v->waiting);
    if (ok && v->log) {
        cJSON *log = cJSON_AddArrayToObject(o, "log");
        ok = log != NULL;
        for (size_t i = 0; ok && i < v->nlog; i++) {
            cJSON *e = cJSON_CreateObject();
            ok = e && cJSON_AddItemToArray(log, e);
            if (!ok) {
                cJSON_Delete(e);
                break;
            }
            ok = cJSON_AddNumberToObject(e, "at", (double)v->log[i].at) &&
                 cJSON_AddStringToObject(e, "actor", v->log[i].actor) &&
                 cJSON_AddStringToObject(e, "action", v->log[i].action) &&
                 cJSON_AddStringToObject(e, "reason", v->log[i].reason);
        }
    }
    enum ferry_err err = ok ? ferry_json_print(o, out, len, d)
                            : ferry_fail(d, FERRY_E_NOMEM, "rollout view: out of memory");
    cJSON_Delete(o);
    return err;
}
