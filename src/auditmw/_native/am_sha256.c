/* SHA-256 per FIPS 180-4, HMAC per RFC 2104; see am_sha256.h. */
#include "am_sha256.h"

#include <string.h>

#ifdef AM_HAVE_OPENSSL

void am_sha256_init(am_sha256 *ctx) { SHA256_Init(&ctx->c); }

void am_sha256_update(am_sha256 *ctx, const uint8_t *data, size_t len) {
    if (len > 0) SHA256_Update(&ctx->c, data, len); /* data may be NULL when len is 0 */
}

void am_sha256_final(am_sha256 *ctx, uint8_t out[AM_SHA256_DIGEST]) {
    SHA256_Final(out, &ctx->c);
}

#else

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u,
    0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u,
    0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au,
    0x5b9cca4fu, 0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void compress(uint32_t h[8], const uint8_t block[AM_SHA256_BLOCK]) {
    uint32_t w[64];
    uint32_t a, b, c, d, e, f, g, hh;
    unsigned i;
    for (i = 0; i < 16; i++) w[i] = load_be32(block + 4 * i);
    for (i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K[i] + w[i];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void am_sha256_init(am_sha256 *ctx) {
    static const uint32_t IV[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(ctx->h, IV, sizeof IV);
    ctx->bytes = 0;
    ctx->used = 0;
}

void am_sha256_update(am_sha256 *ctx, const uint8_t *data, size_t len) {
    if (len == 0) return; /* data may be NULL then */
    ctx->bytes += (uint64_t)len;
    if (ctx->used > 0) {
        size_t take = AM_SHA256_BLOCK - ctx->used;
        if (take > len) take = len;
        memcpy(ctx->buf + ctx->used, data, take);
        ctx->used += take;
        data += take;
        len -= take;
        if (ctx->used < AM_SHA256_BLOCK) return;
        compress(ctx->h, ctx->buf);
        ctx->used = 0;
    }
    while (len >= AM_SHA256_BLOCK) {
        compress(ctx->h, data);
        data += AM_SHA256_BLOCK;
        len -= AM_SHA256_BLOCK;
    }
    if (len > 0) {
        memcpy(ctx->buf, data, len);
        ctx->used = len;
    }
}

void am_sha256_final(am_sha256 *ctx, uint8_t out[AM_SHA256_DIGEST]) {
    uint64_t bits = ctx->bytes * 8u; /* unsigned: wraps mod 2^64 as FIPS 180-4 wants */
    unsigned i;
    ctx->buf[ctx->used++] = 0x80;
    if (ctx->used > AM_SHA256_BLOCK - 8) {
        memset(ctx->buf + ctx->used, 0, AM_SHA256_BLOCK - ctx->used);
        compress(ctx->h, ctx->buf);
        ctx->used = 0;
    }
    memset(ctx->buf + ctx->used, 0, AM_SHA256_BLOCK - 8 - ctx->used);
    store_be32(ctx->buf + 56, (uint32_t)(bits >> 32));
    store_be32(ctx->buf + 60, (uint32_t)bits);
    compress(ctx->h, ctx->buf);
    for (i = 0; i < 8; i++) store_be32(out + 4 * i, ctx->h[i]);
}

#endif /* AM_HAVE_OPENSSL */

void am_hmac_key_init(am_hmac_key *key, const uint8_t *secret, size_t len) {
    uint8_t block[AM_SHA256_BLOCK];
    unsigned i;
    memset(block, 0, sizeof block);
    if (len > AM_SHA256_BLOCK) {
        am_sha256 ctx;
        am_sha256_init(&ctx);
        am_sha256_update(&ctx, secret, len);
        am_sha256_final(&ctx, block);
        am_wipe(&ctx, sizeof ctx);
    } else if (len > 0) {
        memcpy(block, secret, len);
    }
    for (i = 0; i < AM_SHA256_BLOCK; i++) block[i] ^= 0x36;
    am_sha256_init(&key->inner);
    am_sha256_update(&key->inner, block, sizeof block);
    for (i = 0; i < AM_SHA256_BLOCK; i++) block[i] ^= 0x36 ^ 0x5c;
    am_sha256_init(&key->outer);
    am_sha256_update(&key->outer, block, sizeof block);
    am_wipe(block, sizeof block);
}

void am_hmac2(const am_hmac_key *key, const uint8_t *part1, size_t len1,
              const uint8_t *part2, size_t len2, uint8_t out[AM_SHA256_DIGEST]) {
    am_sha256 ctx = key->inner;
    uint8_t inner[AM_SHA256_DIGEST];
    am_sha256_update(&ctx, part1, len1);
    am_sha256_update(&ctx, part2, len2);
    am_sha256_final(&ctx, inner);
    ctx = key->outer;
    am_sha256_update(&ctx, inner, sizeof inner);
    am_sha256_final(&ctx, out);
    am_wipe(inner, sizeof inner);
    am_wipe(&ctx, sizeof ctx); /* it held a key-derived state */
}

void am_wipe(void *p, size_t len) {
#if defined(__GNUC__) || defined(__clang__)
    memset(p, 0, len);
    __asm__ __volatile__("" : : "r"(p) : "memory"); /* the stores may not be elided */
#else
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (len--) *v++ = 0;
#endif
}
