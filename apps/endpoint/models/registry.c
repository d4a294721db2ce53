/*
 * registry.c: model lookup by name, the shared output helpers and the
 * custom-attributes parser.
 *
 * The runtime holds one ep_model per endpoint and may run another built-in
 * model for a single request when its custom attributes carry
 * model_selection=NAME, as the OSML model containers allow.  Built-in models
 * are plain functions without state, so a lookup costs nothing; only the
 * http:// forwarding model keeps state (its base URL).
 */
#include "models/model_impl.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gdal.h>

struct ep_model {
  char name[256];
  ep_model_run_fn run;
  void *state;
  void (*free_state)(void *);
};

static const struct {
  const char *name;
  ep_model_run_fn run;
} builtin_models[] = {
    {"centerpoint", ep_model_centerpoint_run},
    {"flood", ep_model_flood_run},
    {"failure", ep_model_failure_run},
    {"blobs", ep_model_blobs_run},
};

static pthread_once_t gdal_once = PTHREAD_ONCE_INIT;
static void gdal_init_once(void) { GDALAllRegister(); }
void ep_models_gdal_init(void) { pthread_once(&gdal_once, gdal_init_once); }

void ep_model_output_init(ep_model_output *out) {
  asd_buf_init(&out->body);
  out->content_type[0] = '\0';
  out->error[0] = '\0';
}

void ep_model_output_free(ep_model_output *out) { asd_buf_free(&out->body); }

int ep_model_fail(ep_model_output *out, const char *model, const char *fmt, ...) {
  char msg[448];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  snprintf(out->error, sizeof(out->error), "%s: %s", model, msg);
  asd_buf_reset(&out->body);
  asd_buf_append_str(&out->body, out->error);
  asd_buf_append_str(&out->body, "\n");
  snprintf(out->content_type, sizeof(out->content_type), "text/plain");
  return -1;
}

int ep_model_is_builtin(const char *name) {
  for (size_t i = 0; i < sizeof(builtin_models) / sizeof(builtin_models[0]); i++)
    if (strcmp(name, builtin_models[i].name) == 0) return 1;
  return 0;
}

ep_model *ep_model_new(const char *name, char *err, size_t err_len) {
  if (!name || !*name) {
    snprintf(err, err_len, "empty model name");
    return NULL;
  }
  ep_models_gdal_init();
  ep_model *m = calloc(1, sizeof(*m));
  if (!m) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  snprintf(m->name, sizeof(m->name), "%s", name);
  for (size_t i = 0; i < sizeof(builtin_models) / sizeof(builtin_models[0]); i++) {
    if (strcmp(name, builtin_models[i].name) == 0) {
      m->run = builtin_models[i].run;
      return m;
    }
  }
  if (strncasecmp(name, "http://", 7) == 0) {
    m->state = ep_model_http_new(name, err, err_len);
    if (!m->state) {
      free(m);
      return NULL;
    }
    m->run = ep_model_http_run;
    m->free_state = ep_model_http_free;
    return m;
  }
  snprintf(err, err_len,
           "unknown model '%s' (expected centerpoint, flood, failure, blobs or http://HOST:PORT)", name);
  free(m);
  return NULL;
}

void ep_model_free(ep_model *m) {
  if (!m) return;
  if (m->free_state) m->free_state(m->state);
  free(m);
}

const char *ep_model_name(const ep_model *m) { return m->name; }

int ep_model_invoke(ep_model *m, const ep_model_input *in, ep_model_output *out) {
  asd_buf_reset(&out->body);
  out->error[0] = '\0';
  out->content_type[0] = '\0';
  int rc = m->run(m->state, in, out);
  if (rc != 0 && out->error[0] == '\0') ep_model_fail(out, m->name, "model failed");
  if (rc == 0 && out->content_type[0] == '\0')
    snprintf(out->content_type, sizeof(out->content_type), "application/json");
  return rc == 0 ? 0 : -1;
}

int ep_custom_attribute(const char *attrs, const char *key, char *value, size_t value_len) {
  if (!attrs || !key) return 0;
  size_t klen = strlen(key);
  const char *p = attrs;
  while (*p) {
    while (*p == ' ' || *p == ',' || *p == ';') p++;
    const char *start = p;
    while (*p && *p != ',' && *p != ';') p++;
    const char *end = p;
    const char *eq = memchr(start, '=', (size_t)(end - start));
    if (eq) {
      const char *kend = eq;
      while (kend > start && kend[-1] == ' ') kend--;
      if ((size_t)(kend - start) == klen && strncmp(start, key, klen) == 0) {
        const char *v = eq + 1;
        while (v < end && *v == ' ') v++;
        const char *vend = end;
        while (vend > v && vend[-1] == ' ') vend--;
        size_t n = (size_t)(vend - v);
        if (value_len) {
          if (n >= value_len) n = value_len - 1;
          memcpy(value, v, n);
          value[n] = '\0';
        }
        return 1;
      }
    }
  }
  return 0;
}
