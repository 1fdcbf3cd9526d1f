/* Numbers read from JSON, range-checked before they are converted: a double outside the range of
 * the integer type it becomes is undefined behaviour in C, so every reader goes through here. */
#include "base/internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

/* The value under key (obj itself when key is NULL), NULL when absent. */
static const cJSON *item(const cJSON *obj, const char *key) {
    if (!obj) return NULL;
    return key ? cJSON_GetObjectItemCaseSensitive(obj, key) : obj;
}

static ids_status not_number(const char *key, ids_err *err) {
    if (key) return ids__err(err, IDS_ERR_TYPE, "'%s' must be a number", key);
    return ids__err(err, IDS_ERR_TYPE, "not a number");
}

ids_status ids__json_int(const struct cJSON *obj, const char *key, long long lo, long long hi, long long def,
                         long long *out, ids_err *err) {
    *out = def;
    const cJSON *v = item(obj, key);
    if (!v || cJSON_IsNull(v)) return IDS_OK;
    if (!cJSON_IsNumber(v)) return not_number(key, err);
    const double d = v->valuedouble;
    /* compared as doubles, converted only when inside (and exact: |d| <= 2^53) */
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d) || fabs(d) > 9007199254740992.0 ||
        (long long)d < lo || (long long)d > hi) {
        if (key) return ids__err(err, IDS_ERR_RANGE, "'%s' is %.15g, expected an integer in %lld..%lld", key, d, lo, hi);
        return ids__err(err, IDS_ERR_RANGE, "%.15g is not an integer in %lld..%lld", d, lo, hi);
    }
    const long long r = (long long)d;
    *out = r;
    return IDS_OK;
}

ids_status ids__json_num(const struct cJSON *obj, const char *key, double lo, double hi, double def, double *out,
                         ids_err *err) {
    *out = def;
    const cJSON *v = item(obj, key);
    if (!v || cJSON_IsNull(v)) return IDS_OK;
    if (!cJSON_IsNumber(v)) return not_number(key, err);
    const double d = v->valuedouble;
    if (!(d >= lo && d <= hi)) {
        if (key) return ids__err(err, IDS_ERR_RANGE, "'%s' is %.15g, expected a number in [%g, %g]", key, d, lo, hi);
        return ids__err(err, IDS_ERR_RANGE, "%.15g is not a number in [%g, %g]", d, lo, hi);
    }
    *out = d;
    return IDS_OK;
}

ids_status ids__err_prefix(ids_err *err, ids_status code, const char *fmt, ...) {
    if (!err) return code;
    char pre[IDS_ERR_MSG_MAX], msg[IDS_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s", err->msg);
    if (snprintf(err->msg, sizeof err->msg, "%s: %s", pre, msg) >= (int)sizeof err->msg) /* cut: mark it */
        memcpy(err->msg + sizeof err->msg - 4, "...", 4);
    err->code = code;
    return code;
}

ids_status ids__json_parse_object(const char *text, const char *path, struct cJSON **out, ids_err *err) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, false);
    if (cJSON_IsObject(j)) {
        *out = j;
        return IDS_OK;
    }
    *out = NULL;
    cJSON_Delete(j);
    if (j) return ids__err(err, IDS_ERR_FORMAT, "%s: the JSON is not an object ({...})", path);
    size_t at = end && end >= text ? (size_t)(end - text) : 0, line = 1, col = 1, n = strlen(text);
    if (at > n) at = n;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') line++, col = 1;
        else col++;
    }
    size_t k = at; /* whitespace only after the stop: the text ends before the JSON does */
    while (k < n && (text[k] == ' ' || text[k] == '\n' || text[k] == '\r' || text[k] == '\t')) k++;
    if (k >= n)
        return ids__err(err, IDS_ERR_FORMAT, "%s: line %zu, column %zu (byte %zu of %zu): the JSON ends before it is "
                        "complete (truncated, or a bracket or quote left open)", path, line, col, at, n);
    char near[24];
    size_t m = 0;
    for (size_t i = at; i < n && m + 1 < sizeof near && text[i] != '\n'; i++) near[m++] = text[i];
    near[m] = 0;
    return ids__err(err, IDS_ERR_FORMAT, "%s: line %zu, column %zu (byte %zu): not valid JSON at '%s'", path, line, col, at,
                    near);
}
