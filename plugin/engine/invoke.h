/*
 * invoke.h: what makes an InvokeEndpointAsync safe to lose (internal).
 *
 * A GPU inference costs money, so a tile must be invoked at most once.  The
 * client therefore chooses, per tile, the inference id and the Filename of
 * the result (SageMaker names the output object after the Filename), so that
 * where the outcome will appear is known before the call: the endpoint's
 * S3OutputPath [+ S3OutputPathExtension] + "/" + Filename, and the failure
 * object beside it under S3FailurePath.  The endpoint's paths are learnt
 * from the first invocation whose answer arrived (its OutputLocation minus
 * the Filename), so nothing but the runtime API is needed; until one has,
 * they are seeded from the endpoint configuration's
 * AsyncInferenceConfig.OutputConfig when the preflight could read it
 * (DescribeEndpointConfig), so that the first tiles, whose answers may be
 * lost before any arrived, are covered too.  What an answer shows replaces
 * the seed: the answer is what the endpoint does.
 *
 * When an invocation's answer is lost (a timeout, a reset, a 5xx once the
 * request was sent), the job is not invoked again: it is polled at the
 * predicted location like any accepted job, and only when SageMaker cannot
 * have accepted it (see pool.c) is it invoked again, with the same id and
 * Filename.
 */
#ifndef ASD_ENGINE_INVOKE_H
#define ASD_ENGINE_INVOKE_H

#include <pthread.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SageMaker's Filename is at most 32 characters. */
#define ASD_INVOKE_FILENAME_MAX 33

/* A fresh inference id (a uuid, 36 characters) and its Filename (the 32 hex
 * digits of the same uuid: SageMaker allows at most 32 characters). */
void asd_invoke_new_id(char id[37], char filename[ASD_INVOKE_FILENAME_MAX]);

/* The Filename this library sends for an inference id it chose: its letters
 * and digits, at most 32.  Returns 0, or -1 when the id cannot name a file
 * (an id from elsewhere): then nothing can be predicted. */
int asd_invoke_filename_of(const char *inference_id, char filename[ASD_INVOKE_FILENAME_MAX]);

/* Where the endpoint writes, as learnt from invocations whose answer came. */
typedef struct asd_invoke_paths {
  pthread_mutex_t mu;
  char *out_dir;  /* "s3://bucket/prefix[/ext]" (no trailing '/'), NULL until learnt */
  char *fail_dir; /* same for failures; NULL when unknown or the endpoint has none */
  int fail_known; /* 1 once an answer showed whether there is a failure path */
  int out_seeded, fail_seeded; /* out_dir / fail_dir come from the configuration, not an answer yet */
} asd_invoke_paths;

void asd_invoke_paths_init(asd_invoke_paths *p);
void asd_invoke_paths_free(asd_invoke_paths *p);

/* Learns the directories from an accepted invocation: output ends with
 * "/<filename>", failure (may be NULL: no S3FailurePath) with
 * "/<filename>-error.out".  Locations that do not end so teach nothing. */
void asd_invoke_paths_learn(asd_invoke_paths *p, const char *filename, const char *output,
                            const char *failure);

/* Seeds the directories from the endpoint configuration before any answer:
 * output_path and failure_path are its S3OutputPath and S3FailurePath ("" or
 * NULL: none), extension the S3OutputPathExtension the client sends ("" or
 * NULL: none), appended to both as the endpoint appends it.  A path that is
 * not s3://bucket[/prefix] seeds nothing.  Directories learnt from an answer
 * (asd_invoke_paths_learn) replace seeded ones, never the reverse. */
void asd_invoke_paths_seed(asd_invoke_paths *p, const char *output_path, const char *failure_path,
                           const char *extension);

/* The predicted output and failure locations of filename (malloc'd; *fail
 * NULL when unknown).  Returns 1 when the output location is known, else 0
 * with both NULL. */
int asd_invoke_paths_predict(asd_invoke_paths *p, const char *filename, char **out, char **fail);

#ifdef __cplusplus
}
#endif

#endif
