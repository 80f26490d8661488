/* See am_time.h. */
#include "am_time.h"

#include <string.h>

static const char HEX[] = "0123456789abcdef";

static void digits(char *out, uint32_t value, int n) {
    while (n-- > 0) {
        out[n] = (char)('0' + value % 10);
        value /= 10;
    }
}

/* days since 1970-01-01 -> civil date (H. Hinnant's algorithm), days >= 0 */
static void civil(int64_t days, int64_t *year, uint32_t *month, uint32_t *day) {
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    uint32_t doe = (uint32_t)(z - era * 146097);
    uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint32_t mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

void am_time_prefix(int64_t second, char out[AM_TIME_PREFIX_LEN]) {
    int64_t year;
    uint32_t month, day, rest = (uint32_t)(second % 86400);
    civil(second / 86400, &year, &month, &day);
    digits(out, (uint32_t)year, 4);
    out[4] = '-';
    digits(out + 5, month, 2);
    out[7] = '-';
    digits(out + 8, day, 2);
    out[10] = 'T';
    digits(out + 11, rest / 3600, 2);
    out[13] = ':';
    digits(out + 14, rest / 60 % 60, 2);
    out[16] = ':';
    digits(out + 17, rest % 60, 2);
    out[19] = '.';
}

void am_time_format(const char prefix[AM_TIME_PREFIX_LEN], uint32_t micros,
                    char out[AM_TIME_LEN]) {
    memcpy(out, prefix, AM_TIME_PREFIX_LEN);
    digits(out + AM_TIME_PREFIX_LEN, micros, 6);
    out[AM_TIME_LEN - 1] = 'Z';
}

static uint32_t nibble(const am_ids *ids, size_t i) {
    uint8_t b = ids->pool[i >> 1];
    return (uint32_t)((i & 1) ? b & 15u : b >> 4);
}

int am_id_needs_refill(const am_ids *ids) { return ids->pos + 19 > AM_ID_POOL_NIBBLES; }

void am_id_prefix(int64_t ms, char out[AM_ID_PREFIX_LEN]) {
    uint64_t t = (uint64_t)ms & UINT64_C(0xFFFFFFFFFFFF); /* as Python's ms & mask */
    int i;
    for (i = 11; i >= 0; i--) {
        out[i < 8 ? i : i + 1] = HEX[t & 15u];
        t >>= 4;
    }
    out[8] = '-';
    out[13] = '-';
    out[14] = '7';
}

size_t am_id_next(am_ids *ids, int64_t ms, char out[AM_ID_MAX_LEN]) {
    static const char VARIANT[] = "89ab";
    size_t pos = ids->pos, n, i;
    if (ms > ids->last_ms) {
        ids->last_ms = ms;
        ids->counter = (nibble(ids, pos) << 8 | nibble(ids, pos + 1) << 4 | nibble(ids, pos + 2)) >> 1;
        pos += 3;
        am_id_prefix(ms, ids->prefix);
        ids->prefix_len = AM_ID_PREFIX_LEN;
    } else {
        ids->counter++;
        if (ids->counter > 0xFFF) { /* exhausted: borrow the next millisecond */
            if (ids->last_ms == INT64_MAX) {
                ids->counter--;
                return 0;
            }
            ids->last_ms++;
            ids->counter = 0;
            am_id_prefix(ids->last_ms, ids->prefix);
            ids->prefix_len = AM_ID_PREFIX_LEN;
        }
    }
    ids->pos = pos + 16;
    n = ids->prefix_len;
    memcpy(out, ids->prefix, n);
    out[n++] = HEX[ids->counter >> 8];
    out[n++] = HEX[(ids->counter >> 4) & 15u];
    out[n++] = HEX[ids->counter & 15u];
    out[n++] = '-';
    out[n++] = VARIANT[nibble(ids, pos) & 3u];
    for (i = 1; i < 16; i++) {
        if (i == 4) out[n++] = '-';
        out[n++] = HEX[nibble(ids, pos + i)];
    }
    return n;
}
