/* RFC 6962 §2.1 Merkle tree hash: a leaf is SHA-256(0x00 || leaf), an inner node
 * SHA-256(0x01 || left || right).  Pairing bottom-up and promoting an odd last node gives
 * exactly the RFC's tree (its left subtree is always the largest power of two), as the
 * Python reference does. */
#include "am_merkle.h"

#include <string.h>

#include "am_sha256.h"

static const uint8_t LEAF_PREFIX = 0x00;
static const uint8_t NODE_PREFIX = 0x01;

void am_merkle_root(uint8_t *nodes, size_t n, uint8_t out[AM_MERKLE_LEAF]) {
    am_sha256 ctx;
    size_t i, half;
    if (n == 0) {
        am_sha256_init(&ctx);
        am_sha256_final(&ctx, out);
        return;
    }
    for (i = 0; i < n; i++) { /* the leaf hashes, in place */
        uint8_t *leaf = nodes + i * AM_MERKLE_LEAF;
        am_sha256_init(&ctx);
        am_sha256_update(&ctx, &LEAF_PREFIX, 1);
        am_sha256_update(&ctx, leaf, AM_MERKLE_LEAF);
        am_sha256_final(&ctx, leaf);
    }
    while (n > 1) { /* one level up: node i/2 from nodes i and i+1, written behind them */
        half = 0;
        for (i = 0; i + 1 < n; i += 2) {
            uint8_t digest[AM_MERKLE_LEAF];
            am_sha256_init(&ctx);
            am_sha256_update(&ctx, &NODE_PREFIX, 1);
            am_sha256_update(&ctx, nodes + i * AM_MERKLE_LEAF, 2 * AM_MERKLE_LEAF);
            am_sha256_final(&ctx, digest);
            memcpy(nodes + half * AM_MERKLE_LEAF, digest, AM_MERKLE_LEAF);
            half++;
        }
        if (n % 2) { /* an odd last node is promoted unchanged */
            memmove(nodes + half * AM_MERKLE_LEAF, nodes + (n - 1) * AM_MERKLE_LEAF,
                    AM_MERKLE_LEAF);
            half++;
        }
        n = half;
    }
    memcpy(out, nodes, AM_MERKLE_LEAF);
}
