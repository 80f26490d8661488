/* The writer's chain step: hash, MAC and the seal spliced into the canonical line.
 *
 * The Python reference is ChainEncoder._append (auditmw/_encoder.py); this file mirrors
 * it byte for byte.  Plain C99, no Python, no allocation: the extension module and the
 * fuzz harness compile this same file. */
#ifndef AUDITMW_AM_CHAIN_H
#define AUDITMW_AM_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "am_sha256.h"

/* '"hash":"' 64 hex '",' and, with a MAC, '"mac":"' 64 hex '",' */
#define AM_SEAL_HASH_LEN (8 + 64 + 2)
#define AM_SEAL_MAC_LEN (7 + 64 + 2)
#define AM_SEAL_MAX (AM_SEAL_HASH_LEN + AM_SEAL_MAC_LEN)

typedef struct {
    uint8_t digest[AM_SHA256_DIGEST];
    char hash_hex[2 * AM_SHA256_DIGEST];
    char mac_hex[2 * AM_SHA256_DIGEST];
    int has_mac;
    uint8_t seal[AM_SEAL_MAX];
    size_t seal_len;
} am_seal;

/* Where am_splice_at says the seal goes. */
enum {
    AM_SPLICE_AT = 0,       /* *at is set: line = body[:at] + seal + body[at:] */
    AM_SPLICE_FALLBACK = 1, /* marker absent or present twice: serialize again */
    AM_SPLICE_NO_COMMA = 2  /* marker once, MAC on, no ',' after it (Python raises) */
};

/* digest = SHA-256(domain || head || body); with key, mac = HMAC(key, mac_domain || digest);
 * fills every field of *out.  key may be NULL (no MAC). */
void am_chain_seal(const uint8_t *domain, size_t domain_len, const uint8_t *head,
                   size_t head_len, const uint8_t *body, size_t body_len,
                   const am_hmac_key *key, const uint8_t *mac_domain, size_t mac_domain_len,
                   am_seal *out);

/* Python's haystack.find(needle, start), as an index, or -1 when absent (as a
 * ptrdiff_t; start may exceed len, as in Python). */
ptrdiff_t am_find(const uint8_t *hay, size_t len, const uint8_t *needle, size_t nlen,
                  size_t start);

/* Where the seal goes: right after the marker, and with a MAC after the next ','
 * (past "epoch":N).  Returns one of AM_SPLICE_*. */
int am_splice_at(const uint8_t *body, size_t body_len, const uint8_t *marker,
                 size_t marker_len, int has_mac, size_t *at);

/* Write body[:at] + seal + body[at:] into dst, which holds body_len + seal->seal_len
 * bytes; at <= body_len (as am_splice_at returns it). */
void am_splice_write(uint8_t *dst, const uint8_t *body, size_t body_len, size_t at,
                     const am_seal *seal);

#endif
