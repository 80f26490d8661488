/* The writer's chain step; see am_chain.h. */
#include "am_chain.h"

#include <string.h>

static const char HEX[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                             '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

static void to_hex(const uint8_t *in, size_t n, char *out) {
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
}

static uint8_t *put(uint8_t *dst, const void *src, size_t n) {
    memcpy(dst, src, n);
    return dst + n;
}

void am_chain_seal(const uint8_t *domain, size_t domain_len, const uint8_t *head,
                   size_t head_len, const uint8_t *body, size_t body_len,
                   const am_hmac_key *key, const uint8_t *mac_domain, size_t mac_domain_len,
                   am_seal *out) {
    am_sha256 ctx;
    uint8_t *p;
    am_sha256_init(&ctx);
    am_sha256_update(&ctx, domain, domain_len);
    am_sha256_update(&ctx, head, head_len);
    am_sha256_update(&ctx, body, body_len);
    am_sha256_final(&ctx, out->digest);
    to_hex(out->digest, AM_SHA256_DIGEST, out->hash_hex);
    p = out->seal;
    p = put(p, "\"hash\":\"", 8);
    p = put(p, out->hash_hex, sizeof out->hash_hex);
    p = put(p, "\",", 2);
    out->has_mac = key != NULL;
    if (key != NULL) {
        uint8_t mac[AM_SHA256_DIGEST];
        am_hmac2(key, mac_domain, mac_domain_len, out->digest, AM_SHA256_DIGEST, mac);
        to_hex(mac, sizeof mac, out->mac_hex);
        p = put(p, "\"mac\":\"", 7);
        p = put(p, out->mac_hex, sizeof out->mac_hex);
        p = put(p, "\",", 2);
    } else {
        memset(out->mac_hex, 0, sizeof out->mac_hex);
    }
    out->seal_len = (size_t)(p - out->seal);
}

/* Boyer-Moore-Horspool: the shift for each byte value seen under the needle's last
 * position (capped at 255: a smaller shift than possible is still correct). */
typedef struct {
    uint8_t shift[256];
} am_skip;

static void skip_init(am_skip *t, const uint8_t *needle, size_t nlen) {
    size_t i;
    memset(t->shift, nlen > 255 ? 255 : (int)nlen, sizeof t->shift);
    for (i = 0; i + 1 < nlen; i++) {
        size_t s = nlen - 1 - i;
        t->shift[needle[i]] = (uint8_t)(s > 255 ? 255 : s);
    }
}

static ptrdiff_t find_with(const am_skip *t, const uint8_t *hay, size_t len,
                           const uint8_t *needle, size_t nlen, size_t start) {
    size_t pos;
    uint8_t last;
    if (start > len) return -1;
    if (nlen == 0) return (ptrdiff_t)start;
    if (nlen > len - start) return -1;
    if (nlen == 1) {
        const uint8_t *hit = memchr(hay + start, needle[0], len - start);
        return hit == NULL ? -1 : hit - hay;
    }
    last = needle[nlen - 1];
    for (pos = start; pos <= len - nlen; pos += t->shift[hay[pos + nlen - 1]]) {
        if (hay[pos + nlen - 1] == last && memcmp(hay + pos, needle, nlen - 1) == 0)
            return (ptrdiff_t)pos;
    }
    return -1;
}

ptrdiff_t am_find(const uint8_t *hay, size_t len, const uint8_t *needle, size_t nlen,
                  size_t start) {
    am_skip t;
    skip_init(&t, needle, nlen);
    return find_with(&t, hay, len, needle, nlen, start);
}

int am_splice_at(const uint8_t *body, size_t body_len, const uint8_t *marker,
                 size_t marker_len, int has_mac, size_t *at) {
    am_skip t;
    ptrdiff_t found;
    size_t pos;
    skip_init(&t, marker, marker_len);
    found = find_with(&t, body, body_len, marker, marker_len, 0);
    if (found < 0) return AM_SPLICE_FALLBACK;
    if (find_with(&t, body, body_len, marker, marker_len, (size_t)found + 1) >= 0)
        return AM_SPLICE_FALLBACK;
    pos = (size_t)found + marker_len;
    if (has_mac) {
        const uint8_t *comma =
            pos < body_len ? memchr(body + pos, ',', body_len - pos) : NULL;
        if (comma == NULL) return AM_SPLICE_NO_COMMA;
        pos = (size_t)(comma - body) + 1;
    }
    *at = pos;
    return AM_SPLICE_AT;
}

void am_splice_write(uint8_t *dst, const uint8_t *body, size_t body_len, size_t at,
                     const am_seal *seal) {
    memcpy(dst, body, at);
    memcpy(dst + at, seal->seal, seal->seal_len);
    memcpy(dst + at + seal->seal_len, body + at, body_len - at);
}
