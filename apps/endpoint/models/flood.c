/*
 * flood.c: the OSML "flood" test model: many random boxes per tile.
 *
 * It exists to stress whatever consumes detections (parsing, merging,
 * writing) with volume.  As in OSML each box reaches ceil(10%) of the tile
 * size on each side of a random centre kept inside the tile, and carries a
 * random score.  The volume defaults to OSML's FLOOD_VOLUME (500) and can be
 * set per request with the custom attribute flood_volume=N (0..100000).
 */
#include "models/model_impl.h"

#include <math.h>
#include <stdlib.h>

int ep_model_flood_run(void *state, const ep_model_input *in, ep_model_output *out) {
  (void)state;
  int w = 0, h = 0;
  char err[384];
  if (ep_decode_size(in->data, in->len, &w, &h, err, sizeof(err)) != 0)
    return ep_model_fail(out, "flood", "%s", err);
  long volume = 500;
  char value[32];
  if (ep_custom_attribute(in->custom_attributes, "flood_volume", value, sizeof(value))) {
    char *end = NULL;
    volume = strtol(value, &end, 10);
    if (end == value || *end != '\0' || volume < 0 || volume > 100000)
      return ep_model_fail(out, "flood", "flood_volume=%s is not an integer in 0..100000", value);
  }
  int sx = (int)ceil(w * 0.1), sy = (int)ceil(h * 0.1);
  ep_features_begin(&out->body);
  for (long i = 0; i < volume; i++) {
    /* Centres stay at least one half-size inside the tile when it is big
     * enough; tiny tiles get centres anywhere. */
    int spanx = w - 2 * sx, spany = h - 2 * sy;
    double cx = spanx > 0 ? sx + (double)(asd_random_u64() % (uint64_t)spanx) : asd_random_uniform() * w;
    double cy = spany > 0 ? sy + (double)(asd_random_u64() % (uint64_t)spany) : asd_random_uniform() * h;
    double bbox[4] = {cx - sx, cy - sy, cx + sx, cy + sy};
    ep_feature_append(&out->body, i == 0, bbox, NULL, 0, "sample_object", asd_random_uniform(), "flood");
  }
  ep_features_end(&out->body);
  return 0;
}
