/* OpenBLAS's thread count: process-wide state of the BLAS library, set from this one place. */
#include "base/internal.h"

/* OpenBLAS's own entry points (declared here: a generic cblas.h does not have them). */
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

int ids__blas_threads_set(int n) {
    const int prev = openblas_get_num_threads();
    openblas_set_num_threads(n < 1 ? 1 : n);
    return prev;
}
