/*
 * asd_sagemaker.h: the SageMaker Runtime client (InvokeEndpointAsync and the
 * synchronous InvokeEndpoint).
 *
 * Requests are signed with the signing name "sagemaker" against
 * runtime.sagemaker.<region>.amazonaws.com (or the configured endpoint).
 * InvokeEndpointAsync returns the output and failure locations in response
 * *headers*; they may name any bucket, and callers must poll exactly those.
 */
#ifndef ASD_SAGEMAKER_H
#define ASD_SAGEMAKER_H

#include <stddef.h>

#include "asyncdetect/asd_aws.h"
#include "asyncdetect/asd_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_sm_invoke_async_params {
  const char *endpoint_name;      /* required, <= 63 chars, [a-zA-Z0-9](-*[a-zA-Z0-9])* */
  const char *input_location;     /* required, "s3://bucket/key" (<= 1024 chars) */
  const char *content_type;       /* X-Amzn-SageMaker-Content-Type, or NULL */
  const char *accept;             /* X-Amzn-SageMaker-Accept, or NULL */
  const char *custom_attributes;  /* X-Amzn-SageMaker-Custom-Attributes, or NULL */
  const char *inference_id;       /* X-Amzn-SageMaker-Inference-Id (1-64 printable), or NULL */
  int request_ttl_seconds;        /* 0 = omit (service default 21600); else 60-21600 */
  int invocation_timeout_seconds; /* 0 = omit (service default 900); else 1-3600 */
} asd_sm_invoke_async_params;

typedef struct asd_sm_invoke_async_result {
  char inference_id[128];
  char *output_location;   /* malloc'ed, from X-Amzn-SageMaker-OutputLocation */
  char *failure_location;  /* malloc'ed, from X-Amzn-SageMaker-FailureLocation, may be NULL */
  char request_id[128];
} asd_sm_invoke_async_result;

void asd_sm_invoke_async_result_free(asd_sm_invoke_async_result *r);

/* Validates the parameters (CONFIG/VALIDATION errors name the bad field)
 * and calls InvokeEndpointAsync.  Returns 0 or -1 with err set. */
int asd_sm_invoke_async(asd_aws_context *ctx, const asd_sm_invoke_async_params *p,
                        asd_sm_invoke_async_result *out, asd_aws_error *err);

typedef struct asd_sm_invoke_params {
  const char *endpoint_name;
  const void *body;
  size_t body_len;                /* <= 6 MB */
  const char *content_type;       /* Content-Type, or NULL */
  const char *accept;             /* Accept, or NULL */
  const char *custom_attributes;  /* X-Amzn-SageMaker-Custom-Attributes, or NULL */
  const char *inference_id;       /* X-Amzn-SageMaker-Inference-Id, or NULL */
  size_t max_response_bytes;      /* 0 = context default */
} asd_sm_invoke_params;

typedef struct asd_sm_invoke_result {
  asd_buf body;
  char content_type[128];
  char invoked_variant[128];      /* x-Amzn-Invoked-Production-Variant */
  char request_id[128];
} asd_sm_invoke_result;

void asd_sm_invoke_result_init(asd_sm_invoke_result *r);
void asd_sm_invoke_result_free(asd_sm_invoke_result *r);

/* Synchronous InvokeEndpoint.  A model failure (424 ModelError) gives
 * kind ASD_AWS_ERR_MODEL. */
int asd_sm_invoke(asd_aws_context *ctx, const asd_sm_invoke_params *p,
                  asd_sm_invoke_result *out, asd_aws_error *err);

/* Whether an endpoint name follows SageMaker's rules. */
int asd_sm_endpoint_name_valid(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* ASD_SAGEMAKER_H */
