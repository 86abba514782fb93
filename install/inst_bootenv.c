#include "inst_bootenv.h"

#include "inst_system.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const INST_ENV_NAMES[INST_ENV_NVARS] = {"BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT"};

enum { V_ORDER, V_LEFT_A, V_LEFT_B };

static bool is_ab(enum edge_slot s)
{
    return s == EDGE_SLOT_A || s == EDGE_SLOT_B;
}

/* ---- the scheme, pure ---------------------------------------------------- */

static void default_order(struct inst_bootenv *env)
{
    env->order[0] = EDGE_SLOT_A;
    env->order[1] = EDGE_SLOT_B;
    env->norder = 2;
}

static bool in_order(const struct inst_bootenv *env, enum edge_slot s)
{
    for (size_t i = 0; i < env->norder; i++) {
        if (env->order[i] == s)
            return true;
    }
    return false;
}

static void parse_order(const char *v, struct inst_bootenv *env)
{
    env->norder = 0;
    for (const char *p = v; *p;) {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        enum edge_slot s = EDGE_SLOT_NONE;
        if (p - w == 1 && (w[0] == 'A' || w[0] == 'B'))
            s = w[0] == 'A' ? EDGE_SLOT_A : EDGE_SLOT_B;
        if (s != EDGE_SLOT_NONE && !in_order(env, s))
            env->order[env->norder++] = s;
    }
}

/* As the scripts' numeric tests read it: digits only, else 0. */
static unsigned parse_left(const char *v)
{
    unsigned n = 0;
    if (!*v)
        return 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        n = n * 10 + (unsigned)(*p - '0');
        if (n > INST_ENV_LEFT_MAX)
            return INST_ENV_LEFT_MAX;
    }
    return n;
}

void inst_bootenv_from_vars(const struct inst_env_vars *vars, struct inst_bootenv *out)
{
    memset(out, 0, sizeof(*out));
    if (vars->set[V_ORDER])
        parse_order(vars->val[V_ORDER], out);
    else
        default_order(out);
    for (int s = 0; s < 2; s++)
        out->left[s] =
            vars->set[V_LEFT_A + s] ? parse_left(vars->val[V_LEFT_A + s]) : INST_BOOT_GOOD_ATTEMPTS;
}

void inst_bootenv_to_vars(const struct inst_bootenv *env, struct inst_env_vars *out)
{
    memset(out, 0, sizeof(*out));
    char *o = out->val[V_ORDER];
    for (size_t i = 0; i < env->norder; i++) {
        size_t n = strlen(o);
        snprintf(o + n, INST_ENV_VALUE_MAX + 1 - n, "%s%s", i ? " " : "",
                 edge_slot_name(env->order[i]));
    }
    for (int s = 0; s < 2; s++)
        snprintf(out->val[V_LEFT_A + s], INST_ENV_VALUE_MAX + 1, "%u", env->left[s]);
    for (int i = 0; i < INST_ENV_NVARS; i++)
        out->set[i] = true;
}

enum edge_slot inst_bootenv_primary(const struct inst_bootenv *env)
{
    for (size_t i = 0; i < env->norder; i++) {
        if (env->left[env->order[i]] > 0)
            return env->order[i];
    }
    return EDGE_SLOT_NONE;
}

enum edge_slot inst_bootenv_decide(struct inst_bootenv *env)
{
    enum edge_slot s = inst_bootenv_primary(env);
    if (s == EDGE_SLOT_NONE) {
        if (env->norder == 0)
            default_order(env);
        for (size_t i = 0; i < env->norder; i++)
            env->left[env->order[i]] = INST_BOOT_GOOD_ATTEMPTS;
        s = env->order[0];
    }
    env->left[s]--;
    return s;
}

bool inst_bootenv_good(const struct inst_bootenv *env, enum edge_slot slot)
{
    return is_ab(slot) && in_order(env, slot) && env->left[slot] > 0;
}

static void remove_from_order(struct inst_bootenv *env, enum edge_slot slot)
{
    size_t k = 0;
    for (size_t i = 0; i < env->norder; i++) {
        if (env->order[i] != slot)
            env->order[k++] = env->order[i];
    }
    env->norder = k;
}

void inst_bootenv_set_primary(struct inst_bootenv *env, enum edge_slot slot, unsigned attempts)
{
    enum edge_slot other = edge_slot_other(slot);
    bool keep_other = in_order(env, other);
    env->order[0] = slot;
    env->norder = 1;
    if (keep_other)
        env->order[env->norder++] = other;
    env->left[slot] = attempts > INST_ENV_LEFT_MAX ? INST_ENV_LEFT_MAX : attempts;
}

void inst_bootenv_set_state(struct inst_bootenv *env, enum edge_slot slot, bool good)
{
    if (good) {
        if (!in_order(env, slot))
            env->order[env->norder++] = slot;
        env->left[slot] = INST_BOOT_GOOD_ATTEMPTS;
    } else {
        remove_from_order(env, slot);
        env->left[slot] = 0;
    }
}

/* ---- memory store --------------------------------------------------------- */

static enum ferry_err mem_load(void *ctx, struct inst_env_vars *out, struct ferry_diag *d)
{
    (void)d;
    const struct inst_env_mem *m = ctx;
    *out = m->vars;
    return FERRY_OK;
}

static enum ferry_err mem_store(void *ctx, const struct inst_env_vars *vars, struct ferry_diag *d)
{
    (void)d;
    struct inst_env_mem *m = ctx;
    m->vars = *vars;
    m->stores++;
    return FERRY_OK;
}

static const struct inst_env_ops MEM_OPS = {.load = mem_load, .store = mem_store};

void inst_env_mem_init(struct inst_env_mem *m)
{
    memset(m, 0, sizeof(*m));
    m->store.ops = &MEM_OPS;
    m->store.ctx = m;
}

/* ---- the bootloader over a store --------------------------------------------- */

struct inst_bootenv_bl {
    struct inst_bootloader bl;
    struct inst_env_store store;
    char name[16];
    char cmdline[PATH_MAX];
    char mountinfo[PATH_MAX];
    char slot[2][PATH_MAX];
    bool has_slots;
    enum edge_slot booted; /* set by inst_bootenv_boot(), NONE until then */
};

static enum ferry_err load(struct inst_bootenv_bl *b, struct inst_bootenv *env,
                           struct ferry_diag *d)
{
    struct inst_env_vars vars;
    enum ferry_err err = b->store.ops->load(b->store.ctx, &vars, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, b->name);
        return err;
    }
    inst_bootenv_from_vars(&vars, env);
    return FERRY_OK;
}

/* Writes env unless it means what is stored already. */
static enum ferry_err save(struct inst_bootenv_bl *b, const struct inst_bootenv *before,
                           const struct inst_bootenv *env, struct ferry_diag *d)
{
    struct inst_env_vars old, vars;
    inst_bootenv_to_vars(before, &old);
    inst_bootenv_to_vars(env, &vars);
    if (memcmp(&old, &vars, sizeof(vars)) == 0)
        return FERRY_OK;
    enum ferry_err err = b->store.ops->store(b->store.ctx, &vars, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, b->name);
    return err;
}

static enum ferry_err check_slot(const struct inst_bootenv_bl *b, enum edge_slot slot,
                                 struct ferry_diag *d)
{
    if (!is_ab(slot))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: slot must be A or B", b->name);
    return FERRY_OK;
}

static enum ferry_err be_get_booted(void *ctx, enum edge_slot *out, struct ferry_diag *d)
{
    struct inst_bootenv_bl *b = ctx;
    if (b->booted != EDGE_SLOT_NONE) {
        *out = b->booted;
        return FERRY_OK;
    }
    struct ferry_diag cd = {{0}};
    enum ferry_err err = inst_system_booted(b->cmdline, out, &cd);
    if (err == FERRY_OK)
        return FERRY_OK;
    if (err != FERRY_E_NOT_FOUND || !b->has_slots)
        return ferry_fail(d, err, "%s", cd.msg);
    const char *const slots[2] = {b->slot[0], b->slot[1]};
    enum edge_slot root = EDGE_SLOT_NONE;
    err = inst_system_root_slot(b->mountinfo, slots, &root, d);
    if (err != FERRY_OK)
        return err;
    if (root == EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_NOT_FOUND,
                          "%s: cannot tell which slot booted: %s has no ferry.slot= and "
                          "neither slot is mounted at /",
                          b->name, b->cmdline);
    *out = root;
    return FERRY_OK;
}

static enum ferry_err be_get_primary(void *ctx, enum edge_slot *out, struct ferry_diag *d)
{
    struct inst_bootenv_bl *b = ctx;
    struct inst_bootenv env;
    enum ferry_err err = load(b, &env, d);
    if (err == FERRY_OK)
        *out = inst_bootenv_primary(&env);
    return err;
}

static enum ferry_err be_set_primary(void *ctx, enum edge_slot slot, unsigned attempts,
                                     struct ferry_diag *d)
{
    struct inst_bootenv_bl *b = ctx;
    struct inst_bootenv before, env;
    enum ferry_err err = check_slot(b, slot, d);
    if (err == FERRY_OK && (attempts < 1 || attempts > EDGE_BOOT_MAX_ATTEMPTS))
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: attempts must be 1..%d", b->name,
                         EDGE_BOOT_MAX_ATTEMPTS);
    if (err == FERRY_OK)
        err = load(b, &before, d);
    if (err != FERRY_OK)
        return err;
    env = before;
    inst_bootenv_set_primary(&env, slot, attempts);
    return save(b, &before, &env, d);
}

static enum ferry_err be_get_state(void *ctx, enum edge_slot slot, bool *good, struct ferry_diag *d)
{
    struct inst_bootenv_bl *b = ctx;
    struct inst_bootenv env;
    enum ferry_err err = check_slot(b, slot, d);
    if (err == FERRY_OK)
        err = load(b, &env, d);
    if (err == FERRY_OK)
        *good = inst_bootenv_good(&env, slot);
    return err;
}

static enum ferry_err be_set_state(void *ctx, enum edge_slot slot, bool good, struct ferry_diag *d)
{
    struct inst_bootenv_bl *b = ctx;
    struct inst_bootenv before, env;
    enum ferry_err err = check_slot(b, slot, d);
    if (err == FERRY_OK)
        err = load(b, &before, d);
    if (err != FERRY_OK)
        return err;
    env = before;
    inst_bootenv_set_state(&env, slot, good);
    return save(b, &before, &env, d);
}

static const struct inst_bootloader_ops BOOTENV_OPS = {
    .get_booted = be_get_booted,
    .get_primary = be_get_primary,
    .set_primary = be_set_primary,
    .get_state = be_get_state,
    .set_state = be_set_state,
};

static bool copy(char *dst, size_t cap, const char *src, const char *dflt)
{
    const char *s = src ? src : dflt;
    return (size_t)snprintf(dst, cap, "%s", s) < cap;
}

enum ferry_err inst_bootenv_new(const struct inst_env_store *store,
                                const struct inst_bootenv_opts *o, struct inst_bootenv_bl **out,
                                struct ferry_diag *d)
{
    struct inst_bootenv_bl *b = calloc(1, sizeof(*b));
    if (!b)
        return ferry_fail(d, FERRY_E_NOMEM, "bootloader: out of memory");
    bool ok = copy(b->name, sizeof(b->name), o->name, "bootenv") &&
              copy(b->cmdline, sizeof(b->cmdline), o->cmdline, INST_CMDLINE_PATH) &&
              copy(b->mountinfo, sizeof(b->mountinfo), o->mountinfo, INST_MOUNTINFO_PATH);
    b->has_slots = o->slot[0] && o->slot[1];
    for (int i = 0; ok && b->has_slots && i < 2; i++)
        ok = copy(b->slot[i], sizeof(b->slot[i]), o->slot[i], "");
    if (!ok) {
        free(b);
        return ferry_fail(d, FERRY_E_INVALID_ARG, "bootloader: a name or path is too long");
    }
    b->store = *store;
    b->booted = EDGE_SLOT_NONE;
    b->bl.ops = &BOOTENV_OPS;
    b->bl.ctx = b;
    b->bl.name = b->name;
    *out = b;
    return FERRY_OK;
}

void inst_bootenv_free(struct inst_bootenv_bl *b)
{
    free(b);
}

const struct inst_bootloader *inst_bootenv_bootloader(const struct inst_bootenv_bl *b)
{
    return &b->bl;
}

enum ferry_err inst_bootenv_boot(struct inst_bootenv_bl *b, enum edge_slot *booted,
                                 struct ferry_diag *d)
{
    struct inst_bootenv before, env;
    enum ferry_err err = load(b, &before, d);
    if (err != FERRY_OK)
        return err;
    env = before;
    enum edge_slot s = inst_bootenv_decide(&env);
    /* The scripts save even when nothing changed in meaning (a default
     * environment written out): always store here too. */
    struct inst_env_vars vars;
    inst_bootenv_to_vars(&env, &vars);
    err = b->store.ops->store(b->store.ctx, &vars, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, b->name);
        return err;
    }
    b->booted = s;
    *booted = s;
    return FERRY_OK;
}

/* ---- names ------------------------------------------------------------------ */

static const char *const KIND_NAMES[] = {"sim", "uboot", "grub", "custom"};

enum ferry_err inst_bootloader_kind_parse(const char *name, enum inst_bootloader_kind *out)
{
    for (size_t i = 0; i < sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0]); i++) {
        if (name && strcmp(name, KIND_NAMES[i]) == 0) {
            *out = (enum inst_bootloader_kind)i;
            return FERRY_OK;
        }
    }
    return FERRY_E_INVALID_ARG;
}

const char *inst_bootloader_kind_name(enum inst_bootloader_kind kind)
{
    return (unsigned)kind < sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0]) ? KIND_NAMES[kind]
                                                                       : "unknown";
}
