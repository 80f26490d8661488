/* libFuzzer harness over the request thread's plain-C parsing (src/auditmw/_native):
 * am_headers.c (the header pick) and am_time.c (event time, event id).
 *
 * The first input byte picks the target; the rest becomes its arguments.  Checks:
 *  - headers: am_name_matches == lower-case-then-compare; am_pick_len/am_pick_write ==
 *    a naive join of the lower-cased matches (", ", "; " for cookie), written into a
 *    heap buffer of exactly the computed size (AddressSanitizer sees one byte too many);
 *  - time: am_time_prefix == gmtime_r + strftime("%Y-%m-%dT%H:%M:%S.") for every second
 *    of years 1970..9999, and am_time_format appends the 6 digits and "Z";
 *  - ids: from any state, every id has the UUIDv7 layout, the counter stays <= 0xfff,
 *    and while the millisecond fits 48 bits, the ids strictly increase.
 * That the C code equals the Python code is the job of tests/native (hypothesis). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "am_headers.h"
#include "am_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_parse: check failed: %s (line %d)\n", #cond, \
                    __LINE__);                                                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define MAX_HEADERS 32

#include "take.h"

static uint64_t take_u64(const uint8_t **data, size_t *size) {
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8 && *size > 0; i++) {
        v = v << 8 | (*data)[0];
        (*data)++;
        (*size)--;
    }
    return v;
}

static uint8_t lower(uint8_t c) { return (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c); }

static int naive_matches(const uint8_t *name, size_t n, const uint8_t *t, size_t tn) {
    size_t i;
    uint8_t *low;
    int same;
    if (n != tn) return 0;
    low = malloc(n + 1);
    CHECK(low != NULL);
    for (i = 0; i < n; i++) low[i] = lower(name[i]);
    same = n == 0 || memcmp(low, t, n) == 0;
    free(low);
    return same;
}

static void fuzz_headers(const uint8_t *data, size_t size) {
    am_header headers[MAX_HEADERS] = {{NULL, 0, NULL, 0}};
    size_t n = 0, tlen, i, first, len, count, naive_count = 0, at = 0;
    const uint8_t *target;
    uint8_t *out, *want;
    /* a short target, often one of the picked names in some case */
    target = take(&data, &size, 16, &tlen);
    while (size > 0 && n < MAX_HEADERS) {
        headers[n].name = take(&data, &size, 16, &headers[n].name_len);
        headers[n].value = take(&data, &size, 200, &headers[n].value_len);
        if (n % 3 == 1 && tlen > 0) { /* make matches likely: the target, case changed */
            headers[n].name = target;
            headers[n].name_len = tlen;
        }
        n++;
    }
    count = am_pick_len(headers, n, target, tlen, &first, &len);
    want = malloc(n * 202 + 1);
    CHECK(want != NULL);
    for (i = 0; i < n; i++) {
        int m = am_name_matches(headers[i].name, headers[i].name_len, target, tlen);
        CHECK(m == naive_matches(headers[i].name, headers[i].name_len, target, tlen));
        if (!m) continue;
        if (naive_count == 0) CHECK(first == i);
        if (naive_count++ > 0) {
            int cookie = tlen == 6 && memcmp(target, "cookie", 6) == 0;
            want[at++] = cookie ? ';' : ',';
            want[at++] = ' ';
        }
        if (headers[i].value_len) memcpy(want + at, headers[i].value, headers[i].value_len);
        at += headers[i].value_len;
    }
    CHECK(count == naive_count);
    CHECK(len == at);
    if (count > 0) {
        out = malloc(len ? len : 1);
        CHECK(out != NULL);
        am_pick_write(headers, n, target, tlen, out);
        CHECK(len == 0 || memcmp(out, want, len) == 0);
        free(out);
    }
    for (i = 0; i < tlen; i++)
        if (target[i] >= 'A' && target[i] <= 'Z') CHECK(am_has_upper(target, tlen));
    free(want);
}

static void fuzz_time(const uint8_t *data, size_t size) {
    uint64_t raw = take_u64(&data, &size);
    int64_t second = (int64_t)(raw % (uint64_t)(AM_TIME_MAX_SECOND + 1));
    uint32_t micros = (uint32_t)(take_u64(&data, &size) % 1000000u);
    char prefix[AM_TIME_PREFIX_LEN], want[64], out[AM_TIME_LEN];
    time_t t = (time_t)second;
    struct tm tm;
    if (size > 0 && data[0] & 1) second %= INT64_C(86400) * 366 * 400; /* the near years */
    t = (time_t)second;
    CHECK(gmtime_r(&t, &tm) != NULL);
    CHECK(strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S.", &tm) == AM_TIME_PREFIX_LEN);
    am_time_prefix(second, prefix);
    CHECK(memcmp(prefix, want, AM_TIME_PREFIX_LEN) == 0);
    am_time_format(prefix, micros, out);
    CHECK(memcmp(out, want, AM_TIME_PREFIX_LEN) == 0);
    snprintf(want, sizeof want, "%06uZ", (unsigned)micros);
    CHECK(memcmp(out + AM_TIME_PREFIX_LEN, want, 7) == 0);
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static void check_layout(const char *id) {
    int i;
    for (i = 0; i < AM_ID_MAX_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            CHECK(id[i] == '-');
        else
            CHECK(is_hex(id[i]));
    }
    CHECK(id[14] == '7');
    CHECK(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
}

static void fuzz_ids(const uint8_t *data, size_t size) {
    static am_ids ids; /* 8 KiB: not on the stack */
    char prev[AM_ID_MAX_LEN], out[AM_ID_MAX_LEN];
    int have_prev = 0;
    size_t i, n;
    int64_t ms = (int64_t)(take_u64(&data, &size) % (UINT64_C(1) << 48));
    memset(&ids, 0, sizeof ids);
    ids.last_ms = ms;
    ids.counter = (uint32_t)(take_u64(&data, &size) & 0xFFFu);
    am_id_prefix(ms, ids.prefix);
    ids.prefix_len = AM_ID_PREFIX_LEN;
    for (i = 0; i < sizeof ids.pool; i++) ids.pool[i] = size ? data[i % size] : (uint8_t)i;
    ids.pos = size ? (size_t)data[0] * 32 % AM_ID_POOL_NIBBLES : 0;
    while (size > 0) {
        int64_t step = (int64_t)(data[0] % 8) - 2; /* back, same, forward */
        data++;
        size--;
        if (step > 3) step *= 1000;
        ms += step;
        if (ms < 0) ms = 0;
        if (am_id_needs_refill(&ids)) {
            for (i = 0; i < sizeof ids.pool; i++) ids.pool[i] = (uint8_t)(ids.pool[i] * 31 + 7);
            ids.pos = 0;
        }
        CHECK(ids.pos + 19 <= AM_ID_POOL_NIBBLES);
        n = am_id_next(&ids, ms, out);
        CHECK(n == AM_ID_MAX_LEN);
        CHECK(ids.counter <= 0xFFF);
        check_layout(out);
        if (ids.last_ms < (INT64_C(1) << 48) - 1 && have_prev)
            CHECK(memcmp(prev, out, AM_ID_MAX_LEN) < 0);
        if (ids.last_ms >= (INT64_C(1) << 48) - 1) have_prev = 0;
        else {
            memcpy(prev, out, AM_ID_MAX_LEN);
            have_prev = 1;
        }
    }
    /* the borrow at the end of int64 fails instead of overflowing */
    ids.last_ms = INT64_MAX;
    ids.counter = 0xFFF;
    ids.pos = 0;
    CHECK(am_id_next(&ids, 0, out) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_headers(data + 1, size - 1);
        break;
    case 1:
        fuzz_time(data + 1, size - 1);
        break;
    default:
        fuzz_ids(data + 1, size - 1);
        break;
    }
    return 0;
}
