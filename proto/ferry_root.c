#include "ferry_root.h"

#include "ferry_json.h"

#include <inttypes.h>
#include <mbedtls/pk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHAT         "root"
#define JSON_INT_MAX (INT64_C(1) << 53)
#define PEM_MAX      1024
#define FIELD_MAX    48

const char *ferry_role_name(enum ferry_role role)
{
    static const char *const names[] = {"root", "release", "timestamp"};
    return (unsigned)role < FERRY_ROLE__COUNT ? names[role] : "unknown";
}

static int key_index(const struct ferry_root *r, const char *kid)
{
    for (size_t i = 0; i < r->nkeys && i < FERRY_ROOT_MAX_KEYS; i++) {
        if (strcmp(r->keys[i].kid, kid) == 0)
            return (int)i;
    }
    return -1;
}

static bool role_lists(const struct ferry_root_role *ro, const char *kid)
{
    for (size_t i = 0; ro->present && i < ro->nkids && i < FERRY_ROLE_MAX_KEYS; i++) {
        if (strcmp(ro->kids[i], kid) == 0)
            return true;
    }
    return false;
}

/* ---- validation, shared by parse and encode ---- */

static enum ferry_err validate_keys(const struct ferry_root *r, struct ferry_diag *d)
{
    if (r->nkeys < 1 || r->nkeys > FERRY_ROOT_MAX_KEYS)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'keys' must hold 1..%d keys, got %zu",
                          FERRY_ROOT_MAX_KEYS, r->nkeys);
    for (size_t i = 0; i < r->nkeys; i++) {
        char actual[FERRY_KID_LEN + 1];
        ferry_kid_of_point(r->keys[i].point, actual);
        if (strcmp(actual, r->keys[i].kid) != 0)
            return ferry_fail(d, FERRY_E_MALFORMED,
                              WHAT ": keys[%zu]: 'kid' must be the key's fingerprint (%s), got "
                                   "'%.16s'",
                              i, actual, r->keys[i].kid);
        if (key_index(r, r->keys[i].kid) != (int)i)
            return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": key %s is listed twice",
                              r->keys[i].kid);
    }
    return FERRY_OK;
}

static enum ferry_err validate_role(const struct ferry_root *r, enum ferry_role role,
                                    struct ferry_diag *d)
{
    const struct ferry_root_role *ro = &r->roles[role];
    const char *name = ferry_role_name(role);
    if (!ro->present) {
        if (role == FERRY_ROLE_TIMESTAMP)
            return FERRY_OK;
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": missing role '%s'", name);
    }
    if (ro->nkids < 1 || ro->nkids > FERRY_ROLE_MAX_KEYS)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": role '%s' must list 1..%d keys, got %zu",
                          name, FERRY_ROLE_MAX_KEYS, ro->nkids);
    if (ro->threshold < 1 || ro->threshold > ro->nkids)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": role '%s': threshold must be 1..%zu (its keys), got %u", name,
                          ro->nkids, ro->threshold);
    if (role == FERRY_ROLE_RELEASE && ro->threshold != 1)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": role 'release': threshold must be 1 (a manifest carries one "
                               "signature), got %u",
                          ro->threshold);
    for (size_t i = 0; i < ro->nkids; i++) {
        if (key_index(r, ro->kids[i]) < 0)
            return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": role '%s': key %.16s is not in 'keys'",
                              name, ro->kids[i]);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ro->kids[i], ro->kids[j]) == 0)
                return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": role '%s' lists key %s twice", name,
                                  ro->kids[i]);
        }
    }
    return FERRY_OK;
}

static enum ferry_err validate(const struct ferry_root *r, struct ferry_diag *d)
{
    if (r->version < 1 || r->version > (uint64_t)JSON_INT_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'version' must be in 1..%" PRId64 ", got %" PRIu64,
                          JSON_INT_MAX, r->version);
    if (r->issued_at < 0 || r->issued_at > JSON_INT_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'issued_at' out of range");
    enum ferry_err err = validate_keys(r, d);
    for (int role = 0; err == FERRY_OK && role < FERRY_ROLE__COUNT; role++)
        err = validate_role(r, (enum ferry_role)role, d);
    if (err != FERRY_OK)
        return err;
    if (r->nrevoked > FERRY_ROOT_MAX_KEYS)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'revoked' holds more than %d ids",
                          FERRY_ROOT_MAX_KEYS);
    for (size_t i = 0; i < r->nrevoked; i++) {
        if (!ferry_kid_valid(r->revoked[i]))
            return ferry_fail(d, FERRY_E_MALFORMED,
                              WHAT ": revoked[%zu] must be %d lower-case hex digits", i,
                              FERRY_KID_LEN);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->revoked[i], r->revoked[j]) == 0)
                return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": key %s is revoked twice",
                                  r->revoked[i]);
        }
        for (int role = 0; role < FERRY_ROLE__COUNT; role++) {
            if (role_lists(&r->roles[role], r->revoked[i]))
                return ferry_fail(d, FERRY_E_MALFORMED,
                                  WHAT ": key %s is revoked but role '%s' lists it", r->revoked[i],
                                  ferry_role_name((enum ferry_role)role));
        }
    }
    if (r->max_seq_step > (uint64_t)JSON_INT_MAX || r->max_manifest_lifetime < 0 ||
        r->max_manifest_lifetime > JSON_INT_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": a policy value is out of range");
    return FERRY_OK;
}

/* ---- parsing ---- */

static const cJSON *member(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static enum ferry_err read_key(const cJSON *e, size_t i, struct ferry_root *r, struct ferry_diag *d)
{
    static const char *const keys[] = {"kid", "public_key", NULL};
    char what[FIELD_MAX], pem[PEM_MAX + 1];
    snprintf(what, sizeof(what), WHAT ": keys[%zu]", i);
    struct ferry_root_key *k = &r->keys[i];
    if (!cJSON_IsObject(e))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: must be an object", what);
    enum ferry_err err = ferry_json_only_keys(e, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(e, "kid", true, FERRY_KID_LEN, k->kid, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(e, "public_key", true, PEM_MAX, pem, what, d);
    if (err == FERRY_OK)
        err = ferry_pem_to_point((const uint8_t *)pem, strlen(pem), what, k->point, d);
    return err;
}

static enum ferry_err read_keys(const cJSON *root, struct ferry_root *r, struct ferry_diag *d)
{
    const cJSON *arr = member(root, "keys");
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n < 1 || n > FERRY_ROOT_MAX_KEYS)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'keys' must be an array of 1..%d keys",
                          FERRY_ROOT_MAX_KEYS);
    enum ferry_err err = FERRY_OK;
    for (const cJSON *e = arr->child; e && err == FERRY_OK; e = e->next)
        err = read_key(e, r->nkeys++, r, d);
    return err;
}

/* An array of 0..max key ids into kids. */
static enum ferry_err read_kids(const cJSON *arr, const char *what, size_t max,
                                char (*kids)[FERRY_KID_LEN + 1], size_t *n, struct ferry_diag *d)
{
    int count = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || count < 0 || (size_t)count > max)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s must be an array of at most %zu key ids", what,
                          max);
    *n = 0;
    for (const cJSON *e = arr->child; e; e = e->next) {
        const char *s = cJSON_GetStringValue(e);
        if (!s || !ferry_kid_valid(s))
            return ferry_fail(d, FERRY_E_MALFORMED, "%s[%zu] must be %d lower-case hex digits",
                              what, *n, FERRY_KID_LEN);
        memcpy(kids[(*n)++], s, FERRY_KID_LEN + 1);
    }
    return FERRY_OK;
}

static enum ferry_err read_role(const cJSON *roles, enum ferry_role role, struct ferry_root *r,
                                struct ferry_diag *d)
{
    static const char *const keys[] = {"kids", "threshold", NULL};
    const char *name = ferry_role_name(role);
    const cJSON *o = member(roles, name);
    struct ferry_root_role *ro = &r->roles[role];
    char what[FIELD_MAX];
    snprintf(what, sizeof(what), WHAT ": role '%s'", name);
    if (!o)
        return FERRY_OK; /* validate() says which roles must be there */
    if (!cJSON_IsObject(o))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s must be an object", what);
    ro->present = true;
    int64_t threshold = 0;
    enum ferry_err err = ferry_json_only_keys(o, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "threshold", true, 1, FERRY_ROLE_MAX_KEYS, &threshold, what, d);
    if (err != FERRY_OK)
        return err;
    ro->threshold = (unsigned)threshold;
    char kids_what[FIELD_MAX + 8];
    snprintf(kids_what, sizeof(kids_what), "%s: 'kids'", what);
    const cJSON *kids = member(o, "kids");
    if (!kids)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: missing field 'kids'", what);
    return read_kids(kids, kids_what, FERRY_ROLE_MAX_KEYS, ro->kids, &ro->nkids, d);
}

static enum ferry_err read_roles(const cJSON *root, struct ferry_root *r, struct ferry_diag *d)
{
    static const char *const keys[] = {"root", "release", "timestamp", NULL};
    const cJSON *roles = member(root, "roles");
    if (!roles)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": missing field 'roles'");
    if (!cJSON_IsObject(roles))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'roles' must be an object");
    enum ferry_err err = ferry_json_only_keys(roles, keys, false, WHAT ": roles", d);
    for (int role = 0; err == FERRY_OK && role < FERRY_ROLE__COUNT; role++)
        err = read_role(roles, (enum ferry_role)role, r, d);
    return err;
}

static enum ferry_err read_policy(const cJSON *root, struct ferry_root *r, struct ferry_diag *d)
{
    static const char *const keys[] = {"max_seq_step", "max_manifest_lifetime", NULL};
    const cJSON *o = member(root, "policy");
    if (!o)
        return FERRY_OK;
    if (!cJSON_IsObject(o))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'policy' must be an object");
    int64_t step = 0;
    enum ferry_err err = ferry_json_only_keys(o, keys, true, WHAT ": policy", d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "max_seq_step", false, 1, JSON_INT_MAX, &step, WHAT ": policy", d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "max_manifest_lifetime", false, 1, JSON_INT_MAX,
                             &r->max_manifest_lifetime, WHAT ": policy", d);
    r->max_seq_step = (uint64_t)step;
    return err;
}

static enum ferry_err read_top(const cJSON *root, struct ferry_root *r, struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "type",    "version", "issued_at", "keys",
                                       "roles",  "revoked", "policy",  NULL};
    int64_t format = 0, version = 0;
    char type[16];
    enum ferry_err err = ferry_json_only_keys(root, keys, true, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "format", true, 0, JSON_INT_MAX, &format, WHAT, d);
    if (err == FERRY_OK && format != FERRY_ROOT_FORMAT)
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'format' must be %d, got %" PRId64,
                         FERRY_ROOT_FORMAT, format);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "type", true, sizeof(type) - 1, type, WHAT, d);
    if (err == FERRY_OK && strcmp(type, "root") != 0)
        err =
            ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'type' must be 'root', got '%s'", type);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "version", true, 1, JSON_INT_MAX, &version, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "issued_at", true, 0, JSON_INT_MAX, &r->issued_at, WHAT, d);
    r->version = (uint64_t)version;
    return err;
}

enum ferry_err ferry_root_parse(const uint8_t *buf, size_t len, struct ferry_root *out,
                                struct ferry_diag *d)
{
    struct ferry_root *r = calloc(1, sizeof(*r));
    cJSON *root = NULL;
    if (!r)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_ROOT_MAX_BYTES, WHAT, &root, d);
    if (err == FERRY_OK)
        err = read_top(root, r, d);
    if (err == FERRY_OK)
        err = read_keys(root, r, d);
    if (err == FERRY_OK)
        err = read_roles(root, r, d);
    const cJSON *revoked = root ? member(root, "revoked") : NULL;
    if (err == FERRY_OK && revoked)
        err = read_kids(revoked, WHAT ": field 'revoked'", FERRY_ROOT_MAX_KEYS, r->revoked,
                        &r->nrevoked, d);
    if (err == FERRY_OK)
        err = read_policy(root, r, d);
    if (err == FERRY_OK)
        err = validate(r, d);
    if (err == FERRY_OK)
        *out = *r;
    cJSON_Delete(root);
    free(r);
    return err;
}

/* ---- encoding ---- */

static bool add_int(cJSON *obj, const char *key, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, num) != NULL;
}

static bool add_kids(cJSON *obj, const char *key, const char *kids, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, key);
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *s = cJSON_CreateString(kids + i * (FERRY_KID_LEN + 1));
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            return false;
        }
    }
    return arr != NULL;
}

/* The PEM form of a point, as `ferry-cloud keygen` writes it. */
static bool point_pem(const uint8_t point[FERRY_P256_POINT_LEN], char pem[PEM_MAX])
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    bool ok = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0;
    mbedtls_ecp_keypair *ec = ok ? mbedtls_pk_ec(pk) : NULL;
    ok = ok && ec && mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
         mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, point, FERRY_P256_POINT_LEN) == 0 &&
         mbedtls_pk_write_pubkey_pem(&pk, (unsigned char *)pem, PEM_MAX) == 0;
    mbedtls_pk_free(&pk);
    return ok;
}

static bool add_keys(cJSON *root, const struct ferry_root *r)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "keys");
    for (size_t i = 0; arr && i < r->nkeys; i++) {
        char pem[PEM_MAX];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(arr, e) || !point_pem(r->keys[i].point, pem) ||
            !cJSON_AddStringToObject(e, "kid", r->keys[i].kid) ||
            !cJSON_AddStringToObject(e, "public_key", pem))
            return false;
    }
    return arr != NULL;
}

static bool add_roles(cJSON *root, const struct ferry_root *r)
{
    cJSON *roles = cJSON_AddObjectToObject(root, "roles");
    for (int role = 0; roles && role < FERRY_ROLE__COUNT; role++) {
        const struct ferry_root_role *ro = &r->roles[role];
        if (!ro->present)
            continue;
        cJSON *o = cJSON_AddObjectToObject(roles, ferry_role_name((enum ferry_role)role));
        if (!o || !add_kids(o, "kids", ro->kids[0], ro->nkids) ||
            !add_int(o, "threshold", ro->threshold))
            return false;
    }
    return roles != NULL;
}

static bool build(cJSON *root, const struct ferry_root *r)
{
    bool ok = add_int(root, "format", FERRY_ROOT_FORMAT) &&
              cJSON_AddStringToObject(root, "type", "root") &&
              add_int(root, "version", (int64_t)r->version) &&
              add_int(root, "issued_at", r->issued_at) && add_keys(root, r) && add_roles(root, r);
    if (ok && r->nrevoked)
        ok = add_kids(root, "revoked", r->revoked[0], r->nrevoked);
    if (ok && (r->max_seq_step || r->max_manifest_lifetime)) {
        cJSON *p = cJSON_AddObjectToObject(root, "policy");
        ok = p && (!r->max_seq_step || add_int(p, "max_seq_step", (int64_t)r->max_seq_step)) &&
             (!r->max_manifest_lifetime ||
              add_int(p, "max_manifest_lifetime", r->max_manifest_lifetime));
    }
    return ok;
}

enum ferry_err ferry_root_encode(const struct ferry_root *r, char **out, size_t *len,
                                 struct ferry_diag *d)
{
    enum ferry_err err = validate(r, d);
    if (err != FERRY_OK)
        return err;
    cJSON *root = cJSON_CreateObject();
    if (!root || !build(root, r)) {
        cJSON_Delete(root);
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory while encoding");
    }
    err = ferry_json_print(root, out, len, d);
    cJSON_Delete(root);
    if (err == FERRY_OK && *len > FERRY_ROOT_MAX_BYTES) {
        free(*out);
        *out = NULL;
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": encodes to %zu bytes, the limit is %d",
                          *len, FERRY_ROOT_MAX_BYTES);
    }
    return err;
}

enum ferry_err ferry_root_role_keyring(const struct ferry_root *r, enum ferry_role role,
                                       struct ferry_keyring *kr, struct ferry_diag *d)
{
    ferry_keyring_clear(kr);
    const struct ferry_root_role *ro = &r->roles[role];
    enum ferry_err err = FERRY_OK;
    for (size_t i = 0; ro->present && i < ro->nkids && err == FERRY_OK; i++) {
        int k = key_index(r, ro->kids[i]);
        err = k < 0 ? ferry_fail(d, FERRY_E_MALFORMED, WHAT ": role key %s has no public key",
                                 ro->kids[i])
                    : ferry_keyring_add(kr, r->keys[k].point, false, d);
    }
    for (size_t i = 0; i < r->nrevoked && err == FERRY_OK; i++)
        err = ferry_keyring_revoke_id(kr, r->revoked[i], d);
    return err;
}

bool ferry_root_role_equal(const struct ferry_root_role *a, const struct ferry_root_role *b)
{
    if (a->present != b->present || a->threshold != b->threshold || a->nkids != b->nkids)
        return false;
    for (size_t i = 0; i < a->nkids; i++) {
        if (!role_lists(b, a->kids[i]))
            return false;
    }
    return true;
}
