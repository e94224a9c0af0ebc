/* INCRBYFLOAT in long double, exactly as Redis computes and prints it (string2ld, ld2string's
 * LD_STR_HUMAN mode). Rust has no 80-bit float; replies and stored values must be byte-identical
 * to Redis's, and every replica runs this same code, so the result stays deterministic. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        ((errno == ERANGE) && (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;
    *dp = value;
    return 1;
}

/* Returns the length written to out (at least MAX_LONG_DOUBLE_CHARS bytes), or:
 * -1 the current value is not a float, -2 the increment is not a float,
 * -3 the result is NaN or infinite. `cur` may be NULL (a missing key counts as 0). */
int raftis_incrbyfloat(const char *cur, size_t curlen, const char *incr, size_t incrlen,
                       char *out, size_t outlen) {
    long double value = 0, by = 0;
    if (cur != NULL && !string2ld(cur, curlen, &value)) return -1;
    if (!string2ld(incr, incrlen, &by)) return -2;
    value += by;
    if (isnan(value) || isinf(value)) return -3;
    int l = snprintf(out, outlen, "%.17Lf", value);
    if (l < 0 || (size_t)l + 1 > outlen) return -3;
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') { out[0] = '0'; l = 1; }
    return l;
}

/* Whether the bytes parse as a long double the way Redis's string2ld accepts them. */
int raftis_is_long_double(const char *s, size_t slen) {
    long double v;
    return string2ld(s, slen, &v);
}
