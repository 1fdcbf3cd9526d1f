/* What the CPU this process runs on can do, read once from cpuid and the operating system's saved
 * register state (never from the build machine): the instruction sets kernels choose between at
 * run time, and the CPU's name for benchmark reports. */
#include "idscope/base.h"
#include "base/internal.h"

#include <errno.h>
#include <stdio.h>
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* XCR0: the register states the OS saves (1-2: XMM/YMM, 5-7: AVX-512, 17-18: AMX tiles). */
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static unsigned detect(void) {
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const bool osxsave = (c >> 27) & 1;
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const bool ymm = (xcr0 & 6) == 6, zmm = ymm && (xcr0 & 0xe0) == 0xe0, tiles = (xcr0 & 0x60000) == 0x60000;
    if (ymm && ((c >> 28) & 1) && ((c >> 29) & 1)) f |= IDS__CPU_F16C;
    if (ymm && ((c >> 12) & 1)) f |= IDS__CPU_FMA;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned sub = a;
    if (ymm && ((b >> 5) & 1)) f |= IDS__CPU_AVX2;
    if (zmm && ((b >> 16) & 1)) f |= IDS__CPU_AVX512F;
    if (zmm && ((c >> 11) & 1)) f |= IDS__CPU_AVX512_VNNI;
    if (tiles && ((d >> 24) & 1)) {
        if ((d >> 22) & 1) f |= IDS__CPU_AMX_BF16;
        if ((d >> 25) & 1) f |= IDS__CPU_AMX_INT8;
    }
    if (sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        if (zmm && ((a >> 5) & 1)) f |= IDS__CPU_AVX512_BF16;
    }
    return f;
}
#else
static unsigned detect(void) { return 0; }
#endif

unsigned ids__cpu_features(void) {
    static volatile int known = 0;
    static volatile unsigned features = 0;
    if (!known) { /* idempotent: racing threads compute the same value */
        features = detect();
        known = 1;
    }
    return features;
}

bool ids__cpu_amx_permit(char *why, size_t why_len) {
#if defined(__linux__) && defined(__x86_64__)
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        const int e = errno;
        snprintf(why, why_len, "Linux refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM: %s%s)", strerror(e),
                 e == EINVAL ? "; a kernel before 5.16" : e == ENOSPC ? "; a thread's sigaltstack is too small" : "");
        return false;
    }
    unsigned long granted = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &granted) != 0 || !((granted >> XFEATURE_XTILEDATA) & 1)) {
        snprintf(why, why_len, "Linux did not grant the AMX tile state (arch_prctl ARCH_GET_XCOMP_PERM: 0x%lx)", granted);
        return false;
    }
    return true;
#else
    snprintf(why, why_len, "AMX tiles are used on Linux on x86-64 only");
    return false;
#endif
}

static const struct {
    unsigned bit;
    const char *name;
} k_flags[] = {{IDS__CPU_FMA, "fma"},           {IDS__CPU_F16C, "f16c"},
               {IDS__CPU_AVX2, "avx2"},         {IDS__CPU_AVX512F, "avx512f"},
               {IDS__CPU_AVX512_VNNI, "avx512_vnni"}, {IDS__CPU_AVX512_BF16, "avx512_bf16"},
               {IDS__CPU_AMX_BF16, "amx_bf16"}, {IDS__CPU_AMX_INT8, "amx_int8"}};

void ids_cpu_describe(char *name, size_t name_len, char *flags, size_t flags_len) {
    if (name && name_len) {
        snprintf(name, name_len, "unknown CPU");
        FILE *f = fopen("/proc/cpuinfo", "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10)) continue;
            const char *v = strchr(line, ':');
            if (!v) break;
            for (v++; *v == ' ' || *v == '\t'; v++) {}
            snprintf(name, name_len, "%.*s", (int)strcspn(v, "\n"), v);
            break;
        }
        if (f) fclose(f);
    }
    if (flags && flags_len) {
        const unsigned feat = ids__cpu_features();
        size_t n = 0;
        flags[0] = 0;
        for (size_t k = 0; k < sizeof k_flags / sizeof *k_flags; k++)
            if ((feat & k_flags[k].bit) && n < flags_len)
                n += (size_t)snprintf(flags + n, flags_len - n, "%s%s", n ? " " : "", k_flags[k].name);
    }
}
