/* See am_headers.h. */
#include "am_headers.h"

#include <string.h>

static uint8_t lower(uint8_t c) { return (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c); }

int am_name_matches(const uint8_t *name, size_t name_len, const uint8_t *target,
                    size_t target_len) {
    size_t i;
    if (name_len != target_len) return 0;
    for (i = 0; i < name_len; i++)
        if (lower(name[i]) != target[i]) return 0;
    return 1;
}

int am_has_upper(const uint8_t *name, size_t name_len) {
    size_t i;
    for (i = 0; i < name_len; i++)
        if (name[i] >= 'A' && name[i] <= 'Z') return 1;
    return 0;
}

const char *am_join_separator(const uint8_t *name, size_t name_len) {
    return name_len == 6 && memcmp(name, "cookie", 6) == 0 ? "; " : ", ";
}

size_t am_pick_len(const am_header *headers, size_t n, const uint8_t *target,
                   size_t target_len, size_t *first, size_t *joined_len) {
    size_t i, count = 0, total = 0;
    *first = 0;
    *joined_len = 0;
    for (i = 0; i < n; i++) {
        const am_header *h = &headers[i];
        if (!am_name_matches(h->name, h->name_len, target, target_len)) continue;
        if (count == 0) {
            *first = i;
        } else {
            if (total > SIZE_MAX - 2) return (size_t)-1;
            total += 2; /* the separator */
        }
        if (h->value_len > SIZE_MAX - total) return (size_t)-1;
        total += h->value_len;
        count++;
    }
    *joined_len = total;
    return count;
}

void am_pick_write(const am_header *headers, size_t n, const uint8_t *target,
                   size_t target_len, uint8_t *out) {
    const char *sep = am_join_separator(target, target_len);
    size_t i, count = 0;
    for (i = 0; i < n; i++) {
        const am_header *h = &headers[i];
        if (!am_name_matches(h->name, h->name_len, target, target_len)) continue;
        if (count++ > 0) {
            memcpy(out, sep, 2);
            out += 2;
        }
        if (h->value_len) memcpy(out, h->value, h->value_len);
        out += h->value_len;
    }
}
