#include "inst_bootcmd.h"

#include "inst_exec.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ANSWER_MAX 64

struct inst_bootcmd {
    struct inst_bootloader bl;
    char path[PATH_MAX];
    uint64_t timeout_ms;
};

static const char *slot_word(enum edge_slot s)
{
    return s == EDGE_SLOT_B ? "B" : "A";
}

/* Runs PATH VERB [ARG1 [ARG2]]; the first line of its output in answer. */
static enum ferry_err run(struct inst_bootcmd *b, const char *verb, const char *a1, const char *a2,
                          char answer[ANSWER_MAX], struct ferry_diag *d)
{
    char v[32], x1[32], x2[32];
    snprintf(v, sizeof(v), "%s", verb);
    snprintf(x1, sizeof(x1), "%s", a1 ? a1 : "");
    snprintf(x2, sizeof(x2), "%s", a2 ? a2 : "");
    char *argv[] = {b->path, v, a1 ? x1 : NULL, a2 ? x2 : NULL, NULL};
    struct inst_exec_result res;
    enum ferry_err err = inst_exec_run(argv, NULL, b->timeout_ms, answer, ANSWER_MAX, &res, d);
    if (err != FERRY_OK)
        return err;
    answer[strcspn(answer, "\r\n")] = '\0';
    if (!res.exited || res.status != 0) {
        char why[64];
        inst_exec_describe(&res, b->timeout_ms, why, sizeof(why));
        return ferry_fail(d, FERRY_E_IO, "custom bootloader: %s %s%s%s: %s", b->path, verb,
                          a1 ? " " : "", a1 ? a1 : "", why);
    }
    return FERRY_OK;
}

static enum ferry_err bad_answer(const struct inst_bootcmd *b, const char *verb, const char *answer,
                                 const char *expected, struct ferry_diag *d)
{
    return ferry_fail(d, FERRY_E_PROTOCOL, "custom bootloader: %s %s answered '%.32s', expected %s",
                      b->path, verb, answer, expected);
}

static bool slot_of(const char *answer, enum edge_slot *out)
{
    if (strcmp(answer, "A") == 0 || strcmp(answer, "B") == 0) {
        *out = answer[0] == 'A' ? EDGE_SLOT_A : EDGE_SLOT_B;
        return true;
    }
    return false;
}

static enum ferry_err bc_get_booted(void *ctx, enum edge_slot *out, struct ferry_diag *d)
{
    struct inst_bootcmd *b = ctx;
    char ans[ANSWER_MAX];
    enum ferry_err err = run(b, "get-booted", NULL, NULL, ans, d);
    if (err == FERRY_OK && !slot_of(ans, out))
        err = bad_answer(b, "get-booted", ans, "A or B", d);
    return err;
}

static enum ferry_err bc_get_primary(void *ctx, enum edge_slot *out, struct ferry_diag *d)
{
    struct inst_bootcmd *b = ctx;
    char ans[ANSWER_MAX];
    enum ferry_err err = run(b, "get-primary", NULL, NULL, ans, d);
    if (err != FERRY_OK)
        return err;
    if (strcmp(ans, "none") == 0) {
        *out = EDGE_SLOT_NONE;
        return FERRY_OK;
    }
    if (!slot_of(ans, out))
        return bad_answer(b, "get-primary", ans, "A, B or none", d);
    return FERRY_OK;
}

static enum ferry_err bc_set_primary(void *ctx, enum edge_slot slot, unsigned attempts,
                                     struct ferry_diag *d)
{
    struct inst_bootcmd *b = ctx;
    char ans[ANSWER_MAX], n[16];
    snprintf(n, sizeof(n), "%u", attempts);
    return run(b, "set-primary", slot_word(slot), n, ans, d);
}

static enum ferry_err bc_get_state(void *ctx, enum edge_slot slot, bool *good, struct ferry_diag *d)
{
    struct inst_bootcmd *b = ctx;
    char ans[ANSWER_MAX];
    enum ferry_err err = run(b, "get-state", slot_word(slot), NULL, ans, d);
    if (err != FERRY_OK)
        return err;
    if (strcmp(ans, "good") != 0 && strcmp(ans, "bad") != 0)
        return bad_answer(b, "get-state", ans, "good or bad", d);
    *good = ans[0] == 'g';
    return FERRY_OK;
}

static enum ferry_err bc_set_state(void *ctx, enum edge_slot slot, bool good, struct ferry_diag *d)
{
    struct inst_bootcmd *b = ctx;
    char ans[ANSWER_MAX];
    return run(b, "set-state", slot_word(slot), good ? "good" : "bad", ans, d);
}

static const struct inst_bootloader_ops BOOTCMD_OPS = {
    .get_booted = bc_get_booted,
    .get_primary = bc_get_primary,
    .set_primary = bc_set_primary,
    .get_state = bc_get_state,
    .set_state = bc_set_state,
};

enum ferry_err inst_bootcmd_new(const char *path, uint64_t timeout_ms, struct inst_bootcmd **out,
                                struct ferry_diag *d)
{
    if (!path || !path[0] || strlen(path) >= PATH_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "custom bootloader: path missing or too long");
    if (access(path, X_OK) != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "custom bootloader: %s is not an executable",
                          path);
    struct inst_bootcmd *b = calloc(1, sizeof(*b));
    if (!b)
        return ferry_fail(d, FERRY_E_NOMEM, "custom bootloader: out of memory");
    snprintf(b->path, sizeof(b->path), "%s", path);
    b->timeout_ms = timeout_ms;
    b->bl.ops = &BOOTCMD_OPS;
    b->bl.ctx = b;
    b->bl.name = "custom";
    *out = b;
    return FERRY_OK;
}

void inst_bootcmd_free(struct inst_bootcmd *b)
{
    free(b);
}

const struct inst_bootloader *inst_bootcmd_bootloader(const struct inst_bootcmd *b)
{
    return &b->bl;
}
