/*
 * feature.c: the OSML "current" feature schema, written once for all models.
 *
 * Features are written with printf-style appends rather than built as json-c
 * trees: a flood of 500 boxes per tile at a thousand invocations a second
 * should not spend its time allocating JSON nodes.  Every value written is a
 * number or one of our own constant strings, so no escaping is needed.
 */
#include "models/model_impl.h"

#include <stdio.h>

void ep_features_begin(asd_buf *out) { asd_buf_append_str(out, "{\"type\":\"FeatureCollection\",\"features\":["); }

void ep_features_end(asd_buf *out) { asd_buf_append_str(out, "]}"); }

static void append_number(asd_buf *out, double v) {
  /* Integers print as integers; fractions keep 3 decimals (sub-pixel). */
  if (v == (double)(long long)v) asd_buf_appendf(out, "%lld", (long long)v);
  else asd_buf_appendf(out, "%.3f", v);
}

void ep_feature_append(asd_buf *out, int first, const double bbox[4], const double *ring,
                        int ring_points, const char *iri, double score, const char *model_name) {
  unsigned char rnd[16];
  char id[33];
  for (int i = 0; i < 2; i++) {
    uint64_t r = asd_random_u64();
    for (int j = 0; j < 8; j++) rnd[i * 8 + j] = (unsigned char)(r >> (8 * j));
  }
  asd_hex_encode(rnd, 16, id);
  if (!first) asd_buf_append_str(out, ",");
  asd_buf_appendf(out,
                  "{\"type\":\"Feature\",\"id\":\"%s\",\"geometry\":null,\"properties\":{"
                  "\"imageGeometry\":{\"type\":\"Polygon\",\"coordinates\":[[",
                  id);
  if (ring && ring_points >= 4) {
    for (int i = 0; i < ring_points; i++) {
      asd_buf_append_str(out, i ? ",[" : "[");
      append_number(out, ring[2 * i]);
      asd_buf_append_str(out, ",");
      append_number(out, ring[2 * i + 1]);
      asd_buf_append_str(out, "]");
    }
  } else {
    const double xs[5] = {bbox[0], bbox[2], bbox[2], bbox[0], bbox[0]};
    const double ys[5] = {bbox[1], bbox[1], bbox[3], bbox[3], bbox[1]};
    for (int i = 0; i < 5; i++) {
      asd_buf_append_str(out, i ? ",[" : "[");
      append_number(out, xs[i]);
      asd_buf_append_str(out, ",");
      append_number(out, ys[i]);
      asd_buf_append_str(out, "]");
    }
  }
  asd_buf_append_str(out, "]]},\"imageBBox\":[");
  for (int i = 0; i < 4; i++) {
    if (i) asd_buf_append_str(out, ",");
    append_number(out, bbox[i]);
  }
  asd_buf_appendf(out,
                  "],\"featureClasses\":[{\"iri\":\"%s\",\"score\":%.4f}],"
                  "\"modelMetadata\":{\"modelName\":\"%s\",\"ontologyName\":\"%s\","
                  "\"ontologyVersion\":\"1.0.0\"}}}",
                  iri, score, model_name, model_name);
}
