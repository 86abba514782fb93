/* libFuzzer target for the GRUB environment block (inst_grubenv.h) as
 * Ferry reads it from disk, and the meaning it gives the variables
 * (inst_bootenv.h). A block that parses, rewritten with the variables it
 * holds, parses to the same variables; the variables' meaning survives
 * being written back as variables; the boot script's decision is a slot.
 * A violation aborts. */
#include "inst_bootenv.h"
#include "inst_grubenv.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_vars(const struct inst_env_vars *a, const struct inst_env_vars *b)
{
    for (int i = 0; i < INST_ENV_NVARS; i++)
        if (a->set[i] != b->set[i] || (a->set[i] && strcmp(a->val[i], b->val[i]) != 0))
            return false;
    return true;
}

static bool same_env(const struct inst_bootenv *a, const struct inst_bootenv *b)
{
    if (a->norder != b->norder || a->left[0] != b->left[0] || a->left[1] != b->left[1])
        return false;
    for (size_t i = 0; i < a->norder; i++)
        if (a->order[i] != b->order[i])
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inst_env_vars vars, back;
    const char *block = (const char *)data;
    if (inst_grubenv_parse(block, size, &vars, NULL) != FERRY_OK)
        return 0;
    char out[INST_GRUBENV_SIZE];
    if (inst_grubenv_update(block, size, &vars, out, NULL) == FERRY_OK &&
        (inst_grubenv_parse(out, sizeof(out), &back, NULL) != FERRY_OK || !same_vars(&vars, &back)))
        abort();
    struct inst_bootenv env, env_back;
    inst_bootenv_from_vars(&vars, &env);
    if (env.norder > 2)
        abort();
    inst_bootenv_to_vars(&env, &back);
    inst_bootenv_from_vars(&back, &env_back);
    if (!same_env(&env, &env_back))
        abort();
    enum edge_slot slot = inst_bootenv_decide(&env);
    if (slot != EDGE_SLOT_A && slot != EDGE_SLOT_B && slot != EDGE_SLOT_NONE)
        abort();
    return 0;
}
