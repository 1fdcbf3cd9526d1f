/* What the CPU this process runs on can do, read once from cpuid (never from the build machine):
 * the instruction sets the kernels choose between at run time. */
#include "idscope/base.h"
#include "base/internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* XCR0: which register states the operating system saves (AVX needs XMM and YMM, bits 1-2). */
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static unsigned detect(void) {
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const bool ymm = osxsave && (xgetbv0() & 6) == 6;
    if (avx && ymm && ((c >> 29) & 1)) f |= IDS__CPU_F16C;
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
