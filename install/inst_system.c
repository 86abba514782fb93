#include "inst_system.h"

#include "ferry_fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define PARAM "ferry.slot="

enum ferry_err inst_cmdline_slot(const char *text, size_t len, enum edge_slot *out,
                                 struct ferry_diag *d)
{
    const size_t plen = sizeof(PARAM) - 1;
    bool found = false;
    enum edge_slot slot = EDGE_SLOT_NONE;
    size_t i = 0;
    while (i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n'))
            i++;
        size_t start = i;
        while (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != '\n')
            i++;
        size_t n = i - start;
        if (n < plen || memcmp(text + start, PARAM, plen) != 0)
            continue;
        const char *v = text + start + plen;
        size_t vlen = n - plen;
        if (vlen == 1 && (v[0] == 'A' || v[0] == 'B')) {
            slot = v[0] == 'A' ? EDGE_SLOT_A : EDGE_SLOT_B;
            found = true;
        } else {
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "kernel command line: " PARAM "%.*s, expected A or B",
                              (int)(vlen > 16 ? 16 : vlen), v);
        }
    }
    if (!found)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "kernel command line: no " PARAM " parameter");
    *out = slot;
    return FERRY_OK;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

struct field {
    const char *p;
    size_t n;
};

/* Splits one line into space-separated fields; returns how many (<= max). */
static size_t split(const char *line, size_t len, struct field *f, size_t max)
{
    size_t nf = 0, i = 0;
    while (i < len && nf < max) {
        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        f[nf].p = line + i;
        while (i < len && line[i] != ' ')
            i++;
        f[nf].n = (size_t)(line + i - f[nf].p);
        nf++;
    }
    return nf;
}

/* One mountinfo line: its device, mount point and source. */
static bool parse_line(const char *line, size_t len, unsigned *maj, unsigned *min, char *mnt,
                       size_t mcap, char *src, size_t scap)
{
    struct field f[64];
    size_t nf = split(line, len, f, 64);
    if (nf < 10)
        return false;
    char dev[32];
    if (f[2].n >= sizeof(dev))
        return false;
    memcpy(dev, f[2].p, f[2].n);
    dev[f[2].n] = '\0';
    if (sscanf(dev, "%u:%u", maj, min) != 2)
        return false;
    unescape(f[4].p, f[4].n, mnt, mcap);
    size_t sep = 6;
    while (sep < nf && !(f[sep].n == 1 && f[sep].p[0] == '-'))
        sep++;
    if (sep + 2 >= nf)
        return false;
    unescape(f[sep + 2].p, f[sep + 2].n, src, scap);
    return true;
}

bool inst_mountinfo_find(const char *text, size_t len, dev_t rdev, const char *source, char *where,
                         size_t cap)
{
    bool found = false;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        unsigned maj = 0, min = 0;
        char mnt[PATH_MAX], src[PATH_MAX];
        if (parse_line(text + pos, n, &maj, &min, mnt, sizeof(mnt), src, sizeof(src))) {
            bool dev_match = rdev != 0 && maj == major(rdev) && min == minor(rdev);
            bool src_match = source && source[0] && strcmp(src, source) == 0;
            if ((dev_match || src_match) && (!found || strcmp(mnt, "/") == 0)) {
                if (cap)
                    snprintf(where, cap, "%s", mnt);
                found = true;
            }
        }
        pos += n + 1;
    }
    return found;
}

enum ferry_err inst_system_booted(const char *cmdline_path, enum edge_slot *out,
                                  struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(cmdline_path, INST_CMDLINE_MAX, &buf, &len, d);
    if (err == FERRY_OK)
        err = inst_cmdline_slot((const char *)buf, len, out, d);
    free(buf);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, cmdline_path);
    return err;
}

/* Reads mountinfo whole (procfs files report size 0: read until EOF). */
static enum ferry_err read_mountinfo(const char *path, char **out, size_t *len,
                                     struct ferry_diag *d)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
    char *buf = malloc(INST_MOUNTINFO_MAX + 1);
    if (!buf) {
        fclose(f);
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, INST_MOUNTINFO_MAX, f);
    bool bad = ferror(f) != 0;
    bool more = !bad && fgetc(f) != EOF;
    fclose(f);
    if (bad || more) {
        free(buf);
        return ferry_fail(d, bad ? FERRY_E_IO : FERRY_E_TOO_LARGE, "%s: %s", path,
                          bad ? "read failed" : "larger than 1 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return FERRY_OK;
}

/* The device number of a block device path, 0 for anything else. */
static dev_t block_rdev(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISBLK(st.st_mode))
        return 0;
    return st.st_rdev;
}

enum ferry_err inst_system_check_unmounted(const char *mountinfo_path, const char *path,
                                           struct ferry_diag *d)
{
    dev_t rdev = block_rdev(path);
    if (rdev == 0)
        return FERRY_OK;
    char *text = NULL;
    size_t len = 0;
    enum ferry_err err = read_mountinfo(mountinfo_path, &text, &len, d);
    if (err != FERRY_OK)
        return err;
    char where[PATH_MAX];
    char real[PATH_MAX];
    const char *src = realpath(path, real) ? real : path;
    bool mounted = inst_mountinfo_find(text, len, rdev, src, where, sizeof(where));
    free(text);
    if (mounted)
        return ferry_fail(d, FERRY_E_BUSY, "%s is mounted at %s: refusing to write it", path,
                          where);
    return FERRY_OK;
}

enum ferry_err inst_system_root_slot(const char *mountinfo_path, const char *const slot[2],
                                     enum edge_slot *out, struct ferry_diag *d)
{
    char *text = NULL;
    size_t len = 0;
    enum ferry_err err = read_mountinfo(mountinfo_path, &text, &len, d);
    if (err != FERRY_OK)
        return err;
    *out = EDGE_SLOT_NONE;
    for (int i = 0; i < 2; i++) {
        dev_t rdev = block_rdev(slot[i]);
        char where[PATH_MAX];
        char real[PATH_MAX];
        if (rdev == 0)
            continue;
        const char *src = realpath(slot[i], real) ? real : slot[i];
        if (inst_mountinfo_find(text, len, rdev, src, where, sizeof(where)) &&
            strcmp(where, "/") == 0) {
            *out = (enum edge_slot)i;
            break;
        }
    }
    free(text);
    return FERRY_OK;
}
