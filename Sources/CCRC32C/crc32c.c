#include "crc32c.h"
#include <string.h>

// Table-driven fallback (slicing by 1 is enough for a fallback).
static uint32_t table[256];
static int table_ready = 0;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
    table_ready = 1;
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t n) {
    if (!table_ready) build_table();
    crc = ~crc;
    while (n--) crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = (uint32_t)~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t learnstore_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    static int has_sse42 = -1;
    if (has_sse42 < 0) {
        __builtin_cpu_init();
        has_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (has_sse42) return crc32c_hw(crc, (const uint8_t *)data, length);
#endif
    return crc32c_table(crc, (const uint8_t *)data, length);
}
