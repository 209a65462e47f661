/*
 * crc32.c - CRC-32 as in IEEE 802.3 and zlib (reflected polynomial
 * 0xEDB88320), the checksum Qubes puts in result_header.
 *
 * Table driven, "slicing by 16": sixteen 256-entry tables let the loop
 * consume 16 bytes per step with independent lookups instead of one
 * dependent lookup per byte. That keeps the checksum well above the speed
 * of the copy itself (the byte-at-a-time loop would be the bottleneck of
 * a 1 GiB transfer).
 */
#include "filecopy_internal.h"

#include <string.h>

static uint32_t table[16][256];
static int table_ready;

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        table[0][i] = c;
    }
    /* table[k][i]: the CRC of byte i followed by k zero bytes. */
    for (int k = 1; k < 16; k++)
        for (int i = 0; i < 256; i++) table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xff];
    table_ready = 1;
}

static inline uint32_t load_le32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

uint32_t fc_crc32(uint32_t crc, const void *data, size_t size) {
    if (!table_ready) build_tables();
    const unsigned char *p = data;
    crc = ~crc;
    while (size >= 16) {
        uint32_t a = load_le32(p) ^ crc, b = load_le32(p + 4), c = load_le32(p + 8), d = load_le32(p + 12);
        crc = table[15][a & 0xff] ^ table[14][(a >> 8) & 0xff] ^ table[13][(a >> 16) & 0xff] ^ table[12][a >> 24] ^
              table[11][b & 0xff] ^ table[10][(b >> 8) & 0xff] ^ table[9][(b >> 16) & 0xff] ^ table[8][b >> 24] ^
              table[7][c & 0xff] ^ table[6][(c >> 8) & 0xff] ^ table[5][(c >> 16) & 0xff] ^ table[4][c >> 24] ^
              table[3][d & 0xff] ^ table[2][(d >> 8) & 0xff] ^ table[1][(d >> 16) & 0xff] ^ table[0][d >> 24];
        p += 16;
        size -= 16;
    }
    while (size-- > 0) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}
