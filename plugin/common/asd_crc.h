/*
 * asd_crc.h: internals of the CRC implementations (crc.c) beside the public
 * asyncdetect/asd_checksum.h: the portable table versions and which
 * implementation runs, for tests and benchmarks.  Not installed.
 */
#ifndef ASD_CRC_H
#define ASD_CRC_H

#include "asyncdetect/asd_checksum.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The portable table implementations, whatever the CPU offers (tests
 * compare them with the hardware one). */
uint32_t asd_crc32c_table(uint32_t crc, const void *data, size_t len);
uint32_t asd_crc32_table(uint32_t crc, const void *data, size_t len);
/* Which CRC-32C implementation runs: "sse4.2" (the CPU's crc32 instruction) or "table". */
const char *asd_crc_implementation(void);

#ifdef __cplusplus
}
#endif

#endif /* ASD_CRC_H */
