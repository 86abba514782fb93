/* The running-system probe (inst_system.h) and slots by path
 * (inst_slots_path.h): the kernel command line, mountinfo, and a slot
 * that is a real block device (a loop device over a file, when this
 * machine lets the test make one; SKIP otherwise). */
#include "cunit_main.h"

#include "ferry_fs.h"
#include "inst_slots_path.h"
#include "inst_system.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define DEV_SIZE (256 * 1024)

static enum ferry_err slot_of(const char *text, enum edge_slot *out)
{
    return inst_cmdline_slot(text, strlen(text), out, NULL);
}

static void cmdline_names_the_booted_slot(void)
{
    enum edge_slot s = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL(slot_of("console=ttyS0 root=/dev/mmcblk0p3 ferry.slot=B rw\n", &s), FERRY_OK);
    CU_ASSERT_EQUAL(s, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(slot_of("ferry.slot=A", &s), FERRY_OK);
    CU_ASSERT_EQUAL(s, EDGE_SLOT_A);
    /* The last one wins, as in the kernel. */
    CU_ASSERT_EQUAL(slot_of("ferry.slot=A quiet\tferry.slot=B", &s), FERRY_OK);
    CU_ASSERT_EQUAL(s, EDGE_SLOT_B);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(inst_cmdline_slot("root=/dev/sda2 xferry.slot=A", 28, &s, &d),
                    FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "ferry.slot="));
    CU_ASSERT_EQUAL(inst_cmdline_slot("ferry.slot=C", 12, &s, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "expected A or B"));
    CU_ASSERT_EQUAL(slot_of("ferry.slot=", &s), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(slot_of("ferry.slot=AB", &s), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(slot_of("", &s), FERRY_E_NOT_FOUND);
}

static const char MOUNTINFO[] =
    "21 26 0:20 / /proc rw,relatime - proc proc rw\n"
    "26 1 179:2 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw\n"
    "27 26 179:1 / /boot rw,relatime shared:2 master:3 - vfat /dev/mmcblk0p1 rw\n"
    "28 26 0:44 / /mnt/my\\040data rw - btrfs /dev/sdb1 rw\n"
    "garbage line\n"
    "29 26 179:1 / /also-boot rw - vfat /dev/mmcblk0p1 rw";

static void mountinfo_finds_a_device_by_number_or_source(void)
{
    char where[PATH_MAX];
    size_t len = strlen(MOUNTINFO);
    CU_ASSERT_TRUE(
        inst_mountinfo_find(MOUNTINFO, len, makedev(179, 2), NULL, where, sizeof(where)));
    CU_ASSERT_STRING_EQUAL(where, "/");
    CU_ASSERT_TRUE(
        inst_mountinfo_find(MOUNTINFO, len, makedev(179, 1), NULL, where, sizeof(where)));
    CU_ASSERT_STRING_EQUAL(where, "/boot");
    /* btrfs reports an anonymous device: the source names it; \040 is a space. */
    CU_ASSERT_TRUE(
        inst_mountinfo_find(MOUNTINFO, len, makedev(8, 17), "/dev/sdb1", where, sizeof(where)));
    CU_ASSERT_STRING_EQUAL(where, "/mnt/my data");
    CU_ASSERT_FALSE(inst_mountinfo_find(MOUNTINFO, len, makedev(179, 3), "/dev/mmcblk0p3", where,
                                        sizeof(where)));
    /* A mount point longer than the buffer is cut, never overrun. */
    char small[4];
    CU_ASSERT_TRUE(
        inst_mountinfo_find(MOUNTINFO, len, makedev(179, 1), NULL, small, sizeof(small)));
    CU_ASSERT_STRING_EQUAL(small, "/bo");
}

static void write_text(const char *path, const char *text)
{
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, text, strlen(text), 0644, NULL), FERRY_OK);
}

static void system_files_are_read_from_injected_paths(void)
{
    char cmdline[PATH_MAX], mi[PATH_MAX], line[512];
    snprintf(cmdline, sizeof(cmdline), "%s/cmdline", ferry_test_tmpdir());
    snprintf(mi, sizeof(mi), "%s/mountinfo", ferry_test_tmpdir());
    write_text(cmdline, "root=PARTUUID=1 ferry.slot=B\n");
    enum edge_slot s = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL(inst_system_booted(cmdline, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s, EDGE_SLOT_B);
    struct ferry_diag d = {{0}};
    CU_ASSERT_NOT_EQUAL(inst_system_booted("/nonexistent/cmdline", &s, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "/nonexistent/cmdline"));

    /* Any block device of this machine stands in for the root: mountinfo
     * says it is mounted at / (the real one is not consulted). */
    const char *dev = NULL;
    static const char *const candidates[] = {"/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1"};
    struct stat st;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]) && !dev; i++) {
        if (stat(candidates[i], &st) == 0 && S_ISBLK(st.st_mode))
            dev = candidates[i];
    }
    if (!dev) {
        fprintf(stderr, "SKIP: no block device to stand in for a slot\n");
        return;
    }
    snprintf(line, sizeof(line), "26 1 %u:%u / / rw - ext4 /dev/whatever rw\n", major(st.st_rdev),
             minor(st.st_rdev));
    write_text(mi, line);
    CU_ASSERT_EQUAL(inst_system_check_unmounted(mi, dev, &d), FERRY_E_BUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "mounted at /"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, dev));
    const char *const slots[2] = {"/nonexistent/slot-a", dev};
    enum edge_slot root = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL(inst_system_root_slot(mi, slots, &root, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(root, EDGE_SLOT_B);
    write_text(mi, "26 1 1:1 / / rw - ext4 /dev/other rw\n");
    CU_ASSERT_EQUAL(inst_system_check_unmounted(mi, dev, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(inst_system_root_slot(mi, slots, &root, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(root, EDGE_SLOT_NONE);
    /* Files are never "mounted"; unreadable mountinfo stops a device write. */
    CU_ASSERT_EQUAL(inst_system_check_unmounted(mi, cmdline, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(inst_system_check_unmounted("/nonexistent/mountinfo", dev, NULL), FERRY_E_IO);
}

/* ---- a real block device ------------------------------------------------------- */

struct loopdev {
    char path[64];
    char backing[PATH_MAX];
    int fd;
};

/* Attaches a loop device over a fresh file of DEV_SIZE bytes; false (and
 * a SKIP line) when this machine does not allow it. */
static bool loop_attach(struct loopdev *l, const char *name)
{
    snprintf(l->backing, sizeof(l->backing), "%s/%s", ferry_test_tmpdir(), name);
    int bfd = open(l->backing, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(bfd >= 0);
    CU_ASSERT_EQUAL_FATAL(ftruncate(bfd, DEV_SIZE), 0);
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    int n = ctl >= 0 ? ioctl(ctl, LOOP_CTL_GET_FREE) : -1;
    if (ctl >= 0)
        close(ctl);
    l->fd = -1;
    if (n >= 0) {
        snprintf(l->path, sizeof(l->path), "/dev/loop%d", n);
        l->fd = open(l->path, O_RDWR | O_CLOEXEC);
    }
    if (l->fd < 0 || ioctl(l->fd, LOOP_SET_FD, bfd) != 0) {
        fprintf(stderr, "SKIP: no loop device (%s)\n", strerror(errno));
        if (l->fd >= 0)
            close(l->fd);
        close(bfd);
        return false;
    }
    close(bfd);
    return true;
}

static void loop_detach(struct loopdev *l)
{
    CU_ASSERT_EQUAL(ioctl(l->fd, LOOP_CLR_FD), 0);
    close(l->fd);
}

static void backing_bytes(const struct loopdev *l, uint64_t off, uint8_t *buf, size_t len)
{
    int fd = open(l->backing, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void block_device_slot_is_written_in_place_and_never_while_mounted(void)
{
    struct loopdev dev;
    if (!loop_attach(&dev, "loop-backing.img"))
        return;
    char file_slot[PATH_MAX], mi[PATH_MAX], line[256];
    snprintf(file_slot, sizeof(file_slot), "%s/slot-a.img", ferry_test_tmpdir());
    snprintf(mi, sizeof(mi), "%s/mountinfo-loop", ferry_test_tmpdir());
    write_text(mi, "21 26 0:20 / /proc rw - proc proc rw\n");
    struct inst_slots_path_opts o = {
        .records_dir = ferry_test_tmpdir(),
        .slot = {file_slot, dev.path},
        .max_bytes = 4096,
        .mountinfo = mi,
    };
    struct edge_slots_backend *be = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(inst_slots_path_new(&o, &be, &d), FERRY_OK);
    CU_ASSERT_FALSE(inst_slots_path_is_device(be, EDGE_SLOT_A));
    CU_ASSERT_TRUE(inst_slots_path_is_device(be, EDGE_SLOT_B));
    CU_ASSERT_STRING_EQUAL(inst_slots_path_of(be, EDGE_SLOT_B), dev.path);
    uint64_t cap = 0;
    CU_ASSERT_EQUAL(be->ops->capacity(be->ctx, EDGE_SLOT_B, &cap, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cap, DEV_SIZE); /* BLKGETSIZE64, not max_bytes */
    CU_ASSERT_EQUAL(be->ops->capacity(be->ctx, EDGE_SLOT_A, &cap, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cap, 4096);

    uint8_t blk[1000], back[1000];
    for (size_t i = 0; i < sizeof(blk); i++)
        blk[i] = (uint8_t)(i * 7 + 3);
    CU_ASSERT_EQUAL(be->ops->open_write(be->ctx, EDGE_SLOT_B, 5000, &d), FERRY_OK);
    CU_ASSERT_EQUAL(be->ops->write(be->ctx, EDGE_SLOT_B, 3000, blk, sizeof(blk), &d), FERRY_OK);
    CU_ASSERT_EQUAL(be->ops->sync(be->ctx, EDGE_SLOT_B, &d), FERRY_OK);
    CU_ASSERT_EQUAL(be->ops->read(be->ctx, EDGE_SLOT_B, 3000, back, sizeof(back), &d), FERRY_OK);
    CU_ASSERT_EQUAL(memcmp(back, blk, sizeof(blk)), 0);
    backing_bytes(&dev, 3000, back, sizeof(back));
    CU_ASSERT_EQUAL(memcmp(back, blk, sizeof(blk)), 0); /* at its offset, on the device */
    /* Marking it invalid leaves a device's bytes (it may be the running root). */
    CU_ASSERT_EQUAL(be->ops->mark_invalid(be->ctx, EDGE_SLOT_B, &d), FERRY_OK);
    backing_bytes(&dev, 3000, back, sizeof(back));
    CU_ASSERT_EQUAL(memcmp(back, blk, sizeof(blk)), 0);

    /* Mounted per mountinfo: refused, naming where. */
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(dev.path, &st), 0);
    snprintf(line, sizeof(line), "26 1 %u:%u / / rw - ext4 %s rw\n", major(st.st_rdev),
             minor(st.st_rdev), dev.path);
    write_text(mi, line);
    CU_ASSERT_EQUAL(be->ops->open_write(be->ctx, EDGE_SLOT_B, 5000, &d), FERRY_E_BUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "mounted at /"));
    CU_ASSERT_EQUAL(be->ops->write(be->ctx, EDGE_SLOT_B, 0, blk, 10, NULL), FERRY_E_BUSY);
    /* Reading the mounted slot (re-hashing the running image) still works. */
    CU_ASSERT_EQUAL(be->ops->read(be->ctx, EDGE_SLOT_B, 3000, back, sizeof(back), NULL), FERRY_OK);

    /* The kernel's own guard: someone holds the device exclusively. */
    write_text(mi, "21 26 0:20 / /proc rw - proc proc rw\n");
    int excl = open(dev.path, O_RDONLY | O_EXCL);
    CU_ASSERT_FATAL(excl >= 0);
    CU_ASSERT_EQUAL(be->ops->open_write(be->ctx, EDGE_SLOT_B, 5000, &d), FERRY_E_BUSY);
    close(excl);
    CU_ASSERT_EQUAL(be->ops->open_write(be->ctx, EDGE_SLOT_B, DEV_SIZE + 1, NULL), FERRY_E_NOSPACE);
    inst_slots_path_free(be);

    /* The same device twice is not two slots. */
    o.slot[0] = dev.path;
    CU_ASSERT_EQUAL(inst_slots_path_new(&o, &be, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "the same"));
    loop_detach(&dev);
}

static void slot_paths_are_checked(void)
{
    struct edge_slots_backend *be = NULL;
    struct ferry_diag d = {{0}};
    char f[PATH_MAX];
    snprintf(f, sizeof(f), "%s/same.img", ferry_test_tmpdir());
    struct inst_slots_path_opts o = {
        .records_dir = ferry_test_tmpdir(),
        .slot = {f, f},
        .max_bytes = 4096,
    };
    CU_ASSERT_EQUAL(inst_slots_path_new(&o, &be, &d), FERRY_E_INVALID_ARG);
    o.slot[1] = "/dev/null"; /* a character device */
    CU_ASSERT_EQUAL(inst_slots_path_new(&o, &be, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "/dev/null"));
    o.slot[1] = ferry_test_tmpdir(); /* a folder */
    CU_ASSERT_EQUAL(inst_slots_path_new(&o, &be, &d), FERRY_E_INVALID_ARG);
    o.slot[1] = NULL;
    CU_ASSERT_EQUAL(inst_slots_path_new(&o, &be, &d), FERRY_E_INVALID_ARG);
}

const char *const ferry_suite_name = "inst_system";
const struct ferry_test_case ferry_tests[] = {
    {"cmdline names the booted slot", cmdline_names_the_booted_slot},
    {"mountinfo finds a device by number or source", mountinfo_finds_a_device_by_number_or_source},
    {"system files are read from injected paths", system_files_are_read_from_injected_paths},
    {"block device slot is written in place and never while mounted",
     block_device_slot_is_written_in_place_and_never_while_mounted},
    {"slot paths are checked", slot_paths_are_checked},
    {NULL, NULL},
};
