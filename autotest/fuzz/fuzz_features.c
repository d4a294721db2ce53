/*
 * fuzz_features.c: the model-output parser (tiler/features.c), both OSML
 * schemas.
 *
 * The input is the document a model returned, as bytes.  It is parsed twice:
 * for a 512 x 512 tile at (1024, 512), which exercises the out-of-tile
 * rejection and the clipping, and with no window (w = h = 0), which does
 * not clip.  Beyond "does not crash", every promise asd_features.h makes
 * about an accepted detection is checked: a finite, ordered box inside the
 * tile window, a ring of the documented shape for its kind, a class and a
 * normalised class list that is valid JSON, counts that add up, and a
 * failed document that appended nothing.
 */
#include <json-c/json.h>
#include <math.h>
#include <string.h>

#include "asyncdetect/asd_features.h"
#include "fuzz_target.h"

/* Clipping interpolates; allow the rounding of one multiplication. */
static int within(double v, double lo, double hi) {
  double eps = 1e-9 * (1.0 + fabs(lo) + fabs(hi));
  return v >= lo - eps && v <= hi + eps;
}

static void check_detection(const asd_detection *d, const asd_tile_ref *t) {
  FUZZ_CHECK(isfinite(d->minx) && isfinite(d->miny) && isfinite(d->maxx) && isfinite(d->maxy));
  FUZZ_CHECK(d->minx <= d->maxx && d->miny <= d->maxy);
  FUZZ_CHECK(isfinite(d->score) && isfinite(d->raw_score));
  FUZZ_CHECK(d->class_iri != NULL && d->classes_json != NULL);
  json_object *cj = json_tokener_parse(d->classes_json);
  FUZZ_CHECK(cj != NULL && json_object_is_type(cj, json_type_array));
  json_object_put(cj);
  if (d->model_metadata_json) {
    json_object *mm = json_tokener_parse(d->model_metadata_json);
    FUZZ_CHECK(mm != NULL);
    json_object_put(mm);
  }
  switch (d->kind) {
  case ASD_GEOM_BOX: FUZZ_CHECK(d->ring == NULL && d->ring_len == 0); break;
  case ASD_GEOM_POINT: FUZZ_CHECK(d->ring != NULL && d->ring_len == 1); break;
  case ASD_GEOM_POLYGON:
    FUZZ_CHECK(d->ring != NULL && d->ring_len >= 4);
    FUZZ_CHECK(d->ring[0].x == d->ring[d->ring_len - 1].x && d->ring[0].y == d->ring[d->ring_len - 1].y);
    break;
  default: FUZZ_CHECK(!"unknown geometry kind");
  }
  for (size_t i = 0; i < d->ring_len; i++) FUZZ_CHECK(isfinite(d->ring[i].x) && isfinite(d->ring[i].y));
  if (t->w > 0 && t->h > 0) {
    FUZZ_CHECK(within(d->minx, t->x, t->x + t->w) && within(d->maxx, t->x, t->x + t->w));
    FUZZ_CHECK(within(d->miny, t->y, t->y + t->h) && within(d->maxy, t->y, t->y + t->h));
    for (size_t i = 0; i < d->ring_len; i++)
      FUZZ_CHECK(within(d->ring[i].x, t->x, t->x + t->w) && within(d->ring[i].y, t->y, t->y + t->h));
  }
  char *wkt = asd_detection_wkt(d);
  FUZZ_CHECK(wkt != NULL);
  free(wkt);
  asd_detection copy;
  FUZZ_CHECK(asd_detection_copy(&copy, d) == 0);
  asd_detection_clear(&copy);
}

static void parse_once(const uint8_t *data, size_t size, const asd_tile_ref *t) {
  asd_detections v;
  asd_detections_init(&v);
  asd_parse_report rep;
  asd_parse_options opt;
  asd_parse_options_init(&opt);
  /* Small limits so that the fuzzer reaches them with small inputs. */
  opt.max_features = 64;
  opt.max_vertices = 64;
  asd_parse_status st = asd_features_parse((const char *)data, size, t, &opt, &v, &rep);
  FUZZ_CHECK(memchr(rep.message, '\0', sizeof rep.message) != NULL);
  if (st != ASD_PARSE_OK) {
    FUZZ_CHECK(v.count == 0);
    FUZZ_CHECK(rep.message[0] != '\0');
  } else {
    FUZZ_CHECK(rep.accepted == v.count);
    FUZZ_CHECK(rep.accepted + rep.rejected == rep.features);
    size_t sum = 0;
    for (int i = 0; i < ASD_REJECT_REASON_COUNT; i++) sum += rep.by_reason[i];
    FUZZ_CHECK(sum == rep.rejected);
    FUZZ_CHECK(rep.clipped <= rep.accepted);
    for (size_t i = 0; i < v.count; i++) check_detection(&v.items[i], t);
  }
  char line[512];
  asd_parse_report_format(&rep, line, sizeof line);
  asd_detections_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  asd_tile_ref t;
  memset(&t, 0, sizeof t);
  t.index = 3;
  t.x = 1024;
  t.y = 512;
  t.w = 512;
  t.h = 512;
  t.inference_id = "fuzz";
  parse_once(data, size, &t);
  t.w = t.h = 0;
  parse_once(data, size, &t);
  return 0;
}
