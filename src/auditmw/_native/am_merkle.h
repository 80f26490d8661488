/* RFC 6962 Merkle tree hash over 32-byte leaves (the event hashes of a checkpoint range).
 *
 * Plain C99, no Python, no allocation: the extension module and the fuzz harness compile
 * this same file.  The Python reference is auditmw.integrity.merkle.merkle_root. */
#ifndef AUDITMW_AM_MERKLE_H
#define AUDITMW_AM_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define AM_MERKLE_LEAF 32

/* The tree hash of the n leaves stored back to back in nodes (n * 32 bytes), into out.
 * nodes is overwritten (it holds each level in turn).  n == 0 gives SHA-256(""). */
void am_merkle_root(uint8_t *nodes, size_t n, uint8_t out[AM_MERKLE_LEAF]);

#endif
