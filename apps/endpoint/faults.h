/*
 * faults.h: seeded fault injection for the local endpoint.
 *
 * A test or a benchmark asks the server to misbehave the way AWS sometimes
 * does: S3 answering 503 SlowDown or 500 InternalError, InvokeEndpointAsync
 * being throttled or failing with a 5xx, connections dropped without an
 * answer, models that error out or never finish, and a slow consumer (every
 * S3 request held for a while before it is served).
 *
 * Decisions are reproducible: each kind of decision has its own counter, and
 * the n-th decision of a kind is a pure function of (seed, kind, n).  The
 * same seed and the same sequence of requests per kind give the same faults,
 * whatever the interleaving of server threads.
 *
 * The spec string is the value of the server's -faults option:
 *   "s3_503=P,s3_500=P,invoke_throttle=P,invoke_5xx=P,drop=P,model_error=P,
 *    hang=P,slow_consumer_ms=N,seed=N"
 * plus one key per error SageMaker Runtime documents, named after it and
 * answered with its real status (botocore's sagemaker-runtime model):
 *   ValidationError=P (400), ModelNotReadyException=P (429),
 *   ThrottlingException=P (400, the same as invoke_throttle),
 *   ServiceUnavailable=P (503), InternalFailure=P (500),
 *   InternalDependencyException=P (530);
 * and two faults that strike after the invocation was accepted (queued, so
 * that the job runs and writes its result) but before the client hears so:
 *   accept_then_5xx=P (answered 500 InternalFailure instead of 202) and
 *   accept_then_drop=P (the connection is closed without an answer).
 * They are what makes a blind retry of InvokeEndpointAsync pay twice.
 * P are probabilities in [0,1]; every key is optional (default 0; seed 1).
 *
 * Who applies what:
 *   - the HTTP server calls ep_faults_s3() for every S3 request and
 *     answers 503 SlowDown / 500 InternalError, or drops the connection, or
 *     serves it normally, and sleeps ep_faults_slow_consumer_ms() first;
 *   - the runtime (runtime.c) calls ep_faults_invoke() for every
 *     async/sync invocation and ep_faults_job() for every job it runs.
 */
#ifndef ASD_ENDPOINT_FAULTS_H
#define ASD_ENDPOINT_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

typedef struct ep_fault_spec {
  double s3_503;          /* probability of 503 SlowDown on an S3 request */
  double s3_500;          /* probability of 500 InternalError on an S3 request */
  double invoke_throttle; /* probability of 400 ThrottlingException on an invocation */
  double invoke_5xx;      /* probability of 500 InternalFailure / 503 ServiceUnavailable */
  double drop;            /* probability of a dropped connection (S3 or invocation) */
  double validation;      /* 400 ValidationError on an invocation */
  double not_ready;       /* 429 ModelNotReadyException */
  double unavailable;     /* 503 ServiceUnavailable */
  double internal;        /* 500 InternalFailure */
  double dependency;      /* 530 InternalDependencyException */
  double accept_then_5xx; /* accepted and run, then answered 500 InternalFailure */
  double accept_then_drop; /* accepted and run, then the connection is closed */
  double model_error;     /* probability that a job fails with a model error */
  double hang;            /* probability that a job never finishes (until its timeout) */
  int slow_consumer_ms;   /* delay applied to every S3 request, 0 = none */
  uint64_t seed;          /* default 1 */
} ep_fault_spec;

/* Sets every field to its default (no faults, seed 1). */
void ep_fault_spec_init(ep_fault_spec *spec);

/*
 * Parses a -faults spec string into *spec (which is initialised first).
 * Returns 0, or -1 with one line naming the bad key or value in err.
 */
int ep_fault_spec_parse(const char *text, ep_fault_spec *spec, char *err, size_t err_len);

typedef enum ep_s3_fault {
  ASD_S3_FAULT_NONE = 0,
  ASD_S3_FAULT_503_SLOWDOWN, /* answer 503, code SlowDown */
  ASD_S3_FAULT_500_INTERNAL, /* answer 500, code InternalError */
  ASD_S3_FAULT_DROP          /* close the connection without an answer */
} ep_s3_fault;

typedef enum ep_invoke_fault {
  ASD_INVOKE_FAULT_NONE = 0,
  ASD_INVOKE_FAULT_THROTTLE,  /* 400 ThrottlingException */
  ASD_INVOKE_FAULT_500,       /* 500 InternalFailure */
  ASD_INVOKE_FAULT_503,       /* 503 ServiceUnavailable */
  ASD_INVOKE_FAULT_DROP,      /* close the connection without an answer */
  ASD_INVOKE_FAULT_VALIDATION, /* 400 ValidationError */
  ASD_INVOKE_FAULT_NOT_READY,  /* 429 ModelNotReadyException */
  ASD_INVOKE_FAULT_DEPENDENCY, /* 530 InternalDependencyException */
  ASD_INVOKE_FAULT_ACCEPT_THEN_5XX,  /* queue the job, then answer 500 InternalFailure */
  ASD_INVOKE_FAULT_ACCEPT_THEN_DROP  /* queue the job, then close the connection */
} ep_invoke_fault;

typedef enum ep_job_fault {
  ASD_JOB_FAULT_NONE = 0,
  ASD_JOB_FAULT_MODEL_ERROR, /* the model fails: a failure object is written */
  ASD_JOB_FAULT_HANG         /* the job never finishes until its invocation timeout */
} ep_job_fault;

typedef struct ep_faults ep_faults;

/* Creates the injector; a NULL spec means no faults.  Thread-safe to use. */
ep_faults *ep_faults_new(const ep_fault_spec *spec);
void ep_faults_free(ep_faults *f);

/* Decisions.  A NULL injector never injects anything. */
ep_s3_fault ep_faults_s3(ep_faults *f);
ep_invoke_fault ep_faults_invoke(ep_faults *f);
ep_job_fault ep_faults_job(ep_faults *f);
int ep_faults_slow_consumer_ms(const ep_faults *f);

/* Whether any fault at all is configured (lets the server skip the calls). */
int ep_faults_enabled(const ep_faults *f);

/*
 * Counts of injected faults as a new json-c object:
 * {"s3_503":n,"s3_500":n,"s3_drop":n,"invoke_throttle":n,"invoke_500":n,
 *  "invoke_503":n,"invoke_drop":n,"model_error":n,"hang":n,
 *  "invoke_validation":n,"invoke_not_ready":n,"invoke_dependency":n,
 *  "accept_then_5xx":n,"accept_then_drop":n,"seed":n}.
 * The caller owns the returned object (json_object_put).
 */
struct json_object *ep_faults_stats_json(ep_faults *f);

#ifdef __cplusplus
}
#endif

#endif /* ASD_ENDPOINT_FAULTS_H */
