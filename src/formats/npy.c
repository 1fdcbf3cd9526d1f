/* NumPy .npy reading and writing (format 1.0/2.0/3.0, little-endian, C order). */
#include "idscope/formats.h"
#include "base/internal.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>

static size_t dtype_size(const char *d) {
    if (strlen(d) < 3 || (d[0] != '<' && d[0] != '|' && d[0] != '=')) return 0;
    if (!strchr("fiub", d[1])) return 0;
    long n = strtol(d + 2, NULL, 10);
    return (n == 1 || n == 2 || n == 4 || n == 8) ? (size_t)n : 0;
}

void ids_npy_free(ids_npy *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
    a->nbytes = 0;
}

/* Find 'key': in the header dict and return a pointer just past the colon. */
static const char *dict_value(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

ids_status ids_npy_read(const char *path, ids_npy *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return ids__err(err, IDS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[12];
    ids_status st = IDS_OK;
    char *hdr = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ids__err(err, IDS_ERR_IO, "%s: not a regular file", path);
    }
    const uint64_t file_size = (uint64_t)sb.st_size;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: offset 0: not a .npy file (bad magic)", path);
        goto done;
    }
    size_t hlen, hoff;
    if (pre[6] == 1) {
        hlen = ids__rd16(pre + 8);
        hoff = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: offset 10: truncated header length", path);
            goto done;
        }
        hlen = ids__rd32(pre + 8);
        hoff = 12;
    } else {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: offset 6: unsupported .npy version %d", path, pre[6]);
        goto done;
    }
    if (hlen > (1u << 20) || hlen > file_size - hoff) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: offset 8: header length %zu %s", path, hlen,
                      hlen > (1u << 20) ? "too large" : "exceeds the file (truncated header)");
        goto done;
    }
    hdr = ids__malloc(hlen + 1);
    if (!hdr) {
        st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: offset %zu: truncated header", path, hoff);
        goto done;
    }
    hdr[hlen] = 0;
    const char *d = dict_value(hdr, "descr");
    if (!d || *d != '\'') {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: header has no 'descr'", path);
        goto done;
    }
    size_t k = 0;
    for (d++; *d && *d != '\'' && k < sizeof out->dtype - 1; d++) out->dtype[k++] = *d;
    out->dtype[k] = 0;
    size_t isz = dtype_size(out->dtype);
    if (!isz || out->dtype[0] == '>') {
        st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: unsupported dtype '%s'", path, out->dtype);
        goto done;
    }
    const char *fo = dict_value(hdr, "fortran_order");
    if (!fo) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: header has no 'fortran_order'", path);
        goto done;
    }
    if (!strncmp(fo, "True", 4)) {
        st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: only C-order arrays are supported (fortran_order is True)", path);
        goto done;
    }
    if (strncmp(fo, "False", 5) != 0) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: header: 'fortran_order' is neither True nor False", path);
        goto done;
    }
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(') {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: header has no 'shape'", path);
        goto done;
    }
    s++;
    uint64_t nel = 1;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (!isdigit((unsigned char)*s)) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: bad shape in header (dimension %d is not a whole number)", path,
                          out->ndim);
            goto done;
        }
        if (out->ndim == 8) {
            st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: shape has more than 8 dimensions", path);
            goto done;
        }
        char *e;
        errno = 0;
        long long v = strtoll(s, &e, 10);
        if (errno == ERANGE) {
            const int nd = (int)strspn(s, "0123456789");
            st = ids__err(err, IDS_ERR_FORMAT, "%s: bad shape in header (dimension %d: %.*s%s is too large)", path, out->ndim,
                          nd < 24 ? nd : 24, s, nd > 24 ? "..." : "");
            goto done;
        }
        s = e;
        out->shape[out->ndim++] = v;
        if (!ids__mul_ok(nel, (uint64_t)v, &nel)) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: shape overflows", path);
            goto done;
        }
    }
    if (*s != ')') {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: header: 'shape' has no closing parenthesis", path);
        goto done;
    }
    /* the data the header asks for must be in the file before anything is allocated for it */
    const uint64_t data_off = hoff + hlen, have = file_size > data_off ? file_size - data_off : 0;
    uint64_t nbytes = 0;
    const bool representable = ids__mul_ok(nel, isz, &nbytes);
    if (!representable || nbytes > have) {
        char shape[160], need[48];
        int m = 0;
        shape[0] = 0;
        for (int i = 0; i < out->ndim && m < (int)sizeof shape - 24; i++)
            m += snprintf(shape + m, sizeof shape - (size_t)m, "%s%lld", i ? ", " : "", (long long)out->shape[i]);
        if (representable) snprintf(need, sizeof need, "%llu bytes", (unsigned long long)nbytes);
        else snprintf(need, sizeof need, "more than 2^64 bytes");
        st = ids__err(err, IDS_ERR_FORMAT, "%s: offset %llu: truncated data: shape (%s) of %s needs %s, the file has %llu",
                      path, (unsigned long long)data_off, shape, out->dtype, need, (unsigned long long)have);
        goto done;
    }
    out->nbytes = (size_t)nbytes;
    out->data = ids__malloc(out->nbytes);
    if (!out->data) {
        st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for %zu bytes", path, out->nbytes);
        goto done;
    }
    if (fread(out->data, 1, out->nbytes, f) != out->nbytes) {
        st = ids__err(err, IDS_ERR_IO, "%s: offset %llu: cannot read %zu bytes of data", path,
                      (unsigned long long)data_off, out->nbytes);
        goto done;
    }
done:
    free(hdr);
    fclose(f);
    if (st) ids_npy_free(out);
    return st;
}

ids_status ids_npy_write(const char *path, const char *dtype, int ndim, const int64_t *shape,
                         const void *data, ids_err *err) {
    size_t isz = dtype_size(dtype);
    if (!isz || ndim < 0 || ndim > 8)
        return ids__err(err, IDS_ERR_ARG, "%s: cannot write dtype '%s' with %d dims", path, dtype, ndim);
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", dtype);
    uint64_t nel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !ids__mul_ok(nel, (uint64_t)shape[i], &nel))
            return ids__err(err, IDS_ERR_ARG, "%s: bad shape", path);
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (ndim == 1) n += snprintf(hdr + n, sizeof hdr - (size_t)n, ",");
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    /* pad with spaces so that 10 + header (incl. trailing newline) is a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = padded - 10;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    char full[640];
    memcpy(full, hdr, (size_t)n);
    memset(full + n, ' ', hlen - (size_t)n - 1);
    full[hlen - 1] = '\n';
    const void *parts[3] = {pre, full, data};
    size_t sizes[3] = {10, hlen, (size_t)(nel * isz)};
    return ids__write_atomic(path, parts, sizes, 3, err);
}
