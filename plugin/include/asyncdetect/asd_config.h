/*
 * asd_config.h: the configuration of the async inference engine, the C form
 * of the seed's AsyncEndpointConfig.
 *
 * The structure is plain data (fixed-size strings, no pointers) so that it
 * can be copied by assignment and kept by value by the detector and the pool.
 * The usual life of a configuration:
 *
 *   asd_async_config cfg;
 *   char err[256];
 *   asd_config_init(&cfg);                       seed defaults
 *   asd_config_load_env(&cfg, err, sizeof err);  ASYNC_SM_* keys (--config, environment)
 *   cfg.polling_interval = 0.5;                  code, or by name:
 *   asd_config_set(&cfg, "max_concurrent_jobs", "64", err, sizeof err);
 *   if (asd_config_validate(&cfg, err, sizeof err) != 0) fail(err);
 *
 * Every duration is a double in seconds, so that tests and benchmarks can use
 * fractions (0.05 s) while users keep writing whole seconds.
 *
 * Fields the seed has, with the seed's defaults and environment variables:
 *   input_bucket                    ""          ASYNC_SM_INPUT_BUCKET (required)
 *   output_bucket                   ""          ASYNC_SM_OUTPUT_BUCKET (optional: results are
 *                                               read where each invocation says they are)
 *   input_prefix     "async-inference/input/"   ASYNC_SM_INPUT_PREFIX
 *   output_prefix    "async-inference/output/"  ASYNC_SM_OUTPUT_PREFIX
 *   max_wait_time                   3600        ASYNC_SM_MAX_WAIT_TIME
 *   polling_interval                30          ASYNC_SM_POLLING_INTERVAL
 *   max_polling_interval            300         ASYNC_SM_MAX_POLLING_INTERVAL
 *   exponential_backoff_multiplier  1.5         ASYNC_SM_BACKOFF_MULTIPLIER
 *   max_retries                     3           ASYNC_SM_MAX_RETRIES
 *   cleanup_enabled                 true        ASYNC_SM_CLEANUP_ENABLED
 *   cleanup_policy                  immediate   ASYNC_SM_CLEANUP_POLICY
 *   cleanup_delay_seconds           300         ASYNC_SM_CLEANUP_DELAY_SECONDS
 *   enable_worker_optimization      true        ASYNC_SM_WORKER_OPTIMIZATION
 *   submission_workers              4           ASYNC_SM_SUBMISSION_WORKERS
 *   polling_workers                 2           ASYNC_SM_POLLING_WORKERS
 *   max_concurrent_jobs             100         ASYNC_SM_MAX_CONCURRENT_JOBS
 *   job_queue_timeout               300         ASYNC_SM_JOB_QUEUE_TIMEOUT
 * Additions of this implementation (not in the seed):
 *   polling_jitter                  0.1         ASYNC_SM_POLLING_JITTER (fraction, 0..0.5)
 *   adaptive_polling                true        ASYNC_SM_ADAPTIVE_POLLING (poll around the
 *                                               learnt result time, bounded by the schedule)
 *   content_type   "application/octet-stream"   ASYNC_SM_CONTENT_TYPE
 *   accept                          ""          ASYNC_SM_ACCEPT (not sent when empty)
 *   custom_attributes               ""          ASYNC_SM_CUSTOM_ATTRIBUTES
 *   invocation_timeout_seconds      0           ASYNC_SM_INVOCATION_TIMEOUT (0 = derived from
 *                                               max_wait_time)
 *   request_ttl_seconds             0           ASYNC_SM_REQUEST_TTL (0 = derived from max_wait_time)
 *   endpoint                        ""          ASYNC_SM_ENDPOINT (the endpoint name, for callers
 *                                               that take it from the configuration)
 *   region                          ""          ASYNC_SM_REGION (AWS region; "" = the AWS chain's)
 *
 * Every key is read with CPLGetConfigOption(): `--config KEY VALUE` (or
 * CPLSetConfigOption) beats the environment, and GDAL's configuration file
 * fills in keys the environment does not set.
 *
 * output_prefix is sent to SageMaker as S3OutputPathExtension (leading and
 * trailing '/' removed; "" sends none), so results land under the
 * endpoint's S3OutputPath followed by that extension.
 *
 * cleanup_enabled = false is the same as cleanup_policy = disabled; the
 * effective policy is given by asd_config_effective_policy().
 */
#ifndef ASD_CONFIG_H
#define ASD_CONFIG_H

#include "asd_export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASD_CONFIG_BUCKET_MAX 64   /* S3 bucket names are 3..63 characters */
#define ASD_CONFIG_PREFIX_MAX 1024 /* S3 keys are at most 1024 bytes */
#define ASD_CONFIG_HEADER_MAX 1024 /* SageMaker header values are at most 1024 chars */

typedef enum asd_cleanup_policy {
  ASD_CLEANUP_IMMEDIATE = 0, /* input deleted once its job finished, output once consumed */
  ASD_CLEANUP_DELAYED = 1,   /* deleted cleanup_delay_seconds after the job finished, in batches */
  ASD_CLEANUP_DISABLED = 2   /* nothing deleted; the count of kept objects is reported */
} asd_cleanup_policy;

typedef struct asd_async_config {
  /* S3 */
  char input_bucket[ASD_CONFIG_BUCKET_MAX];
  char output_bucket[ASD_CONFIG_BUCKET_MAX];
  char input_prefix[ASD_CONFIG_PREFIX_MAX];
  char output_prefix[ASD_CONFIG_PREFIX_MAX];

  /* Polling (seconds) */
  double max_wait_time;
  double polling_interval;
  double max_polling_interval;
  double exponential_backoff_multiplier;
  double polling_jitter;
  /* Poll each job around the invoke-to-result time observed in this run,
   * never later than the schedule above would (plugin/engine/latency.c).
   * Setting the schedule (polling_interval, max_polling_interval,
   * exponential_backoff_multiplier) by name or environment turns it off
   * unless adaptive_polling itself was set too: see
   * asd_config_adaptive_polling(). */
  int adaptive_polling;
  /* ASD_POLLING_SET_* bits: which polling settings asd_config_set() or
   * asd_config_load_env() stored (assignments in code are not seen). */
  int polling_explicit;

  /* Retries and cleanup */
  int max_retries;
  int cleanup_enabled;
  asd_cleanup_policy cleanup_policy;
  double cleanup_delay_seconds;

  /* Worker pool */
  int enable_worker_optimization;
  int submission_workers;
  int polling_workers;
  int max_concurrent_jobs;
  double job_queue_timeout;

  /* InvokeEndpointAsync request headers */
  char content_type[ASD_CONFIG_HEADER_MAX];
  char accept[ASD_CONFIG_HEADER_MAX];
  char custom_attributes[ASD_CONFIG_HEADER_MAX];
  int invocation_timeout_seconds;
  int request_ttl_seconds;

  /* Where to send it (callers may take these from the configuration). */
  char endpoint[64];
  char region[64];

  /* What enterprise S3 bucket policies ask of every call (empty = not sent). */
  char sse[16];                   /* x-amz-server-side-encryption on uploads: AES256, aws:kms, aws:kms:dsse */
  char sse_kms_key_id[256];       /* x-amz-server-side-encryption-aws-kms-key-id (aws:kms only) */
  char expected_bucket_owner[16]; /* x-amz-expected-bucket-owner on every S3 call: 12-digit account */
} asd_async_config;

#define ASD_POLLING_SET_SCHEDULE 1 /* polling_interval, max_polling_interval or multiplier */
#define ASD_POLLING_SET_MODE 2     /* adaptive_polling */

/* Fills *cfg with the seed's defaults (input_bucket is empty). */
ASD_API void asd_config_init(asd_async_config *cfg);

/*
 * Overlays every ASYNC_SM_* key that is set, read with CPLGetConfigOption()
 * (so `--config KEY VALUE` and GDAL's configuration file count, not only the
 * environment).  Returns 0, or -1 with one line naming the key and what was
 * wrong with its value in err (the fields read before the bad one keep their
 * new values).
 */
ASD_API int asd_config_load_env(asd_async_config *cfg, char *err, size_t err_len);

/*
 * Sets one field by its name (the seed's snake_case name, e.g.
 * "polling_interval", "cleanup_policy"; the environment variable name is
 * accepted too) from text.  Booleans accept true/false/yes/no/on/off/1/0.
 * Returns 0, or -1 with one line naming the field in err (unknown field or
 * unparseable value).  Range checks are left to asd_config_validate().
 */
ASD_API int asd_config_set(asd_async_config *cfg, const char *name, const char *value, char *err,
                   size_t err_len);

/*
 * Checks every field.  Returns 0, or -1 with one line naming the first bad
 * field and the accepted range in err, e.g.
 *   "exponential_backoff_multiplier must be > 1 (got 0.5)".
 */
ASD_API int asd_config_validate(const asd_async_config *cfg, char *err, size_t err_len);

/* "immediate", "delayed", "disabled". */
ASD_API const char *asd_cleanup_policy_name(asd_cleanup_policy p);
/* Parses a policy name (case-insensitive).  Returns 0 or -1. */
ASD_API int asd_cleanup_policy_parse(const char *text, asd_cleanup_policy *out);
/* The policy in force: disabled when cleanup_enabled is false. */
ASD_API asd_cleanup_policy asd_config_effective_policy(const asd_async_config *cfg);

/*
 * The delay before poll number `attempt` (0 = the first poll after the
 * invocation) without jitter: polling_interval * multiplier^attempt, capped
 * at max_polling_interval.
 */
ASD_API double asd_config_poll_interval(const asd_async_config *cfg, int attempt);

/*
 * The same with jitter: u in [0,1) spreads the delay uniformly over
 * interval * [1 - polling_jitter, 1 + polling_jitter], still capped at
 * max_polling_interval, so that jobs submitted together do not poll together.
 */
ASD_API double asd_config_poll_delay(const asd_async_config *cfg, int attempt, double u);

/*
 * Whether jobs are polled adaptively: adaptive_polling when it was set by
 * name or environment, else adaptive_polling unless the schedule was set
 * that way (a user who chose a polling interval gets exactly that schedule).
 */
ASD_API int asd_config_adaptive_polling(const asd_async_config *cfg);

/*
 * The fewest polls the schedule (without jitter) needs to observe a job that
 * completes `latency` seconds after its invocation: the smallest k with
 * interval(0) + ... + interval(k-1) >= latency (at least 1).
 */
ASD_API int asd_config_min_polls(const asd_async_config *cfg, double latency);

/*
 * output_prefix as SageMaker's S3OutputPathExtension: without leading or
 * trailing '/'.  Writes it to out ("" when there is none) and returns its
 * length.
 */
ASD_API size_t asd_config_output_path_extension(const asd_async_config *cfg, char *out, size_t out_len);

/*
 * RequestTTLSeconds and InvocationTimeoutSeconds as sent: the configured
 * value, or else max_wait_time rounded up and clamped to SageMaker's ranges
 * (60-21600 and 1-3600 s).
 */
ASD_API int asd_config_request_ttl(const asd_async_config *cfg);
ASD_API int asd_config_invocation_timeout(const asd_async_config *cfg);

/* The configuration as a JSON object text (malloc'd; free()).  NULL on OOM. */
ASD_API char *asd_config_to_json(const asd_async_config *cfg);

#ifdef __cplusplus
}
#endif

#endif /* ASD_CONFIG_H */
