/*
 * invoke.c: client-chosen inference ids and the locations they make
 * predictable (see invoke.h for why).
 *
 * The Filename is the uuid of the inference id without its dashes: 32
 * characters of [0-9a-f], which SageMaker's pattern
 * ^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$ (1-32) accepts, and which can be
 * derived again from the id alone, so that a journal that recorded only the
 * id is enough for -resume to know where to look.
 *
 * The failure object's name is not documented by AWS for a request with a
 * Filename; the local endpoint writes "<Filename>-error.out" beside the
 * failure path.  A seed from the endpoint configuration appends the
 * S3OutputPathExtension to both paths, as the local endpoint does; AWS
 * documents the extension for the output path only, so the failure side of a
 * seed is a guess the first answer corrects.  A FailureLocation of any other shape is simply not learnt,
 * and a lost invocation is then looked for at its output location only.
 */
#include "engine/invoke.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncdetect/asd_common.h"

void asd_invoke_new_id(char id[37], char filename[ASD_INVOKE_FILENAME_MAX]) {
  asd_uuid4(id);
  asd_invoke_filename_of(id, filename);
}

int asd_invoke_filename_of(const char *inference_id, char filename[ASD_INVOKE_FILENAME_MAX]) {
  size_t n = 0;
  filename[0] = '\0';
  for (const char *c = inference_id; c && *c; c++) {
    if (*c == '-') continue;
    if (!isalnum((unsigned char)*c) || n + 1 >= ASD_INVOKE_FILENAME_MAX) {
      filename[0] = '\0';
      return -1;
    }
    filename[n++] = *c;
  }
  filename[n] = '\0';
  return n > 0 ? 0 : -1;
}

void asd_invoke_paths_init(asd_invoke_paths *p) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
}

void asd_invoke_paths_free(asd_invoke_paths *p) {
  free(p->out_dir);
  free(p->fail_dir);
  pthread_mutex_destroy(&p->mu);
  memset(p, 0, sizeof *p);
}

/* location minus "/<name><suffix>", malloc'd; NULL when it does not end so. */
static char *dir_of(const char *location, const char *name, const char *suffix) {
  if (!location || !name || !*name) return NULL;
  size_t ln = strlen(location), nn = strlen(name), sn = strlen(suffix);
  if (ln < nn + sn + 2) return NULL;
  const char *tail = location + ln - nn - sn;
  if (tail[-1] != '/' || strncmp(tail, name, nn) != 0 || strcmp(tail + nn, suffix) != 0) return NULL;
  size_t dn = (size_t)(tail - 1 - location);
  char *d = malloc(dn + 1);
  if (!d) return NULL;
  memcpy(d, location, dn);
  d[dn] = '\0';
  return d;
}

/* path [+ "/" + ext] without trailing '/' (malloc'd), or NULL when path is
   not s3://bucket[/...]. */
static char *seed_dir(const char *path, const char *ext) {
  if (!path || strncmp(path, "s3://", 5) != 0 || !path[5] || path[5] == '/') return NULL;
  size_t pn = strlen(path);
  while (pn > 5 && path[pn - 1] == '/') pn--;
  const char *e = ext ? ext : "";
  while (*e == '/') e++;
  size_t en = strlen(e);
  while (en && e[en - 1] == '/') en--;
  char *d = malloc(pn + en + 2);
  if (!d) return NULL;
  memcpy(d, path, pn);
  d[pn] = '\0';
  if (en) {
    d[pn] = '/';
    memcpy(d + pn + 1, e, en);
    d[pn + 1 + en] = '\0';
  }
  return d;
}

void asd_invoke_paths_seed(asd_invoke_paths *p, const char *output_path, const char *failure_path,
                           const char *extension) {
  char *od = seed_dir(output_path, extension);
  if (!od) return; /* no usable S3OutputPath: nothing can be predicted */
  char *fd = seed_dir(failure_path, extension);
  pthread_mutex_lock(&p->mu);
  if (!p->out_dir) {
    p->out_dir = od;
    od = NULL;
    p->out_seeded = 1;
  }
  if (!p->fail_known) {
    /* The configuration says whether there is a failure path; an answer
       may still correct where it is. */
    p->fail_dir = fd;
    fd = NULL;
    p->fail_known = 1;
    p->fail_seeded = 1;
  }
  pthread_mutex_unlock(&p->mu);
  free(od);
  free(fd);
}

void asd_invoke_paths_learn(asd_invoke_paths *p, const char *filename, const char *output,
                            const char *failure) {
  char *od = dir_of(output, filename, "");
  if (!od) return;
  char *fd = failure && *failure ? dir_of(failure, filename, "-error.out") : NULL;
  pthread_mutex_lock(&p->mu);
  if (!p->out_dir || p->out_seeded) {
    free(p->out_dir);
    p->out_dir = od;
    od = NULL;
    p->out_seeded = 0;
  }
  if (!p->fail_known || p->fail_seeded) {
    /* No FailureLocation at all: the endpoint has no S3FailurePath.  One of
     * another shape: unknown, and the output alone is looked for. */
    free(p->fail_dir);
    p->fail_dir = fd;
    fd = NULL;
    p->fail_known = 1;
    p->fail_seeded = 0;
  }
  pthread_mutex_unlock(&p->mu);
  free(od);
  free(fd);
}

static char *join(const char *dir, const char *name, const char *suffix) {
  size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s/%s%s", dir, name, suffix);
  return s;
}

int asd_invoke_paths_predict(asd_invoke_paths *p, const char *filename, char **out, char **fail) {
  *out = *fail = NULL;
  if (!filename || !*filename) return 0;
  pthread_mutex_lock(&p->mu);
  if (p->out_dir) {
    *out = join(p->out_dir, filename, "");
    if (p->fail_dir) *fail = join(p->fail_dir, filename, "-error.out");
  }
  pthread_mutex_unlock(&p->mu);
  if (*out) return 1;
  free(*fail);
  *fail = NULL;
  return 0;
}
