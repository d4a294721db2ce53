/*
 * asd_preflight.h: what is checked before a run uploads anything, and the
 * deletion scope that follows from it.
 *
 *   asd_preflight_endpoint   DescribeEndpoint + DescribeEndpointConfig:
 *                            unknown endpoint, not InService or not
 *                            asynchronous are errors; AccessDenied (or no
 *                            control plane at all) is only a warning,
 *                            since sagemaker:Describe* is optional;
 *   asd_preflight_bucket     HeadBucket (authorised by s3:ListBucket) on a
 *                            bucket the run writes to or polls, each error
 *                            naming its cause and the grant that fixes it;
 *   asd_preflight_buckets    every bucket of a run: the input bucket, the
 *                            configured output bucket, and the endpoint's
 *                            output and failure buckets once learnt;
 *   asd_preflight_scopes     the deletion scope of the resource registry:
 *                            input bucket+prefix, output bucket+prefix, and
 *                            the endpoint's own paths once learnt.
 * Every message is one line, for the utility's "exit 1 prints one line".
 */
#ifndef ASD_PREFLIGHT_H
#define ASD_PREFLIGHT_H

#include "asd_export.h"

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_errors.h"
#include "asyncdetect/asd_resources.h"
#include "asyncdetect/asd_sagemaker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_preflight {
  int described;        /* 1: the control plane answered; info is filled */
  asd_sm_endpoint_info info;
  char warning[1024];   /* "" or one line to show as a warning (not an error) */
} asd_preflight;

/* 0 (maybe with pf->warning), or -1 with err (code ASD_ERR_ENDPOINT). */
ASD_API int asd_preflight_endpoint(asd_aws_context *ctx, const char *endpoint, asd_preflight *pf, asd_error *err);

/* 0, or -1 with err (code ASD_ERR_S3) naming role ("input", "output"...),
   the bucket, the cause and, for 403, the missing s3:ListBucket grant. */
ASD_API int asd_preflight_bucket(asd_aws_context *ctx, const char *role, const char *bucket, asd_error *err);

/* Checks every bucket of the run, each once; pf may be NULL.  0 or -1 with err. */
ASD_API int asd_preflight_buckets(asd_aws_context *ctx, const asd_async_config *cfg, const asd_preflight *pf,
                          asd_error *err);

/* Sets the deletion scopes of r from cfg and, when described, the endpoint's paths. */
ASD_API void asd_preflight_scopes(asd_resources *r, const asd_async_config *cfg, const asd_preflight *pf);

/* The one-line explanation of a 403 on a result not yet written, for the poller:
   "S3 answers 403 instead of 404 for an object that does not exist yet when
   s3:ListBucket on arn:aws:s3:::BUCKET is missing". */
ASD_API void asd_preflight_listbucket_hint(const char *bucket, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif /* ASD_PREFLIGHT_H */
