/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) with precomputed key states.
 *
 * Plain C99, no Python, no allocation: the extension module and the fuzz harness
 * compile this same file.  SHA-256 itself is OpenSSL's libcrypto when built with
 * -DAM_HAVE_OPENSSL (setup.py does where the headers are), else the portable C code. */
#ifndef AUDITMW_AM_SHA256_H
#define AUDITMW_AM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define AM_SHA256_DIGEST 32
#define AM_SHA256_BLOCK 64

#ifdef AM_HAVE_OPENSSL
/* OpenSSL's SHA-256 (the code hashlib runs, with its SHA-NI / AVX2 paths): the low-level
 * API, deprecated in 3.0 but present, because its context is a plain struct that can be
 * copied, which is what the precomputed HMAC states need. */
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/sha.h>
typedef struct {
    SHA256_CTX c;
} am_sha256;
#define AM_SHA256_IMPL "openssl"
#else
/* The portable C implementation below (see am_sha256.c). */
typedef struct {
    uint32_t h[8];
    uint64_t bytes;              /* total bytes absorbed */
    uint8_t buf[AM_SHA256_BLOCK];
    size_t used;                 /* bytes waiting in buf, always < 64 */
} am_sha256;
#define AM_SHA256_IMPL "portable"
#endif

/* An HMAC key: the states after absorbing (key ^ ipad) and (key ^ opad). */
typedef struct {
    am_sha256 inner;
    am_sha256 outer;
} am_hmac_key;

void am_sha256_init(am_sha256 *ctx);
void am_sha256_update(am_sha256 *ctx, const uint8_t *data, size_t len);
void am_sha256_final(am_sha256 *ctx, uint8_t out[AM_SHA256_DIGEST]);

void am_hmac_key_init(am_hmac_key *key, const uint8_t *secret, size_t len);
/* HMAC over the concatenation part1 || part2 (either may be empty). */
void am_hmac2(const am_hmac_key *key, const uint8_t *part1, size_t len1,
              const uint8_t *part2, size_t len2, uint8_t out[AM_SHA256_DIGEST]);

/* Overwrite memory with zeros in a way the compiler may not elide. */
void am_wipe(void *p, size_t len);

#endif
