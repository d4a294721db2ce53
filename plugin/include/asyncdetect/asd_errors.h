/*
 * asd_errors.h: error codes and error values of the async inference engine.
 *
 * The seed raises S3OperationError, AsyncInferenceTimeoutError and
 * ExtensionRuntimeError; here every failure is an asd_errcode (with a
 * strerror-style text) carried in an asd_error that adds the details of the
 * failing call: HTTP status, AWS error code, request id, and a one-line
 * message naming what failed (for an inference failure: the content of the
 * failure object the endpoint wrote).
 *
 * Whether an error is worth retrying is decided in exactly one place,
 * asd_error_is_retryable(); the pool and the detector both ask it.  Whether
 * it ends a whole run is decided next to it, asd_error_is_fatal_for_run().
 *
 * Messages: one line, without a module prefix (the code and the call's facts
 * say where it comes from); asd_error_format() puts the code's text first.
 */
#ifndef ASD_ERRORS_H
#define ASD_ERRORS_H

#include "asd_export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum asd_errcode {
  ASD_OK = 0,
  ASD_ERR_CONFIG = 1,        /* invalid configuration or argument */
  ASD_ERR_S3 = 2,            /* an S3 operation failed (S3OperationError) */
  ASD_ERR_ENDPOINT = 3,      /* InvokeEndpointAsync failed (endpoint error) */
  ASD_ERR_INFERENCE = 4,     /* the endpoint wrote a failure object for the job */
  ASD_ERR_TIMEOUT = 5,       /* no result within max_wait_time (AsyncInferenceTimeoutError) */
  ASD_ERR_QUEUE_TIMEOUT = 6, /* no free job slot within job_queue_timeout */
  ASD_ERR_BAD_RESULT = 7,    /* the output object is not a GeoJSON FeatureCollection */
  ASD_ERR_RUNTIME = 8,       /* unexpected error (ExtensionRuntimeError): memory, internal */
  ASD_ERR_CANCELLED = 9,     /* stopped before it finished */
  ASD_ERR_INPUT = 10,        /* the caller could not make the tile (read or encode error) */
  ASD_ERR__COUNT
} asd_errcode;

/* A short fixed text for a code ("S3 operation failed", ...); never NULL. */
ASD_API const char *asd_strerror(asd_errcode code);
/* The code's symbolic name ("ASD_ERR_S3"); never NULL. */
ASD_API const char *asd_errcode_name(asd_errcode code);

typedef struct asd_error {
  asd_errcode code;
  int http_status;      /* 0 when no HTTP answer was received, -1 when not applicable */
  int transport;        /* 1 when the request got no answer (connection, timeout) */
  int not_sent;         /* 1 when the request surely never reached the service */
  char aws_code[64];    /* AWS error code such as "SlowDown", or "" */
  char request_id[128]; /* AWS request id, or "" */
  char message[1024];   /* one line: what failed and why */
} asd_error;

/* Resets to ASD_OK with empty details.  NULL is accepted (no-op). */
ASD_API void asd_error_clear(asd_error *err);

/*
 * Sets code and a printf-style one-line message (newlines are replaced by
 * spaces); keeps http_status/aws_code/request_id as they are.  NULL err is
 * accepted (no-op).  Returns -1 so that `return asd_error_set(...)` reads well.
 */
ASD_API int asd_error_set(asd_error *err, asd_errcode code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copies src into dst (either may be NULL: no-op). */
ASD_API void asd_error_copy(asd_error *dst, const asd_error *src);

/*
 * The one place where retryable vs permanent is decided:
 *  - S3 and endpoint errors are retryable when the request got no answer,
 *    or was answered 429, 5xx, or with a throttling / timeout code
 *    (Throttling, ThrottlingException, SlowDown, RequestLimitExceeded,
 *    RequestTimeout, ServiceUnavailable, InternalError, InternalFailure...);
 *    4xx answers such as AccessDenied, NoSuchBucket or ValidationError are
 *    permanent;
 *  - unexpected runtime errors are retryable (the job is tried again up to
 *    max_retries, it is not lost);
 *  - inference failures, timeouts, queue timeouts, bad results,
 *    configuration errors and cancellation are permanent.
 */
ASD_API int asd_error_is_retryable(const asd_error *err);

/*
 * The one place where "this error is the run's, not the tile's" is decided:
 * an error that would fail every other tile the same way, so that a run
 * meeting it before any tile has succeeded stops with that one line instead
 * of failing every tile alike.  From the typed facts only, never from the
 * message text:
 *  - S3 and endpoint errors answered 401, 403 or 404, or with an AWS code
 *    that names missing credentials, refused credentials or a missing
 *    resource (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
 *    InvalidClientTokenId, UnrecognizedClientException, ExpiredToken,
 *    NoSuchBucket, ValidationError: SageMaker's answer for an unknown
 *    endpoint, InternalDependencyException: its 530 that needs support).
 * Throttling, server errors, timeouts, inference failures, bad results and
 * tiles the caller could not make (ASD_ERR_INPUT: a damaged block of the
 * input fails its tiles only) stay the tile's.  A retryable error is never fatal.
 */
ASD_API int asd_error_is_fatal_for_run(const asd_error *err);

/*
 * Whether an InvokeEndpointAsync that failed with err may nevertheless have
 * been accepted (and its model run): the answer was lost after the request
 * was sent (a timeout, a reset, a 5xx).  Such an invocation must not be
 * repeated blindly: its result is looked for first (the pool does).  False
 * for refusals (4xx: ValidationError, ThrottlingException,
 * ModelNotReadyException), for InternalDependencyException (530, a fault
 * SageMaker documents as needing support, which ends the run) and when the
 * request surely never left (no connection).
 */
ASD_API int asd_error_invoke_maybe_accepted(const asd_error *err);

/*
 * Formats "<strerror>: <message> (HTTP 503, SlowDown, request id X)" into
 * buf; returns buf.
 */
ASD_API const char *asd_error_format(const asd_error *err, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ASD_ERRORS_H */
