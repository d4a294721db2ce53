/*
 * centerpoint.c: the OSML "centerpoint" test model.
 *
 * It decodes the tile only to learn its size and answers one detection at
 * the centre, the box reaching 10% of the width and height on each side of
 * the centre (BBOX_PERCENTAGE = 0.1 in OSML), class "sample_object", score
 * 1.0.  Because the answer depends on nothing but the tile size, it is the
 * model of choice for checking tiling and georeferencing end to end, and,
 * with zero latency, for measuring the throughput of the async machinery.
 * Bytes GDAL cannot decode are a model error, as in OSML.
 */
#include "models/model_impl.h"

int ep_model_centerpoint_run(void *state, const ep_model_input *in, ep_model_output *out) {
  (void)state;
  int w = 0, h = 0;
  char err[384];
  if (ep_decode_size(in->data, in->len, &w, &h, err, sizeof(err)) != 0)
    return ep_model_fail(out, "centerpoint", "%s", err);
  double cx = w / 2.0, cy = h / 2.0, dx = w * 0.1, dy = h * 0.1;
  double bbox[4] = {cx - dx, cy - dy, cx + dx, cy + dy};
  ep_features_begin(&out->body);
  ep_feature_append(&out->body, 1, bbox, NULL, 0, "sample_object", 1.0, "centerpoint");
  ep_features_end(&out->body);
  return 0;
}
