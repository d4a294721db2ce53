/*
 * asd_crc.h: CRC-32C (Castagnoli) and CRC-32 (IEEE, as zlib and gzip), the
 * checksums S3 accepts in x-amz-checksum-crc32c / -crc32.  Internal: the
 * client (plugin/aws) and the local endpoint use it; not installed.
 *
 * Both follow zlib's crc32() convention: start with crc = 0, feed the data
 * in any number of pieces, each call returning the running value.
 */
#ifndef ASD_CRC_H
#define ASD_CRC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t asd_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t asd_crc32(uint32_t crc, const void *data, size_t len);
/* The portable table implementations, whatever the build picked (tests
 * compare them with the hardware ones). */
uint32_t asd_crc32c_table(uint32_t crc, const void *data, size_t len);
uint32_t asd_crc32_table(uint32_t crc, const void *data, size_t len);
/* The big-endian bytes of a CRC in base64, as S3's headers carry it ("yZRlqg=="). */
void asd_crc_base64(uint32_t crc, char out[9]);
/* Which CRC-32C implementation runs: "sse4.2" (the CPU's crc32 instruction) or "table". */
const char *asd_crc_implementation(void);

#ifdef __cplusplus
}
#endif

#endif /* ASD_CRC_H */
