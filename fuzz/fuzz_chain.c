/* libFuzzer harness over the native core's plain-C functions (src/auditmw/_native/am_*.c).
 *
 * Each input is cut into the arguments of one chain step; the harness then checks
 *  - SHA-256 fed in pieces == SHA-256 of the concatenation (the block buffering);
 *  - HMAC with precomputed states == HMAC computed from its definition (RFC 2104);
 *  - am_find == a naive search, for both searches of the splice;
 *  - am_merkle_root over the body cut into 32-byte leaves == RFC 6962's recursive MTH;
 *  - am_splice_at == the rule of ChainEncoder._append, and the spliced line (written into
 *    a buffer of exactly the right size: AddressSanitizer sees one byte too many) is
 *    body[:at] + seal + body[at:], with the seal's hex matching the digests.
 * Any mismatch aborts; sanitizer reports abort too (run.sh builds with
 * -fno-sanitize-recover=all). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "am_chain.h"
#include "am_merkle.h"
#include "am_sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_chain: check failed: %s (line %d)\n", #cond, \
                    __LINE__);                                                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

#include "take.h"

static uint8_t *dup3(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, const uint8_t *c,
                     size_t nc, size_t *n) {
    uint8_t *out = malloc(na + nb + nc + 1);
    CHECK(out != NULL);
    if (na) memcpy(out, a, na);
    if (nb) memcpy(out + na, b, nb);
    if (nc) memcpy(out + na + nb, c, nc);
    *n = na + nb + nc;
    return out;
}

static void sha256_once(const uint8_t *data, size_t n, uint8_t out[32]) {
    am_sha256 ctx;
    am_sha256_init(&ctx);
    am_sha256_update(&ctx, data, n);
    am_sha256_final(&ctx, out);
}

/* HMAC-SHA256 from its definition, without precomputed states. */
static void hmac_slow(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen,
                      uint8_t out[32]) {
    uint8_t k[64], inner[32];
    uint8_t *buf;
    size_t n, i;
    memset(k, 0, sizeof k);
    if (klen > 64)
        sha256_once(key, klen, k);
    else if (klen)
        memcpy(k, key, klen);
    for (i = 0; i < 64; i++) k[i] ^= 0x36;
    buf = dup3(k, 64, msg, mlen, NULL, 0, &n);
    sha256_once(buf, n, inner);
    free(buf);
    for (i = 0; i < 64; i++) k[i] ^= 0x36 ^ 0x5c;
    buf = dup3(k, 64, inner, 32, NULL, 0, &n);
    sha256_once(buf, n, out);
    free(buf);
}

static ptrdiff_t find_slow(const uint8_t *h, size_t n, const uint8_t *m, size_t mn,
                           size_t start) {
    size_t i;
    if (start > n) return -1;
    for (i = start; i + mn <= n; i++)
        if (mn == 0 || memcmp(h + i, m, mn) == 0) return (ptrdiff_t)i;
    return -1;
}

/* RFC 6962 §2.1 MTH from its recursive definition: split at the largest power of two. */
static void mth_slow(const uint8_t *leaves, size_t n, uint8_t out[32]) {
    uint8_t buf[65];
    size_t k = 1;
    if (n == 0) {
        sha256_once((const uint8_t *)"", 0, out);
        return;
    }
    if (n == 1) {
        buf[0] = 0x00;
        memcpy(buf + 1, leaves, 32);
        sha256_once(buf, 33, out);
        return;
    }
    while (k * 2 < n) k *= 2;
    buf[0] = 0x01;
    mth_slow(leaves, k, buf + 1);
    mth_slow(leaves + k * 32, n - k, buf + 33);
    sha256_once(buf, 65, out);
}

static void check_hex(const char *hex, const uint8_t *raw) {
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < 32; i++) {
        CHECK(hex[2 * i] == digits[raw[i] >> 4]);
        CHECK(hex[2 * i + 1] == digits[raw[i] & 15]);
    }
}

/* FIPS 180-4 vectors, once per process: the checks below compare the implementation
 * with itself, so they need an anchor. */
static void check_vectors(void) {
    static int done;
    static const struct {
        const char *msg;
        size_t repeat;
        const char *hex;
    } vectors[] = {
        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    size_t v, i;
    if (done) return;
    done = 1;
    for (v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        am_sha256 ctx;
        uint8_t out[32];
        char hex[65];
        am_sha256_init(&ctx);
        for (i = 0; i < vectors[v].repeat; i++)
            am_sha256_update(&ctx, (const uint8_t *)vectors[v].msg, strlen(vectors[v].msg));
        am_sha256_final(&ctx, out);
        for (i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", out[i]);
        CHECK(strcmp(hex, vectors[v].hex) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *marker, *head, *key, *domain, *mac_domain, *body;
    size_t marker_len, head_len, key_len, domain_len, mac_domain_len, body_len, cut, at = 0;
    int has_mac, where;
    am_hmac_key hkey;
    am_seal seal;
    uint8_t *all, *heap_body, *line, want[32], piece[32];
    size_t all_len;
    ptrdiff_t found;

    check_vectors();
    if (size < 2) return 0;
    has_mac = data[0] & 1;
    cut = data[1];
    data += 2;
    size -= 2;
    marker = take(&data, &size, 120, &marker_len);
    head = take(&data, &size, 70, &head_len);
    key = take(&data, &size, 200, &key_len);
    domain = take(&data, &size, 70, &domain_len);
    mac_domain = take(&data, &size, 70, &mac_domain_len);
    /* the body on the heap, exactly sized, so that reading past it is caught */
    body_len = size;
    heap_body = malloc(body_len ? body_len : 1);
    CHECK(heap_body != NULL);
    if (body_len) memcpy(heap_body, data, body_len);
    body = heap_body;

    /* the digest and MAC of one chain step, against the definitions */
    if (has_mac) am_hmac_key_init(&hkey, key, key_len);
    am_chain_seal(domain, domain_len, head, head_len, body, body_len, has_mac ? &hkey : NULL,
                  mac_domain, mac_domain_len, &seal);
    all = dup3(domain, domain_len, head, head_len, body, body_len, &all_len);
    sha256_once(all, all_len, want);
    CHECK(memcmp(seal.digest, want, 32) == 0);
    check_hex(seal.hash_hex, seal.digest);
    { /* the same bytes fed in two pieces, cut anywhere */
        am_sha256 ctx;
        size_t c = all_len ? (cut * 7919u) % (all_len + 1) : 0;
        am_sha256_init(&ctx);
        am_sha256_update(&ctx, all, c);
        am_sha256_update(&ctx, all + c, all_len - c);
        am_sha256_final(&ctx, piece);
        CHECK(memcmp(piece, want, 32) == 0);
    }
    free(all);
    CHECK(seal.has_mac == has_mac);
    CHECK(seal.seal_len == (has_mac ? AM_SEAL_MAX : AM_SEAL_HASH_LEN));
    if (has_mac) {
        uint8_t mac[32], got[32];
        size_t n;
        uint8_t *msg = dup3(mac_domain, mac_domain_len, seal.digest, 32, NULL, 0, &n);
        hmac_slow(key, key_len, msg, n, mac);
        am_hmac2(&hkey, msg, n, NULL, 0, got);
        CHECK(memcmp(got, mac, 32) == 0);
        free(msg);
        check_hex(seal.mac_hex, mac);
        am_wipe(&hkey, sizeof hkey);
    }

    /* the searches, against a naive one */
    found = am_find(body, body_len, marker, marker_len, 0);
    CHECK(found == find_slow(body, body_len, marker, marker_len, 0));
    CHECK(am_find(body, body_len, marker, marker_len, cut) ==
          find_slow(body, body_len, marker, marker_len, cut));

    /* where the seal goes: the rule of ChainEncoder._append */
    where = am_splice_at(body, body_len, marker, marker_len, has_mac, &at);
    if (found < 0 ||
        find_slow(body, body_len, marker, marker_len, (size_t)found + 1) >= 0) {
        CHECK(where == AM_SPLICE_FALLBACK);
    } else {
        size_t after = (size_t)found + marker_len;
        if (has_mac) {
            size_t i = after;
            while (i < body_len && body[i] != ',') i++;
            if (i == body_len) {
                CHECK(where == AM_SPLICE_NO_COMMA);
            } else {
                CHECK(where == AM_SPLICE_AT && at == i + 1);
            }
        } else {
            CHECK(where == AM_SPLICE_AT && at == after);
        }
    }
    { /* the Merkle root of the body cut into leaves, in a buffer of exactly their size */
        size_t n = body_len / 32;
        uint8_t *nodes = malloc(n ? n * 32 : 1), root[32];
        CHECK(nodes != NULL);
        if (n) memcpy(nodes, body, n * 32);
        am_merkle_root(nodes, n, root);
        free(nodes);
        mth_slow(body, n, want);
        CHECK(memcmp(root, want, 32) == 0);
    }
    if (where == AM_SPLICE_AT) {
        CHECK(at <= body_len);
        line = malloc(body_len + seal.seal_len);
        CHECK(line != NULL);
        am_splice_write(line, body, body_len, at, &seal);
        CHECK(memcmp(line, body, at) == 0);
        CHECK(memcmp(line + at, "\"hash\":\"", 8) == 0);
        CHECK(memcmp(line + at + 8, seal.hash_hex, 64) == 0);
        CHECK(memcmp(line + at, seal.seal, seal.seal_len) == 0);
        CHECK(memcmp(line + at + seal.seal_len, body + at, body_len - at) == 0);
        free(line);
    }
    free(heap_body);
    return 0;
}
