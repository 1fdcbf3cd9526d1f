/* Random numbers (base): the generators every layer draws from. */
#ifndef IDS_RNG_H
#define IDS_RNG_H

#include <stdint.h>

/* One step of the 64-bit LCG that the experiments use to pick stimuli; returns the new state. */
static inline uint64_t ids__lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s;
}

#endif
