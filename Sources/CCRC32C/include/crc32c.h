#ifndef LEARNSTORE_CRC32C_H
#define LEARNSTORE_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli), as used by iSCSI, ext4 and RocksDB. `crc` is the running value (0 to start).
/// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
uint32_t learnstore_crc32c(uint32_t crc, const void *data, size_t length);

#endif
