/* Inputs the fuzz harnesses (tests/fuzz/) found, minimized, in tests/fixtures/fuzz/: each must now
 * be handled (an error or a result), never crash, leak or hit undefined behaviour (the suite runs
 * these under ASan and UBSan too). */
#include "test.h"

#define FX "tests/fixtures/fuzz/"

/* A GGUF key or tensor name holding a NUL byte could not be looked up by the name it prints as. */
TEST(fuzz_gguf_names_with_nul_bytes_are_rejected) {
    size_t len;
    char *data = t_read_file(FX "gguf-key-with-nul.gguf", &len);
    REQUIRE(data);
    ids_gguf *g = NULL;
    ids_err err = {0};
    CHECK_EQ_INT(ids_gguf_open_memory(&g, data, len, "nul-key", &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "metadata entry 0") && strstr(err.msg, "NUL byte"), "message: %s", err.msg);
    CHECK(g == NULL);
    ids_gguf_close(g);
    free(data);
    /* the same for a tensor name: "w\0x", 1-D F32 of 1 element at offset 0 */
    static const unsigned char tn[] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        3, 0, 0, 0, 0, 0, 0, 0, 'w', 0, 'x', 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(ids_gguf_open_memory(&g, tn, sizeof tn, "nul-name", &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "tensor 0") && strstr(err.msg, "NUL byte"), "message: %s", err.msg);
    ids_gguf_close(g);
}
