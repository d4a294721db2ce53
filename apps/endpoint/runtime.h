/*
 * runtime.h: SageMaker Runtime semantics of the local endpoint.
 *
 * The HTTP server (server.c, owned by endpoint-core) routes
 *   POST /endpoints/{name}/async-invocations  -> ep_runtime_invoke_async()
 *   POST /endpoints/{name}/invocations        -> ep_runtime_invoke_sync()
 * and copies the ep_rt_response it gets back onto the wire (status, headers,
 * body), or drops the connection when response.drop_connection is set.
 * The runtime never touches HTTP itself, so it can be tested without a
 * server, and it reads and writes S3 objects only through ep_rt_store,
 * which the server fills in with its own S3 store.
 *
 * Each declared endpoint owns a FIFO queue and instances x concurrency
 * worker threads.  An async request is validated, checked for its input
 * object, queued as a small record (no payload copy: the input object is
 * read when the job starts) and answered 202 at once with the output and
 * failure locations, which are fixed at that moment:
 *   <output path>[/<extension>]/<uuid>.out  and  <failure path>[/<extension>]/<uuid>-error.out
 * (the uuid is not the inference id, as on AWS), where the extension is the
 * request's S3OutputPathExtension; a request's Filename replaces
 * "<uuid>.out" (and names the failure object "<Filename>-error.out").  Requests that wait longer
 * than RequestTTLSeconds are written as failures; so are jobs that run
 * longer than InvocationTimeoutSeconds.
 */
#ifndef ASD_ENDPOINT_RUNTIME_H
#define ASD_ENDPOINT_RUNTIME_H

#include <stddef.h>

#include "faults.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* ------------------------------------------------------------ endpoint spec */

#define ASD_RT_NAME_MAX 64    /* endpoint names are at most 63 chars */
#define ASD_RT_MODEL_MAX 256  /* model name or http://HOST:PORT */
#define ASD_RT_BUCKET_MAX 64  /* S3 bucket names are at most 63 chars */
#define ASD_RT_PREFIX_MAX 1024

/*
 * One -endpoint option:
 *   "NAME,model=blobs,output=s3://bucket/prefix,failure=s3://bucket/prefix,
 *    instances=1,concurrency=4,latency_ms=0,spread_ms=0"
 * Optional keys and defaults: model=centerpoint, output=s3://asd-async/NAME/output,
 * failure=s3://asd-async/NAME/failure, instances=1 (0 = scaled to zero:
 * requests queue and wait), concurrency=1, latency_ms=0, spread_ms=0,
 * time_scale=1 (a testing aid: RequestTTLSeconds and
 * InvocationTimeoutSeconds are multiplied by it, so that expiry can be
 * observed in seconds rather than minutes), cold_start_ms=0 (an endpoint
 * that starts cold: no instance runs a job until that long after the first
 * invocation it accepts, as an async endpoint scaling out from zero).
 * failure=none declares an endpoint without an S3FailurePath: its replies
 * carry no FailureLocation and a failed job leaves no object anywhere.
 * async=no declares a real-time endpoint (created without an
 * AsyncInferenceConfig): InvokeEndpointAsync answers 400 ValidationError.
 */
typedef struct ep_endpoint_spec {
  char name[ASD_RT_NAME_MAX];
  char model[ASD_RT_MODEL_MAX];
  char output_bucket[ASD_RT_BUCKET_MAX];
  char output_prefix[ASD_RT_PREFIX_MAX];  /* no leading or trailing '/', may be "" */
  char failure_bucket[ASD_RT_BUCKET_MAX];  /* "" = failure=none */
  char failure_prefix[ASD_RT_PREFIX_MAX];
  int instances;
  int concurrency;
  double latency_ms; /* mean simulated model latency */
  double spread_ms;  /* each invocation draws uniformly in mean +/- spread */
  double time_scale;
  double cold_start_ms; /* instances start this long after the first invocation */
  int realtime;         /* 1: async=no, a real-time endpoint: InvokeEndpointAsync is a
                           ValidationError, DescribeEndpoint shows no AsyncInferenceConfig */
} ep_endpoint_spec;

/* Parses one -endpoint value.  Returns 0, or -1 with a one-line reason in err. */
int ep_endpoint_spec_parse(const char *text, ep_endpoint_spec *spec, char *err, size_t err_len);

/* 1 when name is a valid SageMaker endpoint name (<= 63, ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$). */
int ep_endpoint_name_valid(const char *name);

/* ------------------------------------------------------------------- store */

/*
 * The runtime's view of the server's S3 store.  Every function must be
 * thread-safe; put must be atomic (a reader sees the whole object or none).
 */
typedef struct ep_rt_store {
  void *ctx;
  /* Reads a whole object into a malloc'd buffer (*data, *len; free() it).
   * Returns 0 on success, 1 when the bucket or key does not exist, -1 on error. */
  int (*get)(void *ctx, const char *bucket, const char *key, unsigned char **data, size_t *len);
  /* Returns 1 when the object exists, 0 when not. */
  int (*exists)(void *ctx, const char *bucket, const char *key);
  /* Writes an object atomically, creating the bucket if needed.  Returns 0 or -1. */
  int (*put)(void *ctx, const char *bucket, const char *key, const void *data, size_t len,
             const char *content_type);
} ep_rt_store;

struct ep_store;
/*
 * Fills *out with functions over the server's store (s3_store.h): get reads
 * at most 1 GB (SageMaker's async payload limit), put creates a missing
 * bucket and retries once.  The store must outlive the runtime.
 */
void ep_rt_store_from_store(struct ep_store *store, ep_rt_store *out);

/* ---------------------------------------------------------------- requests */

/* Case-insensitive lookup of a request header; NULL when absent. */
typedef const char *(*ep_rt_header_fn)(void *ctx, const char *name);

#define ASD_RT_MAX_HEADERS 8

/*
 * What the server sends back.  Headers always include Content-Type and
 * x-amzn-RequestId (the server must not add a second request id on these
 * routes); errors carry x-amzn-ErrorType and a JSON body
 * {"__type":CODE,"message":TEXT} as AWS rest-json services do.
 */
typedef struct ep_rt_response {
  int status;              /* HTTP status */
  int drop_connection;     /* 1: close the connection without answering */
  unsigned char *body;     /* malloc'd (may be NULL when body_len is 0) */
  size_t body_len;
  int n_headers;
  char *header_names[ASD_RT_MAX_HEADERS];  /* malloc'd */
  char *header_values[ASD_RT_MAX_HEADERS]; /* malloc'd */
  const char *error_code;  /* static string such as "ValidationError", NULL on success (for logs/stats) */
} ep_rt_response;

void ep_rt_response_init(ep_rt_response *resp);
void ep_rt_response_clear(ep_rt_response *resp); /* frees body and headers */

/* ------------------------------------------------------------------ runtime */

typedef struct ep_runtime ep_runtime;

/*
 * Creates the runtime and starts its worker threads.  specs are copied;
 * store is copied (its ctx must outlive the runtime); faults may be NULL and
 * stays owned by the caller (it must outlive the runtime).  Returns NULL with
 * a one-line reason in err (e.g. a duplicate endpoint name or unknown model).
 */
ep_runtime *ep_runtime_new(const ep_endpoint_spec *specs, int n_specs, const ep_rt_store *store,
                             ep_faults *faults, char *err, size_t err_len);

/*
 * Clean shutdown: new invocations are refused (503 ServiceUnavailable),
 * jobs whose model has returned finish writing their object, jobs that are
 * sleeping (simulated latency, hang) or still queued are abandoned without
 * writing anything.  Blocks until every worker has exited.  Idempotent.
 */
void ep_runtime_stop(ep_runtime *rt);
/* Stops (if needed) and frees. */
void ep_runtime_free(ep_runtime *rt);

/*
 * POST /endpoints/{endpoint}/async-invocations.  The request body is
 * ignored (the payload is at X-Amzn-SageMaker-InputLocation).  Fills resp:
 * 202 {"InferenceId":...} with X-Amzn-SageMaker-OutputLocation and
 * X-Amzn-SageMaker-FailureLocation, or an AWS-style error.
 */
void ep_runtime_invoke_async(ep_runtime *rt, const char *endpoint, ep_rt_header_fn header,
                              void *header_ctx, ep_rt_response *resp);

/*
 * POST /endpoints/{endpoint}/invocations: runs the model on the body in the
 * calling thread (with the endpoint's simulated latency) and answers 200
 * with the model output, 424 ModelError when the model fails, or an
 * AWS-style error.  Headers honoured: Content-Type, Accept,
 * X-Amzn-SageMaker-Custom-Attributes, X-Amzn-SageMaker-Inference-Id.
 */
void ep_runtime_invoke_sync(ep_runtime *rt, const char *endpoint, ep_rt_header_fn header,
                             void *header_ctx, const unsigned char *body, size_t body_len,
                             ep_rt_response *resp);

/*
 * Statistics as a new json-c object (caller owns it), for GET /_asd/stats:
 * {"endpoints":{NAME:{"model":..,"workers":n,"queue_depth":n,"in_flight":n,
 *   "accepted":n,"rejected":n,"completed":n,"failed":n,
 *   "failed_by_reason":{"model_error":n,"ttl_expired":n,"invocation_timeout":n,
 *                       "input_missing":n},
 *   "sync_invocations":n,
 *   "latency_ms":{"count":n,"p50":x,"p90":x,"p99":x,"max":x},   (enqueue -> object written)
 *   "model_ms":{"count":n,"p50":x,"p90":x,"p99":x,"max":x}}},    (model run only)
 *  "totals":{"queue_depth":n,"in_flight":n,"completed":n,"failed":n}}
 */
struct json_object *ep_runtime_stats_json(ep_runtime *rt);

/* Number of endpoints and their specs (for the server's bucket creation and --help). */
int ep_runtime_endpoint_count(const ep_runtime *rt);
const ep_endpoint_spec *ep_runtime_endpoint_spec(const ep_runtime *rt, int i);

#ifdef __cplusplus
}
#endif

#endif /* ASD_ENDPOINT_RUNTIME_H */
