/*
 * asd_checksum.h: the checksums of S3's flexible integrity headers
 * (x-amz-checksum-crc32c, x-amz-checksum-crc32), as the client computes them
 * for its uploads and the local endpoint verifies them.
 *
 * Both follow zlib's crc32() convention: start with crc = 0 and feed the
 * data in any number of pieces, each call returning the running value.
 * CRC-32C runs on the CPU's crc32 instruction where it has one (x86-64
 * SSE4.2, chosen at run time), else on a portable table.
 */
#ifndef ASD_CHECKSUM_H
#define ASD_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "asyncdetect/asd_export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32C (Castagnoli, iSCSI): CRC-32C("123456789") = 0xE3069283. */
ASD_API uint32_t asd_crc32c(uint32_t crc, const void *data, size_t len);
/* CRC-32 (IEEE 802.3, as zlib and gzip): CRC-32("123456789") = 0xCBF43926. */
ASD_API uint32_t asd_crc32(uint32_t crc, const void *data, size_t len);
/* The big-endian bytes of a CRC in base64, as S3's headers carry it ("4waSgw=="); out holds 9 bytes. */
ASD_API void asd_crc_base64(uint32_t crc, char out[9]);

#ifdef __cplusplus
}
#endif

#endif /* ASD_CHECKSUM_H */
