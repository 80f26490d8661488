/* The request headers' index and pick (auditmw.core.event.Headers), in plain C.
 *
 * Names are compared ASCII-lower-cased (bytes.lower()); repeated names are joined in
 * order with ", " ("; " for cookie), as Headers._index does. */
#ifndef AM_HEADERS_H
#define AM_HEADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
} am_header;

/* 1 when name, ASCII-lower-cased, equals target byte for byte. */
int am_name_matches(const uint8_t *name, size_t name_len, const uint8_t *target,
                    size_t target_len);

/* 1 when name has an ASCII upper-case letter (bytes.lower() would change it). */
int am_has_upper(const uint8_t *name, size_t name_len);

/* The separator of repeated header `name` (lower-case): "; " for cookie, else ", ". */
const char *am_join_separator(const uint8_t *name, size_t name_len);

/* The value of header `target` (lower-case) among headers[0..n): the matching values
 * joined in order.  Returns the number of matches; *first is the index of the first
 * match and *joined_len the joined length (0 and 0 without a match).  Never overflows:
 * the joined length of values that are all in memory fits size_t... unless the same
 * value is listed many times; returns (size_t)-1 then. */
size_t am_pick_len(const am_header *headers, size_t n, const uint8_t *target,
                   size_t target_len, size_t *first, size_t *joined_len);

/* Write the joined value (exactly joined_len bytes from am_pick_len) into out. */
void am_pick_write(const am_header *headers, size_t n, const uint8_t *target,
                   size_t target_len, uint8_t *out);

#endif
