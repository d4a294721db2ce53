/*
 * models.h: the models the local endpoint runs.
 *
 * A model takes the raw payload of an invocation (tile bytes in any format
 * GDAL reads) plus the request's content type, accept and custom attributes,
 * and produces either an output body (a GeoJSON FeatureCollection for the
 * built-in models) or an error payload.  The runtime writes the first as
 * <uuid>.out and the second as <uuid>-error.out (or answers 424 ModelError
 * on a synchronous invocation).
 *
 * Built-in models, one file each in models/:
 *   centerpoint  one box at the tile centre (+/-10% of the size), score 1.0
 *   flood        N random boxes, +/-10% of the size, random scores (custom
 *                attribute flood_volume=N, default 500 as OSML's FLOOD_VOLUME)
 *   failure      always fails
 *   blobs        decodes the tile with GDAL, thresholds max(R,G,B), labels
 *                8-connected components and reports one feature per object
 *                (building / vehicle by colour), see models/blobs.c
 *   http://HOST:PORT  forwards to a SageMaker-compatible model container
 *                (GET /ping, POST /invocations)
 * The custom attribute model_selection=NAME picks another built-in model
 * for one request.
 *
 * Models are stateless and thread-safe: one ep_model serves every worker.
 */
#ifndef ASD_ENDPOINT_MODELS_H
#define ASD_ENDPOINT_MODELS_H

#include <stddef.h>

#include "asyncdetect/asd_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ep_model_input {
  const unsigned char *data;
  size_t len;
  const char *content_type;      /* may be NULL */
  const char *accept;            /* may be NULL */
  const char *custom_attributes; /* may be NULL; "k=v,k=v" or "k=v;k=v" */
  const char *inference_id;      /* may be NULL */
  double timeout_s;              /* time left for the model, > 0 */
} ep_model_input;

typedef struct ep_model_output {
  asd_buf body;              /* output body, or error payload on failure */
  char content_type[128];    /* of body */
  char error[512];           /* one line on failure, "" on success */
} ep_model_output;

void ep_model_output_init(ep_model_output *out);
void ep_model_output_free(ep_model_output *out);

typedef struct ep_model ep_model;

/*
 * Creates a model by name ("centerpoint", "flood", "failure", "blobs" or
 * "http://HOST:PORT[/]").  Returns NULL with a reason in err.
 */
ep_model *ep_model_new(const char *name, char *err, size_t err_len);
void ep_model_free(ep_model *m);
const char *ep_model_name(const ep_model *m);
/* 1 when name names a built-in model (not http://). */
int ep_model_is_builtin(const char *name);

/*
 * Runs the model.  Returns 0 with out->body set, or -1 with out->error and
 * an error payload in out->body.  Never crashes on garbage input.
 */
int ep_model_invoke(ep_model *m, const ep_model_input *in, ep_model_output *out);

/*
 * Value of key in a custom-attributes string ("k=v,k2=v2", ';' also
 * separates), copied into value.  Returns 1 when found, 0 when not.
 */
int ep_custom_attribute(const char *attrs, const char *key, char *value, size_t value_len);

/* ----------------------------------------------------- blobs, exposed for tests */

typedef struct ep_blobs_params {
  int threshold;   /* a pixel is foreground when max(R,G,B) > threshold (170) */
  int min_pixels;  /* components smaller than this are dropped (12) */
  int vehicle_rb;  /* mean(R) - mean(B) > vehicle_rb -> vehicle (60) */
} ep_blobs_params;

void ep_blobs_params_init(ep_blobs_params *p);

/*
 * Detects blobs in an 8-bit interleaved RGB image (3 bytes per pixel, rows
 * of width*3 bytes) and appends a FeatureCollection to out.  Returns the
 * number of features, -1 when memory runs out.
 */
int ep_blobs_detect_rgb(const unsigned char *rgb, int width, int height,
                         const ep_blobs_params *p, asd_buf *out);

#ifdef __cplusplus
}
#endif

#endif /* ASD_ENDPOINT_MODELS_H */
