/*
 * asd_detector.h: AsyncSMDetector, one SageMaker asynchronous endpoint seen
 * as a function from a payload to a GeoJSON FeatureCollection.
 *
 *   asd_detector *d = asd_detector_new("ship-detector", &cfg, NULL, &err);
 *   json_object *fc = asd_detector_find_features(d, bytes, n, metrics, &err);
 *   ...
 *   asd_detector_free(d);   applies the cleanup policy to what it created
 *
 * find_features() uploads the payload under input_prefix in input_bucket,
 * calls InvokeEndpointAsync, then polls the OutputLocation and the
 * FailureLocation the invocation returned (which may be in any bucket) on
 * the configuration's backoff schedule, with jitter, until one exists or
 * max_wait_time has passed.  It returns the parsed FeatureCollection or NULL
 * with a typed error: ASD_ERR_S3, ASD_ERR_ENDPOINT, ASD_ERR_INFERENCE (the
 * failure object's content in the message), ASD_ERR_TIMEOUT,
 * ASD_ERR_BAD_RESULT, ASD_ERR_RUNTIME.
 *
 * The detector is thread-safe: many threads may call find_features() at
 * once, and the worker pool (asd_pool.h) drives it from its own threads.
 */
#ifndef ASD_DETECTOR_H
#define ASD_DETECTOR_H

#include "asd_export.h"

#include <stddef.h>

#include "asd_config.h"
#include "asd_errors.h"
#include "asd_metrics.h"
#include "asd_resources.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;
struct asd_aws_context;

/*
 * Where and as whom to talk to AWS.  Every field is optional (NULL or
 * empty): the standard AWS chain applies (AWS_ENDPOINT_URL*, AWS_REGION,
 * AWS_PROFILE, environment credentials, ...).  access_key_id +
 * secret_access_key (+ session_token) are the seed's assumed_credentials.
 */
typedef struct asd_detector_aws {
  const char *region;
  const char *profile;
  const char *endpoint_url; /* overrides AWS_ENDPOINT_URL for S3 and SageMaker Runtime */
  const char *access_key_id;
  const char *secret_access_key;
  const char *session_token;
  const char *role_arn;     /* assume this role first (STS AssumeRole), if supported */
  const char *external_id;
} asd_detector_aws;

typedef struct asd_detector asd_detector;

/*
 * Creates a detector for endpoint_name.  cfg is validated and copied.  aws
 * may be NULL.  Returns NULL with err set (ASD_ERR_CONFIG for a bad
 * configuration or endpoint name, ASD_ERR_RUNTIME for AWS setup failures such
 * as missing credentials).  Does not contact AWS (see validate_buckets).
 */
ASD_API asd_detector *asd_detector_new(const char *endpoint_name, const asd_async_config *cfg,
                               const asd_detector_aws *aws, asd_error *err);

/*
 * The same over an existing AWS context (asd_aws.h), which the detector
 * borrows: it must outlive the detector.  Use this when the caller already
 * resolved region, profile, role and endpoints.
 */
ASD_API asd_detector *asd_detector_new_with_context(const char *endpoint_name, const asd_async_config *cfg,
                                            struct asd_aws_context *aws_ctx, asd_error *err);

/* The AWS context the detector uses (owned or borrowed). */
ASD_API struct asd_aws_context *asd_detector_aws_context(asd_detector *d);

/*
 * Applies the cleanup policy to everything the detector created and is not
 * retained (immediate and delayed: delete now; disabled: keep and log how
 * many objects were kept), then frees it.  Cleanup failures are logged with
 * CPLError(CE_Warning), never fatal.
 */
ASD_API void asd_detector_free(asd_detector *d);

/* The detector's copy of its configuration and endpoint name. */
ASD_API const asd_async_config *asd_detector_config(const asd_detector *d);
ASD_API const char *asd_detector_endpoint(const asd_detector *d);

/*
 * HeadBucket on the input bucket (and the output bucket when set).  Returns
 * 0, or -1 with ASD_ERR_S3 and a message naming the bucket and the cause
 * ("input bucket 'b': access denied (HTTP 403)").
 */
ASD_API int asd_detector_validate_buckets(asd_detector *d, asd_error *err);

/*
 * The whole round trip for one payload (see the top of this file).  metrics
 * may be NULL.  Returns a new json-c object (json_object_put() it) or NULL
 * with err set.  Retryable errors of the upload and the invocation are
 * retried up to max_retries times with exponential backoff and jitter.
 */
ASD_API struct json_object *asd_detector_find_features(asd_detector *d, const void *payload, size_t len,
                                               asd_metrics *metrics, asd_error *err);

/* Resource statistics (the seed's get_resource_stats). */
ASD_API void asd_detector_get_resource_stats(asd_detector *d, asd_resource_stats *out);
/* The same as JSON text (malloc'd; free()). */
ASD_API char *asd_detector_resource_stats_json(asd_detector *d);

/*
 * Deletes what the cleanup policy says is due now; with force, every object
 * the detector created that is still registered, whether its job finished or
 * not (the seed's cleanup_resources(force=True)).  Returns the number deleted.
 */
ASD_API long long asd_detector_cleanup_resources(asd_detector *d, int force);

/*
 * The endpoint configuration's AsyncInferenceConfig.OutputConfig
 * (S3OutputPath, S3FailurePath; NULL or "" = none), as a preflight read it
 * (asd_preflight_endpoint): where a lost invocation's result is looked for
 * until an invocation's answer shows the paths.  Call before creating a pool.
 */
ASD_API void asd_detector_set_output_config(asd_detector *d, const char *s3_output_path,
                                            const char *s3_failure_path);

/* The detector's resource registry (shared with the pool). */
ASD_API asd_resources *asd_detector_resources(asd_detector *d);

#ifdef __cplusplus
}
#endif

#endif /* ASD_DETECTOR_H */
