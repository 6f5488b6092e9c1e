/*
 * faultshim: an LD_PRELOAD library that makes chosen reads, writes and syncs of one file
 * fail, for tests/faults.rs. It wraps the libc calls SQLite's unix VFS makes (read/pread/
 * pread64, write/pwrite/pwrite64, fsync/fdatasync), so the real VFS, the real pager and
 * the real litepool code all run; only the OS answer changes.
 *
 * Control (from the process that preloads it, found with dlsym(RTLD_DEFAULT, ...)):
 *   faultshim_arm(path, ops, skip, count, err)  after `skip` matching calls on the file whose
 *       /proc/self/fd target is exactly `path`, fail the next `count` (-1: all) with errno
 *       `err`; `ops` is a mask of FAULTSHIM_READ | FAULTSHIM_WRITE | FAULTSHIM_SYNC.
 *   faultshim_disarm()   stop failing.
 *   faultshim_injected() how many calls were failed since the last arm.
 * One fault plan at a time; arming and disarming are meant for one controlling thread while
 * other threads make I/O calls (the counters are atomic, the path is swapped under a lock).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define FAULTSHIM_READ 1
#define FAULTSHIM_WRITE 2
#define FAULTSHIM_SYNC 4

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static char plan_path[4096];
static int plan_ops;     /* 0: disarmed */
static long plan_skip;   /* matching calls still to let through */
static long plan_count;  /* failures still to inject; -1 for unlimited */
static int plan_errno;
static long injected;

void faultshim_arm(const char *path, int ops, long skip, long count, int err) {
    pthread_mutex_lock(&plan_lock);
    snprintf(plan_path, sizeof plan_path, "%s", path);
    plan_skip = skip;
    plan_count = count;
    plan_errno = err;
    injected = 0;
    __atomic_store_n(&plan_ops, ops, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&plan_lock);
}

void faultshim_disarm(void) {
    pthread_mutex_lock(&plan_lock);
    __atomic_store_n(&plan_ops, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&plan_lock);
}

long faultshim_injected(void) {
    pthread_mutex_lock(&plan_lock);
    long n = injected;
    pthread_mutex_unlock(&plan_lock);
    return n;
}

/* Whether this call on `fd` must fail; sets errno when it must. */
static int should_fail(int fd, int op) {
    if (!(__atomic_load_n(&plan_ops, __ATOMIC_ACQUIRE) & op)) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int saved = errno;
    ssize_t n = readlink(link, target, sizeof target - 1);
    errno = saved;
    if (n < 0) return 0;
    target[n] = 0;
    int fail = 0;
    pthread_mutex_lock(&plan_lock);
    if ((plan_ops & op) && strcmp(target, plan_path) == 0) {
        if (plan_skip > 0) {
            plan_skip--;
        } else if (plan_count != 0) {
            if (plan_count > 0) plan_count--;
            injected++;
            fail = plan_errno;
        }
    }
    pthread_mutex_unlock(&plan_lock);
    if (fail) errno = fail;
    return fail != 0;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t read(int fd, void *buf, size_t n) {
    if (should_fail(fd, FAULTSHIM_READ)) return -1;
    return REAL(read)(fd, buf, n);
}
ssize_t pread(int fd, void *buf, size_t n, off_t off) {
    if (should_fail(fd, FAULTSHIM_READ)) return -1;
    return REAL(pread)(fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off64_t off) {
    if (should_fail(fd, FAULTSHIM_READ)) return -1;
    return REAL(pread64)(fd, buf, n, off);
}
ssize_t write(int fd, const void *buf, size_t n) {
    if (should_fail(fd, FAULTSHIM_WRITE)) return -1;
    return REAL(write)(fd, buf, n);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (should_fail(fd, FAULTSHIM_WRITE)) return -1;
    return REAL(pwrite)(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    if (should_fail(fd, FAULTSHIM_WRITE)) return -1;
    return REAL(pwrite64)(fd, buf, n, off);
}
int fsync(int fd) {
    if (should_fail(fd, FAULTSHIM_SYNC)) return -1;
    return REAL(fsync)(fd);
}
int fdatasync(int fd) {
    if (should_fail(fd, FAULTSHIM_SYNC)) return -1;
    return REAL(fdatasync)(fd);
}
