/*
 * asd_vsis3.h: make GDAL read a /vsis3/ input through the same S3 endpoint,
 * region and credentials as the tool (plugin/aws/vsis3.c explains why and
 * when the user's own GDAL settings win).
 */
#ifndef ASD_VSIS3_H
#define ASD_VSIS3_H

#include <stddef.h>

#include "asyncdetect/asd_export.h"
#include "asyncdetect/asd_aws.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if path is a /vsis3/ or /vsis3_streaming/ path with a bucket. */
ASD_API int asd_vsis3_is_s3_path(const char *path);

/* For a /vsis3/ or /vsis3_streaming/ path: sets GDAL path-specific options
 * for its bucket (both handlers) from ctx: the custom S3 endpoint
 * (AWS_S3_ENDPOINT, AWS_HTTPS, AWS_VIRTUAL_HOSTING), AWS_REGION and the
 * current credentials, except where the user configured GDAL explicitly.
 * Any other path: nothing.  info (may be NULL) receives one line saying what
 * was set (no secret).  Returns 0, or -1 with err set (credentials that
 * cannot be resolved, an endpoint GDAL cannot use). */
ASD_API int asd_vsis3_configure(const char *path, asd_aws_context *ctx, char *info, size_t info_size,
                        asd_aws_error *err);

/* Hands GDAL ctx's current credentials for every bucket whose credentials
 * asd_vsis3_configure set, where they changed (temporary credentials the
 * context renewed).  GDAL copies them into a file handle when it opens it:
 * handles opened before a change keep the old ones, so a caller holding
 * handles open reopens them when this returns > 0.  Returns the number of
 * buckets updated, or -1 with err (credentials that cannot be resolved). */
ASD_API int asd_vsis3_refresh(asd_aws_context *ctx, asd_aws_error *err);

#ifdef __cplusplus
}
#endif

#endif /* ASD_VSIS3_H */
