/* File backend for edge_slots.h: slots by path (inst_slots_path.h) with
 * both images and the records in one folder, as described next to
 * edge_slots_file_new(). */
#include "edge_slots.h"

#include "inst_slots_path.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

enum ferry_err edge_slots_file_new(const char *dir, uint64_t capacity,
                                   struct edge_slots_backend **out, struct ferry_diag *d)
{
    return edge_slots_file_new_io(NULL, dir, capacity, out, d);
}

enum ferry_err edge_slots_file_new_io(const struct ferry_io *io, const char *dir, uint64_t capacity,
                                      struct edge_slots_backend **out, struct ferry_diag *d)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (!dir || !dir[0] || strlen(dir) >= PATH_MAX - 32)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: state folder missing or too long");
    snprintf(a, sizeof(a), "%s/slot-a.img", dir);
    snprintf(b, sizeof(b), "%s/slot-b.img", dir);
    struct inst_slots_path_opts o = {
        .records_dir = dir,
        .slot = {a, b},
        .max_bytes = capacity,
        .io = io,
    };
    return inst_slots_path_new(&o, out, d);
}

void edge_slots_file_free(struct edge_slots_backend *b)
{
    inst_slots_path_free(b);
}
