/* Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a per-process scratch folder
 * (in /dev/shm when it is writable, else $TMPDIR or /tmp) for the entry points that read files,
 * writing the input there, and a silent library log. Each harness includes this once. */
#ifndef IDS_FUZZ_H
#define IDS_FUZZ_H

#define _POSIX_C_SOURCE 200809L
#include "idscope.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char fz_dir_path[256];

static inline void fz_quiet_log(int level, const char *msg, void *user) {
    (void)level, (void)msg, (void)user;
}

/* Remove a folder and everything under it (only what the harness made there). */
static inline void fz_rmtree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            struct stat sb;
            if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) fz_rmtree(sub);
            else unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static inline void fz_cleanup(void) {
    if (fz_dir_path[0]) fz_rmtree(fz_dir_path);
}

/* Scratch folders that a harness which crashed left in base (their process is gone). */
static inline void fz_remove_stale(const char *base) {
    DIR *d = opendir(base);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        char rest[64], proc[64], path[1024];
        if (sscanf(e->d_name, "idscope-fuzz-%ld-%63s", &pid, rest) != 2) continue;
        snprintf(proc, sizeof proc, "/proc/%ld", pid);
        if (access(proc, F_OK) == 0) continue;
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        fz_rmtree(path);
    }
    closedir(d);
}

/* The scratch folder, made on first use and removed at exit (or by the next run after a crash). */
static inline const char *fz_dir(void) {
    if (fz_dir_path[0]) return fz_dir_path;
    const char *bases[3] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (int i = 0; i < 3; i++) {
        if (!bases[i] || access(bases[i], W_OK) != 0) continue;
        fz_remove_stale(bases[i]);
        snprintf(fz_dir_path, sizeof fz_dir_path, "%s/idscope-fuzz-%ld-XXXXXX", bases[i], (long)getpid());
        if (mkdtemp(fz_dir_path)) {
            atexit(fz_cleanup);
            return fz_dir_path;
        }
    }
    fprintf(stderr, "fuzz: cannot make a scratch folder\n");
    abort();
}

/* DIR/rel, the folders on the way made. */
static inline const char *fz_path(const char *rel, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", fz_dir(), rel);
    for (char *p = buf + strlen(fz_dir()) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0700);
            *p = '/';
        }
    return buf;
}

/* Write bytes to a scratch file (replacing it). */
static inline void fz_write(const char *path, const void *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    const unsigned char *p = data;
    while (size > 0) {
        ssize_t k = write(fd, p, size);
        if (k <= 0) {
            perror(path);
            abort();
        }
        p += k;
        size -= (size_t)k;
    }
    close(fd);
}

/* Read every byte of a buffer the library returned (ASan reports one that lies outside its block). */
static inline unsigned fz_touch(const void *p, size_t n) {
    const volatile unsigned char *c = p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s += c[i];
    return s;
}

/* Every harness: no log lines on stderr (the library's warnings would drown libFuzzer's). */
static inline void fz_init(void) { ids_set_log(fz_quiet_log, NULL); }

#endif /* IDS_FUZZ_H */
