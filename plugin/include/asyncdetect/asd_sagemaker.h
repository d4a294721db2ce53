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

#include "asd_export.h"

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
  const char *s3_output_path_extension; /* X-Amzn-SageMaker-S3OutputPathExtension, or NULL:
                                           1-512 of [a-zA-Z0-9!_.*'()/-], not s3: / https: */
  const char *filename;           /* X-Amzn-SageMaker-Filename, or NULL: 1-32 of
                                     [a-zA-Z0-9-_.], alphanumeric first, at most one '.' */
} asd_sm_invoke_async_params;

typedef struct asd_sm_invoke_async_result {
  char inference_id[128];
  char *output_location;   /* malloc'ed, from X-Amzn-SageMaker-OutputLocation */
  char *failure_location;  /* malloc'ed, from X-Amzn-SageMaker-FailureLocation, may be NULL */
  char request_id[128];
} asd_sm_invoke_async_result;

ASD_API void asd_sm_invoke_async_result_free(asd_sm_invoke_async_result *r);

/* Validates the parameters (CONFIG/VALIDATION errors name the bad field)
 * and calls InvokeEndpointAsync.  Returns 0 or -1 with err set. */
ASD_API int asd_sm_invoke_async(asd_aws_context *ctx, const asd_sm_invoke_async_params *p,
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

ASD_API void asd_sm_invoke_result_init(asd_sm_invoke_result *r);
ASD_API void asd_sm_invoke_result_free(asd_sm_invoke_result *r);

/* Synchronous InvokeEndpoint.  A model failure (424 ModelError) gives
 * kind ASD_AWS_ERR_MODEL. */
ASD_API int asd_sm_invoke(asd_aws_context *ctx, const asd_sm_invoke_params *p,
                  asd_sm_invoke_result *out, asd_aws_error *err);

/* What the control plane says about an endpoint (sagemaker_api.c). */
typedef struct asd_sm_endpoint_info {
  char status[32];          /* EndpointStatus: "InService", "Creating", "Failed"... */
  char config_name[64];     /* EndpointConfigName */
  char failure_reason[512]; /* FailureReason, when Failed */
  int config_unknown;       /* 1: DescribeEndpointConfig failed (err says why); fields below unset */
  int is_async;             /* the configuration has an AsyncInferenceConfig */
  char output_path[600];    /* its S3OutputPath, "" if none */
  char failure_path[600];   /* its S3FailurePath, "" if none */
} asd_sm_endpoint_info;

/*
 * DescribeEndpoint, then DescribeEndpointConfig of its configuration, at the
 * SageMaker API (AWS_ENDPOINT_URL_SAGEMAKER, AWS_ENDPOINT_URL, a custom
 * runtime endpoint, else api.sagemaker.<region>).  Returns 0 (with
 * config_unknown = 1 and err set when only the second call failed), or -1
 * with err (kind ASD_AWS_ERR_ACCESS_DENIED for AccessDeniedException,
 * ASD_AWS_ERR_VALIDATION with "Could not find endpoint" for an unknown one).
 */
ASD_API int asd_sm_describe_endpoint(asd_aws_context *ctx, const char *name, asd_sm_endpoint_info *out,
                             asd_aws_error *err);

/* Whether an endpoint name follows SageMaker's rules. */
ASD_API int asd_sm_endpoint_name_valid(const char *name);

/* Whether a value satisfies SageMaker's constraints on S3OutputPathExtension
 * (1-512, ^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$) and on Filename (1-32,
 * ^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$). */
ASD_API int asd_sm_output_path_extension_valid(const char *ext);
ASD_API int asd_sm_filename_valid(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* ASD_SAGEMAKER_H */
