/* A stand-in for libFuzzer's main where clang is missing (gcc -fsanitize=address,undefined):
 * runs every file of the corpus directories given, then random inputs (random lengths,
 * random bytes, and mutations of the corpus) until the time is up.
 *
 *   driver [-max_total_time=SECONDS] [-seed=N] DIR...   */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 4096
#define MAX_SEEDS 256

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static size_t n_seeds;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static void run_dir(const char *path) {
    DIR *dir = opendir(path);
    struct dirent *entry;
    if (dir == NULL) {
        perror(path);
        exit(2);
    }
    while ((entry = readdir(dir)) != NULL) {
        char name[4096];
        FILE *f;
        uint8_t *buf;
        size_t n;
        if (entry->d_name[0] == '.') continue;
        snprintf(name, sizeof name, "%s/%s", path, entry->d_name);
        f = fopen(name, "rb");
        if (f == NULL) continue;
        buf = malloc(MAX_INPUT);
        if (buf == NULL) exit(2);
        n = fread(buf, 1, MAX_INPUT, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        if (n_seeds < MAX_SEEDS) {
            seeds[n_seeds] = buf;
            seed_len[n_seeds++] = n;
        } else {
            free(buf);
        }
    }
    closedir(dir);
}

int main(int argc, char **argv) {
    long seconds = 30;
    unsigned long runs = 0;
    time_t end;
    int i;
    uint8_t *buf = malloc(MAX_INPUT);
    if (buf == NULL) return 2;
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-max_total_time=", 16) == 0)
            seconds = atol(argv[i] + 16);
        else if (strncmp(argv[i], "-seed=", 6) == 0)
            rng_state = strtoull(argv[i] + 6, NULL, 10) | 1u;
        else if (argv[i][0] != '-')
            run_dir(argv[i]);
    }
    end = time(NULL) + seconds;
    while (time(NULL) < end) {
        int k;
        for (k = 0; k < 1000; k++) {
            size_t n, j;
            if (n_seeds > 0 && rnd() % 2) { /* mutate a seed */
                size_t s = (size_t)(rnd() % n_seeds);
                n = seed_len[s];
                memcpy(buf, seeds[s], n);
                for (j = rnd() % 8; j > 0 && n > 0; j--) buf[rnd() % n] = (uint8_t)rnd();
                if (rnd() % 4 == 0 && n < MAX_INPUT) { /* grow it with random bytes */
                    size_t grown = n + (size_t)(rnd() % (MAX_INPUT - n + 1));
                    for (j = n; j < grown; j++) buf[j] = (uint8_t)rnd();
                    n = grown;
                }
            } else {
                n = (size_t)(rnd() % (rnd() % 2 ? 300 : MAX_INPUT));
                for (j = 0; j < n; j++) buf[j] = (uint8_t)rnd();
            }
            LLVMFuzzerTestOneInput(buf, n);
            runs++;
        }
    }
    printf("driver: %lu random inputs, %zu corpus files, no finding\n", runs, n_seeds);
    free(buf);
    while (n_seeds > 0) free(seeds[--n_seeds]);
    return 0;
}
