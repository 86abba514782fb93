/* libFuzzer target for programs' JSON config files (ferry_cfgfile.h), read
 * from a real file as the programs do. A refused file gets a message that
 * names it; an accepted one gives one entry per key, each with a key and
 * its values. A violation aborts. */
#include "ferry_cfgfile.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        struct stat sb; /* tmpfs when there is one */
        const char *tmp = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof(path), "%s/ferry-fuzz-cfgfile-%ld.json", tmp, (long)getpid());
        atexit(remove_file);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        abort();
    struct ferry_kv *kv = NULL;
    size_t n = 0;
    struct ferry_diag d = {{0}};
    if (ferry_cfgfile_load(path, &kv, &n, &d) != FERRY_OK) {
        if (!strstr(d.msg, path))
            abort();
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!kv[i].key)
            abort();
        for (size_t v = 0; v < kv[i].nvals; v++)
            if (!kv[i].vals[v])
                abort();
    }
    ferry_kv_free(kv, n);
    return 0;
}
