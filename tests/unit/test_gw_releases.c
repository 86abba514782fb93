#include "cunit_main.h"

#include "ferry_fs.h"
#include "gw_releases.h"
#include "test_keys.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ISSUED   INT64_C(1700000000)
#define LIFETIME (30 * 86400)
#define NOW      (ISSUED + 100)
#define SKEW     300

/* What varies between the releases a test makes. */
struct spec {
    const char *product;
    uint64_t seq;
    const char *model; /* NULL: the sample's two models */
    int64_t issued;    /* 0: ISSUED */
    uint64_t size;     /* 0: 4096 */
    const char *tag;   /* varies the release id, so bytes differ at equal seq */
};

static char *make_env(struct test_key *k, const struct spec *sp, size_t *len)
{
    struct ferry_manifest m;
    uint8_t digest[FERRY_SHA256_LEN];
    char seed[128];
    snprintf(seed, sizeof(seed), "%s/%llu", sp->product, (unsigned long long)sp->seq);
    ferry_sha256(seed, strlen(seed), digest);
    test_manifest_sample(&m, k->kid, digest, sp->size ? sp->size : 4096);
    snprintf(m.product, sizeof(m.product), "%s", sp->product);
    snprintf(m.release_id, sizeof(m.release_id), "%s-%llu%s", sp->product,
             (unsigned long long)sp->seq, sp->tag ? sp->tag : "");
    m.seq = sp->seq;
    if (sp->model) {
        memset(m.hw, 0, sizeof(m.hw));
        snprintf(m.hw[0].model, sizeof(m.hw[0].model), "%s", sp->model);
        m.nhw = 1;
    }
    m.issued_at = sp->issued ? sp->issued : ISSUED;
    m.expires_at = m.issued_at + LIFETIME;
    m.constraints.window_start = 0;
    m.constraints.window_end = 0;
    return test_envelope_of(k, &m, len);
}

static void pathf(char *out, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(n > 0 && n < PATH_MAX);
}

static const char *fresh_dir(void)
{
    static char dir[PATH_MAX];
    static unsigned counter;
    pathf(dir, "%s/state-%u", ferry_test_tmpdir(), counter++);
    return dir;
}

static struct gw_releases *open_rel(const char *dir, const struct ferry_keyring *kr,
                                    uint64_t max_size, int64_t now)
{
    struct gw_releases_opts o = {
        .state_dir = dir, .keyring = kr, .max_artifact_size = max_size, .clock_skew = SKEW};
    struct gw_releases *r = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_releases_open(&o, now, &r, &d), FERRY_OK);
    return r;
}

static enum ferry_err accept_spec(struct gw_releases *r, struct test_key *k, const char *topic,
                                  const struct spec *sp, int64_t now,
                                  enum gw_release_outcome *outcome, struct ferry_diag *d)
{
    size_t len = 0;
    char *env = make_env(k, sp, &len);
    enum ferry_err err = gw_releases_accept(r, topic, (const uint8_t *)env, len, now, outcome, d);
    free(env);
    return err;
}

static void accept_ok(struct gw_releases *r, struct test_key *k, const struct spec *sp)
{
    enum gw_release_outcome out = GW_RELEASE_ALREADY_HELD;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(accept_spec(r, k, sp->product, sp, NOW, &out, &d), FERRY_OK);
    CU_ASSERT_EQUAL(out, GW_RELEASE_ACCEPTED);
}

static uint64_t current_seq(const struct gw_releases *r, const char *product)
{
    const struct gw_release *rel = gw_releases_current(r, product);
    return rel ? rel->manifest.seq : UINT64_MAX;
}

static bool file_holds(const char *path, const struct gw_release *rel)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ferry_read_file(path, 1 << 20, &buf, &len, NULL) != FERRY_OK)
        return false;
    bool same = rel && len == rel->envelope_len && memcmp(buf, rel->envelope, len) == 0;
    free(buf);
    return same;
}

static void new_release_is_persisted_and_same_bytes_are_a_no_op(void)
{
    struct test_key k;
    test_key_init(&k, 1);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    CU_ASSERT_PTR_NULL(gw_releases_current(r, "meter"));

    struct spec s42 = {.product = "meter", .seq = 42};
    size_t len = 0;
    char *env = make_env(&k, &s42, &len);
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_releases_accept(r, "meter", (const uint8_t *)env, len, NOW, &out, &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(out, GW_RELEASE_ACCEPTED);
    const struct gw_release *cur = gw_releases_current(r, "meter");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
    CU_ASSERT_EQUAL(cur->manifest.seq, 42);
    CU_ASSERT_EQUAL(cur->envelope_len, len);
    CU_ASSERT_EQUAL(memcmp(cur->envelope, env, len), 0);
    CU_ASSERT_PTR_NULL(gw_releases_previous(r, "meter"));
    char path[PATH_MAX];
    pathf(path, "%s/releases/meter.env", dir);
    CU_ASSERT_TRUE(file_holds(path, cur));

    /* The retained message again, as on every reconnect. */
    CU_ASSERT_EQUAL(gw_releases_accept(r, "meter", (const uint8_t *)env, len, NOW, &out, &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(out, GW_RELEASE_ALREADY_HELD);
    CU_ASSERT_PTR_NULL(gw_releases_previous(r, "meter"));
    free(env);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

static void downgrade_and_replay_are_refused_and_change_nothing(void)
{
    struct test_key k;
    test_key_init(&k, 2);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    struct gw_releases *r = open_rel(fresh_dir(), kr, 0, NOW);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 42});
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};

    struct spec older = {.product = "meter", .seq = 41};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &older, NOW, &out, &d), FERRY_E_DOWNGRADE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "meter"));
    CU_ASSERT_EQUAL(current_seq(r, "meter"), 42);

    struct spec conflict = {.product = "meter", .seq = 42, .tag = "-other"};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &conflict, NOW, &out, &d), FERRY_E_DOWNGRADE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "42"));
    CU_ASSERT_EQUAL(strcmp(gw_releases_current(r, "meter")->manifest.release_id, "meter-42"), 0);

    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 43});
    CU_ASSERT_EQUAL(current_seq(r, "meter"), 43);
    CU_ASSERT_EQUAL(gw_releases_previous(r, "meter")->manifest.seq, 42);

    /* The one now previous is older than current: a downgrade too. */
    struct spec again = {.product = "meter", .seq = 42};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &again, NOW, &out, &d), FERRY_E_DOWNGRADE);
    CU_ASSERT_EQUAL(current_seq(r, "meter"), 43);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

static void untrusted_signatures_are_refused(void)
{
    struct test_key good, other;
    test_key_init(&good, 3);
    test_key_init(&other, 4);
    struct ferry_keyring *kr = test_keyring_of(&good, false);
    struct gw_releases *r = open_rel(fresh_dir(), kr, 0, NOW);
    accept_ok(r, &good, &(struct spec){.product = "meter", .seq = 1});
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};

    /* A key the keyring does not hold. */
    struct spec s2 = {.product = "meter", .seq = 2};
    CU_ASSERT_EQUAL(accept_spec(r, &other, "meter", &s2, NOW, &out, &d), FERRY_E_UNKNOWN_KEY);

    /* The trusted key's id over another key's signature. */
    struct ferry_manifest m;
    char *text = NULL, *env = NULL;
    size_t text_len = 0, len = 0;
    uint8_t sig[FERRY_ES256_SIG_LEN];
    test_manifest_sample(&m, good.kid, NULL, 100);
    strcpy(m.product, "meter");
    m.seq = 2;
    m.issued_at = ISSUED;
    m.expires_at = ISSUED + LIFETIME;
    CU_ASSERT_FATAL(ferry_manifest_encode(&m, &text, &text_len, NULL) == FERRY_OK);
    test_key_sign(&other, text, text_len, sig);
    CU_ASSERT_FATAL(ferry_envelope_encode((const uint8_t *)text, text_len, good.kid, sig, &env,
                                          &len, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_releases_accept(r, "meter", (const uint8_t *)env, len, NOW, &out, &d),
                    FERRY_E_BAD_SIGNATURE);
    free(text);
    free(env);
    CU_ASSERT_EQUAL(current_seq(r, "meter"), 1);
    gw_releases_free(r);
    ferry_keyring_free(kr);

    /* A revoked key. */
    kr = test_keyring_of(&good, true);
    r = open_rel(fresh_dir(), kr, 0, NOW);
    CU_ASSERT_EQUAL(accept_spec(r, &good, "meter", &s2, NOW, &out, &d), FERRY_E_REVOKED_KEY);
    CU_ASSERT_EQUAL(gw_releases_count(r), 0);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&good);
    test_key_free(&other);
}

static void expired_early_and_oversize_releases_are_refused(void)
{
    struct test_key k;
    test_key_init(&k, 5);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    struct gw_releases *r = open_rel(fresh_dir(), kr, 10000, NOW);
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    struct spec s = {.product = "meter", .seq = 5};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &s, ISSUED + LIFETIME, &out, &d), FERRY_E_EXPIRED);
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &s, ISSUED - SKEW - 1, &out, &d),
                    FERRY_E_NOT_YET_VALID);
    struct spec big = {.product = "meter", .seq = 5, .size = 10001};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &big, NOW, &out, &d), FERRY_E_ARTIFACT_TOO_LARGE);
    CU_ASSERT_EQUAL(gw_releases_count(r), 0);
    struct spec fits = {.product = "meter", .seq = 5, .size = 10000};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &fits, NOW, &out, &d), FERRY_OK);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

static void product_must_match_its_topic(void)
{
    struct test_key k;
    test_key_init(&k, 6);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    struct spec s = {.product = "meter", .seq = 5};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "valve", &s, NOW, &out, &d), FERRY_E_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "valve"));
    CU_ASSERT_EQUAL(accept_spec(r, &k, "../meter", &s, NOW, &out, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(gw_releases_count(r), 0);
    char path[PATH_MAX];
    pathf(path, "%s/releases/valve.env", dir);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

static void a_failed_write_changes_nothing(void)
{
    struct test_key k;
    test_key_init(&k, 7);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    /* A folder where the file must go makes the rename fail. */
    char path[PATH_MAX];
    pathf(path, "%s/releases/pump.env", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    struct spec s = {.product = "pump", .seq = 1};
    CU_ASSERT_NOT_EQUAL(accept_spec(r, &k, "pump", &s, NOW, &out, &d), FERRY_OK);
    CU_ASSERT_PTR_NULL(gw_releases_current(r, "pump"));
    CU_ASSERT_EQUAL(rmdir(path), 0);
    CU_ASSERT_EQUAL(accept_spec(r, &k, "pump", &s, NOW, &out, &d), FERRY_OK);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

static void refs_of(const struct gw_releases *r, uint8_t (*out)[FERRY_SHA256_LEN], size_t *n)
{
    CU_ASSERT_EQUAL_FATAL(gw_releases_refs(r, out, GW_RELEASES_MAX_REFS, n), FERRY_OK);
}

static bool refs_hold(uint8_t (*refs)[FERRY_SHA256_LEN], size_t n, const struct gw_release *rel)
{
    for (size_t i = 0; rel && i < n; i++)
        if (memcmp(refs[i], rel->manifest.sha256, FERRY_SHA256_LEN) == 0)
            return true;
    return false;
}

static void restart_restores_current_and_previous(void)
{
    struct test_key k;
    test_key_init(&k, 8);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 42});
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 43});
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 44});
    accept_ok(r, &k, &(struct spec){.product = "valve", .seq = 7});
    gw_releases_free(r);

    r = open_rel(dir, kr, 0, NOW);
    CU_ASSERT_EQUAL(gw_releases_count(r), 2);
    CU_ASSERT_EQUAL(current_seq(r, "meter"), 44);
    CU_ASSERT_EQUAL(gw_releases_previous(r, "meter")->manifest.seq, 43);
    CU_ASSERT_EQUAL(current_seq(r, "valve"), 7);
    CU_ASSERT_PTR_NULL(gw_releases_previous(r, "valve"));
    uint8_t refs[GW_RELEASES_MAX_REFS][FERRY_SHA256_LEN];
    size_t n = 0;
    refs_of(r, refs, &n);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_TRUE(refs_hold(refs, n, gw_releases_current(r, "meter")));
    CU_ASSERT_TRUE(refs_hold(refs, n, gw_releases_previous(r, "meter")));
    CU_ASSERT_TRUE(refs_hold(refs, n, gw_releases_current(r, "valve")));
    CU_ASSERT_EQUAL(gw_releases_refs(r, refs, 2, &n), FERRY_E_TOO_LARGE);

    /* The anti-rollback floor survives too. */
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    struct spec older = {.product = "meter", .seq = 43, .tag = "-x"};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &older, NOW, &out, &d), FERRY_E_DOWNGRADE);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

/* Runs gw_releases_open with stderr going to a file; returns what was
 * logged (the caller frees it). */
static char *open_logged(const char *dir, const struct ferry_keyring *kr, int64_t now,
                         struct gw_releases **r)
{
    char path[PATH_MAX];
    pathf(path, "%s/log.txt", ferry_test_tmpdir());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    int saved = dup(2);
    CU_ASSERT_FATAL(saved >= 0 && dup2(fd, 2) == 2);
    *r = open_rel(dir, kr, 0, now);
    CU_ASSERT_FATAL(dup2(saved, 2) == 2);
    close(saved);
    close(fd);
    uint8_t *text = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_read_file(path, 1 << 20, &text, &len, NULL) == FERRY_OK);
    return (char *)text;
}

static void corrupted_file_is_skipped_with_an_error(void)
{
    struct test_key k;
    test_key_init(&k, 9);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 42});
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 43});
    accept_ok(r, &k, &(struct spec){.product = "valve", .seq = 7});
    gw_releases_free(r);

    /* One bit flipped inside the signed manifest's base64. */
    char path[PATH_MAX];
    pathf(path, "%s/releases/meter.env", dir);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_read_file(path, 1 << 20, &buf, &len, NULL) == FERRY_OK);
    char *b64 = strstr((char *)buf, "\"manifest\":\"");
    CU_ASSERT_FATAL(b64 != NULL);
    b64[20] ^= 0x01;
    CU_ASSERT_FATAL(ferry_write_atomic(path, buf, len, 0644, NULL) == FERRY_OK);
    free(buf);

    char *log = open_logged(dir, kr, NOW, &r);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "error"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "meter.env skipped"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "signature"));
    free(log);
    CU_ASSERT_PTR_NULL(gw_releases_current(r, "meter"));
    CU_ASSERT_EQUAL(gw_releases_previous(r, "meter")->manifest.seq, 42);
    CU_ASSERT_EQUAL(current_seq(r, "valve"), 7);

    /* Nothing older than what is still known gets in; the cloud's retained
     * copy of the current release does. */
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    struct spec older = {.product = "meter", .seq = 41};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &older, NOW, &out, &d), FERRY_E_DOWNGRADE);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 43});
    CU_ASSERT_EQUAL(gw_releases_previous(r, "meter")->manifest.seq, 42);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

static void expired_and_revoked_files_are_not_served_after_restart(void)
{
    struct test_key k;
    test_key_init(&k, 10);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 42});
    gw_releases_free(r);

    int64_t later = ISSUED + LIFETIME + 10;
    char *log = open_logged(dir, kr, later, &r);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "expired"));
    free(log);
    CU_ASSERT_PTR_NULL(gw_releases_current(r, "meter"));
    /* Its seq still bars older releases, even fresh ones. */
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    struct spec fresh_old = {.product = "meter", .seq = 41, .issued = later};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &fresh_old, later, &out, &d), FERRY_E_DOWNGRADE);
    struct spec fresh_same = {.product = "meter", .seq = 42, .issued = later};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &fresh_same, later, &out, &d), FERRY_E_DOWNGRADE);
    struct spec fresh_new = {.product = "meter", .seq = 43, .issued = later};
    CU_ASSERT_EQUAL(accept_spec(r, &k, "meter", &fresh_new, later, &out, &d), FERRY_OK);
    gw_releases_free(r);
    ferry_keyring_free(kr);

    kr = test_keyring_of(&k, true);
    log = open_logged(dir, kr, later, &r);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "revoked"));
    free(log);
    CU_ASSERT_EQUAL(gw_releases_count(r), 0);
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

static void every_product_has_its_own_current_release(void)
{
    struct test_key k;
    test_key_init(&k, 11);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    struct gw_releases *r = open_rel(fresh_dir(), kr, 0, NOW);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 1}); /* mx-100 and mx-200 */
    accept_ok(r, &k,
              &(struct spec){.product = "valve", .seq = 1, .model = "mx-200", .issued = NOW - 10});
    accept_ok(r, &k,
              &(struct spec){.product = "pump", .seq = 1, .model = "mx-200", .issued = NOW - 10});
    const struct gw_release *rel = gw_releases_current(r, "meter");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rel);
    CU_ASSERT_STRING_EQUAL(rel->manifest.product, "meter");
    rel = gw_releases_current(r, "pump");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rel);
    CU_ASSERT_STRING_EQUAL(rel->manifest.product, "pump");
    CU_ASSERT_PTR_NULL(gw_releases_current(r, "mx-200")); /* a model is not a product */
    CU_ASSERT_EQUAL(gw_releases_count(r), 3);
    bool seen[3] = {false, false, false};
    for (size_t i = 0; i < gw_releases_count(r); i++) {
        const char *p = gw_releases_at(r, i)->manifest.product;
        seen[0] |= strcmp(p, "meter") == 0;
        seen[1] |= strcmp(p, "valve") == 0;
        seen[2] |= strcmp(p, "pump") == 0;
    }
    CU_ASSERT_TRUE(seen[0] && seen[1] && seen[2]);
    CU_ASSERT_PTR_NULL(gw_releases_at(r, 3));
    gw_releases_free(r);
    gw_releases_free(NULL);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

/* Product "P.prev" is a valid identifier: its current release must not share
 * a file with the previous release of product "P". */
static void a_product_named_like_a_previous_file_keeps_its_own(void)
{
    struct test_key k;
    test_key_init(&k, 12);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    accept_ok(r, &k, &(struct spec){.product = "P", .seq = 1});
    accept_ok(r, &k, &(struct spec){.product = "P", .seq = 2});
    accept_ok(r, &k, &(struct spec){.product = "P.prev", .seq = 9});
    CU_ASSERT_EQUAL(gw_releases_previous(r, "P")->manifest.seq, 1);
    gw_releases_free(r);

    r = open_rel(dir, kr, 0, NOW);
    CU_ASSERT_EQUAL(current_seq(r, "P"), 2);
    const struct gw_release *prev = gw_releases_previous(r, "P");
    CU_ASSERT_PTR_NOT_NULL_FATAL(prev);
    CU_ASSERT_EQUAL(prev->manifest.seq, 1);
    CU_ASSERT_STRING_EQUAL(prev->manifest.product, "P");
    CU_ASSERT_EQUAL(current_seq(r, "P.prev"), 9);
    CU_ASSERT_PTR_NULL(gw_releases_previous(r, "P.prev"));
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

/* State written before previous releases got their own folder: "X.prev.env"
 * holding a release of product X is X's previous one. */
static void a_legacy_previous_file_is_read_as_the_previous_release(void)
{
    struct test_key k;
    test_key_init(&k, 13);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    const char *dir = fresh_dir();
    char path[PATH_MAX];
    pathf(path, "%s/releases", dir);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(path, 0755, NULL), FERRY_OK);
    size_t len = 0;
    char *old = make_env(&k, &(struct spec){.product = "meter", .seq = 4}, &len);
    pathf(path, "%s/releases/meter.prev.env", dir);
    CU_ASSERT_FATAL(ferry_write_atomic(path, old, len, 0644, NULL) == FERRY_OK);
    free(old);
    char *cur = make_env(&k, &(struct spec){.product = "meter", .seq = 5}, &len);
    pathf(path, "%s/releases/meter.env", dir);
    CU_ASSERT_FATAL(ferry_write_atomic(path, cur, len, 0644, NULL) == FERRY_OK);
    free(cur);

    struct gw_releases *r = open_rel(dir, kr, 0, NOW);
    CU_ASSERT_EQUAL(current_seq(r, "meter"), 5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw_releases_previous(r, "meter"));
    CU_ASSERT_EQUAL(gw_releases_previous(r, "meter")->manifest.seq, 4);
    CU_ASSERT_PTR_NULL(gw_releases_current(r, "meter.prev"));
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

/* A leaked key cannot move a product's seq arbitrarily far past what the
 * gateway holds, nor get a manifest valid for longer than allowed through. */
static void limits_bound_the_seq_step_and_the_lifetime(void)
{
    struct test_key k;
    test_key_init(&k, 14);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    struct gw_releases_limits lim = {.max_lifetime = LIFETIME, .max_seq_step = 10};
    struct gw_releases_opts o = {
        .state_dir = fresh_dir(), .keyring = kr, .clock_skew = SKEW, .limits = &lim};
    struct gw_releases *r = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_releases_open(&o, NOW, &r, &d), FERRY_OK);
    enum gw_release_outcome out;
    /* The first release of a product: no step to count from. */
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 1000});
    CU_ASSERT_EQUAL(
        accept_spec(r, &k, "meter", &(struct spec){.product = "meter", .seq = 1011}, NOW, &out, &d),
        FERRY_E_SEQ_JUMP);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "1011"));
    CU_ASSERT_EQUAL(current_seq(r, "meter"), 1000);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 1010});
    /* Going further takes steps. */
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 1020});

    lim.max_lifetime = LIFETIME - 1;
    gw_releases_set_limits(r, &lim);
    CU_ASSERT_EQUAL(
        accept_spec(r, &k, "meter", &(struct spec){.product = "meter", .seq = 1021}, NOW, &out, &d),
        FERRY_E_LIFETIME);
    lim.max_seq_step = 0;
    lim.max_lifetime = 0;
    gw_releases_set_limits(r, &lim);
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = UINT64_C(1) << 40});
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

/* After a root revokes the key, what it signed is no longer held, and its
 * seq still bars older releases. */
static void a_recheck_drops_releases_of_revoked_keys(void)
{
    struct test_key k, k2;
    test_key_init(&k, 15);
    test_key_init(&k2, 16);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    CU_ASSERT_FATAL(ferry_keyring_add(kr, k2.point, false, NULL) == FERRY_OK);
    struct gw_releases *r = open_rel(fresh_dir(), kr, 0, NOW);
    accept_ok(r, &k2, &(struct spec){.product = "valve", .seq = 3});
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 5});
    accept_ok(r, &k, &(struct spec){.product = "meter", .seq = 6});
    CU_ASSERT_EQUAL(gw_releases_recheck(r, NOW), 0);
    const struct gw_release *cur = gw_releases_current(r, "meter");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
    struct ferry_envelope *e = NULL;
    CU_ASSERT_FATAL(ferry_envelope_parse(cur->envelope, cur->envelope_len, &e, NULL) == FERRY_OK);
    uint8_t digest[FERRY_SHA256_LEN];
    ferry_sha256(e->manifest, e->manifest_len, digest);
    ferry_envelope_free(e);
    CU_ASSERT_EQUAL(memcmp(cur->manifest_digest, digest, sizeof(digest)), 0);

    CU_ASSERT_FATAL(ferry_keyring_revoke_id(kr, k.kid, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_releases_recheck(r, NOW), 2);
    CU_ASSERT_PTR_NULL(gw_releases_current(r, "meter"));
    CU_ASSERT_PTR_NULL(gw_releases_previous(r, "meter"));
    CU_ASSERT_EQUAL(current_seq(r, "valve"), 3);
    enum gw_release_outcome out;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(
        accept_spec(r, &k2, "meter", &(struct spec){.product = "meter", .seq = 6}, NOW, &out, &d),
        FERRY_E_DOWNGRADE);
    accept_ok(r, &k2, &(struct spec){.product = "meter", .seq = 7});
    gw_releases_free(r);
    ferry_keyring_free(kr);
    test_key_free(&k);
    test_key_free(&k2);
}

const char *const ferry_suite_name = "gw_releases";
const struct ferry_test_case ferry_tests[] = {
    {"new_release_is_persisted_and_same_bytes_are_a_no_op",
     new_release_is_persisted_and_same_bytes_are_a_no_op},
    {"downgrade_and_replay_are_refused_and_change_nothing",
     downgrade_and_replay_are_refused_and_change_nothing},
    {"untrusted_signatures_are_refused", untrusted_signatures_are_refused},
    {"expired_early_and_oversize_releases_are_refused",
     expired_early_and_oversize_releases_are_refused},
    {"product_must_match_its_topic", product_must_match_its_topic},
    {"a_failed_write_changes_nothing", a_failed_write_changes_nothing},
    {"restart_restores_current_and_previous", restart_restores_current_and_previous},
    {"corrupted_file_is_skipped_with_an_error", corrupted_file_is_skipped_with_an_error},
    {"expired_and_revoked_files_are_not_served_after_restart",
     expired_and_revoked_files_are_not_served_after_restart},
    {"every_product_has_its_own_current_release", every_product_has_its_own_current_release},
    {"a_product_named_like_a_previous_file_keeps_its_own",
     a_product_named_like_a_previous_file_keeps_its_own},
    {"a_legacy_previous_file_is_read_as_the_previous_release",
     a_legacy_previous_file_is_read_as_the_previous_release},
    {"limits_bound_the_seq_step_and_the_lifetime", limits_bound_the_seq_step_and_the_lifetime},
    {"a_recheck_drops_releases_of_revoked_keys", a_recheck_drops_releases_of_revoked_keys},
    {NULL, NULL},
};
