/* Random numbers (base): every generator the library, its tests and its benchmarks draw from, each
 * defined once. All are pure functions of a caller-owned 64-bit state (no hidden global state), so
 * a seed gives the same sequence on every platform and thread count. None is for cryptography.
 *
 * Streams in use:
 *   ids__lcg               experiments: which stimulus to draw, steering noise (ids__rng_lcg_normal), the
 *                          --set sample, the hue-shift control's gradients
 *   ids__rng_splitmix      stimuli items, the trainer's samples, task mix and initialisation
 *   ids__rng_xorshift      the benchmarks' synthetic weights
 * Conversions (from one 64-bit draw, using its top 53 bits, k = draw >> 11):
 *   ids__rng_unit          k / 2^53           uniform in [0, 1)
 *   ids__rng_unit_open     (k + 0.5) / 2^53   uniform in (0, 1): never 0, safe for log()
 *   ids__rng_box_muller    one standard normal from two draws (the first must come from unit_open). */
#ifndef IDS_RNG_H
#define IDS_RNG_H

#include <math.h>
#include <stdint.h>

/* One step of a 64-bit LCG (Knuth's MMIX constants); returns the new state. Its low bits are weak:
 * use the high ones (>> 33 for an index, >> 11 for a double). */
static inline uint64_t ids__lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s;
}

/* SplitMix64 (Steele, Lea and Flood 2014): the state advances by the golden-ratio increment and
 * the returned value is the state mixed; every 64-bit value can come out. Any seed is fine. */
static inline uint64_t ids__rng_splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Marsaglia's xorshift64 (shifts 13, 7, 17); returns the new state. The state must not be 0. */
static inline uint64_t ids__rng_xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Uniform double in [0, 1) from the top 53 bits of a draw. */
static inline double ids__rng_unit(uint64_t draw) { return (double)(draw >> 11) / 9007199254740992.0; }

/* Uniform double in (0, 1) from the top 53 bits of a draw (half a step off both ends). */
static inline double ids__rng_unit_open(uint64_t draw) {
    return ((double)(draw >> 11) + 0.5) / 9007199254740992.0;
}

/* Box-Muller (cosine branch): a standard normal from two draws, d1 feeding the radius through
 * ids__rng_unit_open and d2 the angle through ids__rng_unit. */
static inline double ids__rng_box_muller(uint64_t d1, uint64_t d2) {
    const double u1 = ids__rng_unit_open(d1), u2 = ids__rng_unit(d2);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* The generators' uniform [0, 1) and normal draws. A normal takes two steps of its generator, the
 * radius's draw first. */
static inline double ids__rng_splitmix_unit(uint64_t *s) { return ids__rng_unit(ids__rng_splitmix(s)); }
static inline double ids__rng_xorshift_unit(uint64_t *s) { return ids__rng_unit(ids__rng_xorshift(s)); }
static inline double ids__rng_splitmix_normal(uint64_t *s) {
    const uint64_t d1 = ids__rng_splitmix(s);
    const uint64_t d2 = ids__rng_splitmix(s);
    return ids__rng_box_muller(d1, d2);
}
static inline double ids__rng_lcg_normal(uint64_t *s) {
    const uint64_t d1 = ids__lcg(s);
    const uint64_t d2 = ids__lcg(s);
    return ids__rng_box_muller(d1, d2);
}

#endif
