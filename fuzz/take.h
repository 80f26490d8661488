/* The fuzz harnesses' input reader, shared by fuzz_chain.c and fuzz_parse.c. */
#ifndef AUDITMW_FUZZ_TAKE_H
#define AUDITMW_FUZZ_TAKE_H

#include <stddef.h>
#include <stdint.h>

/* Take a length-prefixed piece (its length byte capped at cap) off the input. */
static const uint8_t *take(const uint8_t **data, size_t *size, size_t cap, size_t *len) {
    const uint8_t *piece;
    size_t n;
    if (*size == 0) {
        *len = 0;
        return *data;
    }
    n = (*data)[0] % (cap + 1);
    (*data)++;
    (*size)--;
    if (n > *size) n = *size;
    piece = *data;
    *data += n;
    *size -= n;
    *len = n;
    return piece;
}

#endif
