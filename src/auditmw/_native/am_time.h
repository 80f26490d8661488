/* Event time and event id (auditmw.core.canonical.format_time / new_event_id), plain C. */
#ifndef AM_TIME_H
#define AM_TIME_H

#include <stddef.h>
#include <stdint.h>

/* "YYYY-MM-DDTHH:MM:SS." (UTC, proleptic Gregorian) of a second since the epoch,
 * 0 <= second <= AM_TIME_MAX_SECOND (year 9999). */
#define AM_TIME_PREFIX_LEN 20
#define AM_TIME_MAX_SECOND INT64_C(253402300799)
#define AM_TIME_LEN 27 /* prefix + "uuuuuuZ" */
void am_time_prefix(int64_t second, char out[AM_TIME_PREFIX_LEN]);

/* prefix + the 6 digits of micros (< 1,000,000) + "Z" */
void am_time_format(const char prefix[AM_TIME_PREFIX_LEN], uint32_t micros,
                    char out[AM_TIME_LEN]);

/* UUIDv7 state: the rules of new_event_id, its random pool kept as bytes whose hex
 * digits ("nibbles", high first, as bytes.hex()) are consumed exactly as the Python
 * code consumes its hex string. */
#define AM_ID_POOL_BYTES 4096
#define AM_ID_POOL_NIBBLES (2 * AM_ID_POOL_BYTES)
#define AM_ID_MAX_LEN 36
#define AM_ID_PREFIX_LEN 15 /* "tttttttt-tttt-7" */

typedef struct {
    int64_t last_ms;
    uint32_t counter;
    uint32_t prefix_len; /* 0 before the first id of a millisecond after 0 */
    char prefix[AM_ID_PREFIX_LEN];
    size_t pos; /* next nibble of pool */
    uint8_t pool[AM_ID_POOL_BYTES];
} am_ids;

/* 1 when the pool must be refilled (all bytes new, pos = 0) before am_id_next. */
int am_id_needs_refill(const am_ids *ids);

/* The next id for millisecond ms into out; returns its length (36, or 21 while the
 * prefix is still empty), or 0 when borrowing a millisecond would overflow int64. */
size_t am_id_next(am_ids *ids, int64_t ms, char out[AM_ID_MAX_LEN]);

void am_id_prefix(int64_t ms, char out[AM_ID_PREFIX_LEN]);

#endif
