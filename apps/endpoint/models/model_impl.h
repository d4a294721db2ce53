/*
 * model_impl.h: what the model files in models/ share (not a public API).
 *
 * Every built-in model is a function with the same signature; the registry
 * (registry.c) picks one by name.  decode.c turns tile bytes into pixels
 * with GDAL; feature.c writes the OSML "current" feature schema so that all
 * models emit exactly the same shape.
 */
#ifndef ASD_ENDPOINT_MODEL_IMPL_H
#define ASD_ENDPOINT_MODEL_IMPL_H

#include "models.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The run function of a model; state is the model's own (NULL for most). */
typedef int (*ep_model_run_fn)(void *state, const ep_model_input *in, ep_model_output *out);

int ep_model_centerpoint_run(void *state, const ep_model_input *in, ep_model_output *out);
int ep_model_flood_run(void *state, const ep_model_input *in, ep_model_output *out);
int ep_model_failure_run(void *state, const ep_model_input *in, ep_model_output *out);
int ep_model_blobs_run(void *state, const ep_model_input *in, ep_model_output *out);

/* http://HOST:PORT forwarding: state is created from the URL. */
void *ep_model_http_new(const char *url, char *err, size_t err_len);
void ep_model_http_free(void *state);
int ep_model_http_run(void *state, const ep_model_input *in, ep_model_output *out);

/* Sets out->error to "model: message" and the error payload to the same line. Returns -1. */
int ep_model_fail(ep_model_output *out, const char *model, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Calls GDALAllRegister() once for the process. */
void ep_models_gdal_init(void);

/*
 * Opens the payload with GDAL (from /vsimem/, without copying it) and gives
 * its size.  Returns 0, or -1 with a reason in err.
 */
int ep_decode_size(const unsigned char *data, size_t len, int *width, int *height, char *err,
                    size_t err_len);

/*
 * Decodes the payload into 8-bit interleaved RGB (malloc'd, width*height*3
 * bytes).  The first three bands are used; a one- or two-band image has its
 * first band replicated.  Non-byte data is read as floating point and, when
 * it leaves [0,255], stretched linearly from its min..max to 0..255.
 * Returns NULL with a reason in err.
 */
unsigned char *ep_decode_rgb(const unsigned char *data, size_t len, int *width, int *height,
                              char *err, size_t err_len);

/* Feature writing (OSML current schema). */
void ep_features_begin(asd_buf *out);
void ep_features_end(asd_buf *out);
/*
 * Appends one feature: geometry null, a random hex id, properties
 * imageGeometry (Polygon from ring, or the bbox as a polygon when ring is
 * NULL), imageBBox, featureClasses [{iri, score}] and modelMetadata.
 * first: 1 for the first feature of the collection (no leading comma).
 */
void ep_feature_append(asd_buf *out, int first, const double bbox[4], const double *ring,
                        int ring_points, const char *iri, double score, const char *model_name);

#ifdef __cplusplus
}
#endif

#endif
