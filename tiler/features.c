/*
 * features.c: from a model's FeatureCollection to detections in image pixels.
 *
 * The model behind a SageMaker endpoint answers each tile with GeoJSON whose
 * interesting content is not the geometry (null, or a placeholder) but the
 * properties, and those come in two generations of the OSML schema.  The
 * current one gives imageGeometry (a GeoJSON Point or Polygon in tile
 * pixels), imageBBox and featureClasses [{iri, score, rawScore}]; the legacy
 * one gives geom_imcoords (a bare ring), bounds_imcoords, feature_types
 * {class: score} and detection_score.  Models in the field mix the two, so
 * each property is looked up in order of preference, independently.
 *
 * The parser trusts nothing.  The document comes from a container we do not
 * control, through S3, and may be truncated, enormous, or simply wrong.  The
 * rules are therefore:
 *
 *   - The size of the text and the number of features are checked before
 *     any work that scales with them, and a document over a limit is refused
 *     as a whole with one line naming the limit (a silent truncation would
 *     lose detections without anybody noticing).
 *   - A single bad feature (wrong types, NaN or infinite numbers, absurd
 *     coordinates, no score, entirely outside the tile) is skipped and
 *     counted under its reason.  One broken feature never costs the tile.
 *   - A feature reaching past the tile window is clipped to it: the model
 *     saw only the tile, so anything outside is invention.  Polygons are
 *     clipped with Sutherland-Hodgman against the window rectangle, which is
 *     exact for a convex clip region such as a rectangle.
 *
 * Coordinates are moved from tile pixels to full-image pixels by adding the
 * tile window's origin; nothing else about the geometry changes here (the
 * georeferencer maps image pixels to the world later).
 *
 * The normalised class list (classes_json) is always written in the current
 * schema, so that the writer can emit OSML-compatible featureClasses whatever
 * the model spoke.
 */
#include "asyncdetect/asd_features.h"

#include <ctype.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asyncdetect/asd_common.h"

/* Coordinates beyond this are not pixel coordinates of any real tile. */
#define ASD_MAX_ABS_COORD 1e9
/* Deep enough for a FeatureCollection with MultiPolygon geometries and nested metadata. */
#define ASD_JSON_MAX_DEPTH 64

/* ------------------------------------------------------------------------ */
/* Detections and their container                                           */
/* ------------------------------------------------------------------------ */

const char *asd_geom_kind_name(asd_geom_kind k) {
  switch (k) {
  case ASD_GEOM_BOX: return "box";
  case ASD_GEOM_POINT: return "point";
  case ASD_GEOM_POLYGON: return "polygon";
  }
  return "unknown";
}

void asd_detection_clear(asd_detection *d) {
  if (!d) return;
  free(d->ring);
  free(d->class_iri);
  free(d->classes_json);
  free(d->model_metadata_json);
  free(d->inference_id);
  memset(d, 0, sizeof(*d));
}

static int dup_str(char **dst, const char *src) {
  *dst = NULL;
  if (!src) return 0;
  *dst = strdup(src);
  return *dst ? 0 : -1;
}

int asd_detection_copy(asd_detection *dst, const asd_detection *src) {
  *dst = *src;
  dst->ring = NULL;
  dst->class_iri = dst->classes_json = dst->model_metadata_json = dst->inference_id = NULL;
  if (src->ring_len) {
    dst->ring = malloc(src->ring_len * sizeof(asd_point));
    if (!dst->ring) goto oom;
    memcpy(dst->ring, src->ring, src->ring_len * sizeof(asd_point));
  }
  if (dup_str(&dst->class_iri, src->class_iri) || dup_str(&dst->classes_json, src->classes_json) ||
      dup_str(&dst->model_metadata_json, src->model_metadata_json) ||
      dup_str(&dst->inference_id, src->inference_id))
    goto oom;
  return 0;
oom:
  asd_detection_clear(dst);
  return -1;
}

void asd_detection_center(const asd_detection *d, double *x, double *y) {
  if (x) *x = 0.5 * (d->minx + d->maxx);
  if (y) *y = 0.5 * (d->miny + d->maxy);
}

char *asd_detection_wkt(const asd_detection *d) {
  asd_buf b;
  asd_buf_init(&b);
  int rc = 0;
  if (d->kind == ASD_GEOM_POINT && d->ring_len >= 1) {
    rc |= asd_buf_appendf(&b, "POINT (%.15g %.15g)", d->ring[0].x, d->ring[0].y);
  } else if (d->kind == ASD_GEOM_POLYGON && d->ring_len >= 4) {
    rc |= asd_buf_append_str(&b, "POLYGON ((");
    for (size_t i = 0; i < d->ring_len; i++)
      rc |= asd_buf_appendf(&b, "%s%.15g %.15g", i ? "," : "", d->ring[i].x, d->ring[i].y);
    rc |= asd_buf_append_str(&b, "))");
  } else {
    rc |= asd_buf_appendf(&b, "POLYGON ((%.15g %.15g,%.15g %.15g,%.15g %.15g,%.15g %.15g,%.15g %.15g))",
                          d->minx, d->miny, d->maxx, d->miny, d->maxx, d->maxy, d->minx, d->maxy,
                          d->minx, d->miny);
  }
  if (rc) {
    asd_buf_free(&b);
    return NULL;
  }
  return (char *)asd_buf_take(&b, NULL);
}

void asd_detections_init(asd_detections *v) { memset(v, 0, sizeof(*v)); }

static int detections_reserve(asd_detections *v, size_t extra) {
  if (v->count + extra <= v->cap) return 0;
  size_t cap = v->cap ? v->cap : 16;
  while (cap < v->count + extra) cap *= 2;
  asd_detection *n = realloc(v->items, cap * sizeof(asd_detection));
  if (!n) return -1;
  v->items = n;
  v->cap = cap;
  return 0;
}

int asd_detections_push(asd_detections *v, asd_detection *d) {
  if (detections_reserve(v, 1)) return -1;
  v->items[v->count++] = *d;
  memset(d, 0, sizeof(*d));
  return 0;
}

int asd_detections_move_all(asd_detections *dst, asd_detections *src) {
  if (!src->count) return 0;
  if (detections_reserve(dst, src->count)) return -1;
  memcpy(dst->items + dst->count, src->items, src->count * sizeof(asd_detection));
  dst->count += src->count;
  src->count = 0;
  return 0;
}

void asd_detections_reset(asd_detections *v) {
  for (size_t i = 0; i < v->count; i++) asd_detection_clear(&v->items[i]);
  v->count = 0;
}

void asd_detections_free(asd_detections *v) {
  asd_detections_reset(v);
  free(v->items);
  memset(v, 0, sizeof(*v));
}

/* ------------------------------------------------------------------------ */
/* Options, reasons, statuses                                               */
/* ------------------------------------------------------------------------ */

void asd_parse_options_init(asd_parse_options *o) {
  o->max_bytes = asd_max_result_bytes();
  o->max_features = 1000000;
  o->max_vertices = 100000;
  o->tolerance = 0.5;
}

const char *asd_reject_reason_name(asd_reject_reason r) {
  switch (r) {
  case ASD_REJECT_NOT_A_FEATURE: return "not_a_feature";
  case ASD_REJECT_NO_GEOMETRY: return "no_geometry";
  case ASD_REJECT_BAD_GEOMETRY: return "bad_geometry";
  case ASD_REJECT_BAD_NUMBER: return "bad_number";
  case ASD_REJECT_BAD_SCORE: return "bad_score";
  case ASD_REJECT_OUT_OF_TILE: return "out_of_tile";
  case ASD_REJECT_TOO_MANY_VERTICES: return "too_many_vertices";
  case ASD_REJECT_TOO_LARGE: return "too_large";
  case ASD_REJECT_REASON_COUNT: break;
  }
  return "unknown";
}

const char *asd_parse_report_format(const asd_parse_report *r, char *buf, size_t len) {
  if (!buf || !len) return buf;
  size_t n = (size_t)snprintf(buf, len, "%zu features: %zu accepted", r->features, r->accepted);
  if (r->clipped && n < len) n += (size_t)snprintf(buf + n, len - n, " (%zu clipped)", r->clipped);
  if (r->rejected && n < len) {
    n += (size_t)snprintf(buf + n, len - n, ", %zu skipped (", r->rejected);
    const char *sep = "";
    for (int i = 0; i < ASD_REJECT_REASON_COUNT && n < len; i++) {
      if (!r->by_reason[i]) continue;
      n += (size_t)snprintf(buf + n, len - n, "%s%s %zu", sep, asd_reject_reason_name((asd_reject_reason)i),
                            r->by_reason[i]);
      sep = ", ";
    }
    if (n < len) snprintf(buf + n, len - n, ")");
  }
  return buf;
}

const char *asd_parse_status_name(asd_parse_status s) {
  switch (s) {
  case ASD_PARSE_OK: return "ok";
  case ASD_PARSE_ERR_TOO_LARGE: return "too_large";
  case ASD_PARSE_ERR_JSON: return "not_json";
  case ASD_PARSE_ERR_SCHEMA: return "not_a_feature_collection";
  case ASD_PARSE_ERR_NOMEM: return "out_of_memory";
  }
  return "unknown";
}

/* ------------------------------------------------------------------------ */
/* Reading JSON values defensively                                          */
/* ------------------------------------------------------------------------ */

/* Internal result of parsing one feature: a reject reason, or one of these. */
#define FEAT_OK (-1)
#define FEAT_NOMEM (-2)

/* A number: 0, FEAT type error -> ASD_REJECT_BAD_GEOMETRY-ish is decided by callers. */
enum { NUM_OK = 0, NUM_NOT_NUMBER = 1, NUM_NOT_FINITE = 2 };

static int get_number(json_object *o, double *v) {
  enum json_type t = json_object_get_type(o);
  if (t != json_type_double && t != json_type_int) return NUM_NOT_NUMBER;
  double x = json_object_get_double(o);
  if (!isfinite(x)) return NUM_NOT_FINITE;
  *v = x;
  return NUM_OK;
}

/* A coordinate: a finite number no further than ASD_MAX_ABS_COORD from 0. */
static int get_coord(json_object *o, double *v) {
  int rc = get_number(o, v);
  if (rc == NUM_NOT_NUMBER) return ASD_REJECT_BAD_GEOMETRY;
  if (rc == NUM_NOT_FINITE || fabs(*v) > ASD_MAX_ABS_COORD) return ASD_REJECT_BAD_NUMBER;
  return FEAT_OK;
}

static json_object *get_key(json_object *o, const char *key) {
  json_object *v = NULL;
  if (!json_object_is_type(o, json_type_object)) return NULL;
  if (!json_object_object_get_ex(o, key, &v)) return NULL;
  return v; /* NULL as well for a JSON null */
}

/* [x, y(, z...)] -> point. */
static int get_position(json_object *a, asd_point *p) {
  if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) < 2)
    return ASD_REJECT_BAD_GEOMETRY;
  int rc = get_coord(json_object_array_get_idx(a, 0), &p->x);
  if (rc != FEAT_OK) return rc;
  return get_coord(json_object_array_get_idx(a, 1), &p->y);
}

/*
 * An array of positions -> a closed ring of at least 4 points (3 distinct
 * corners).  The ring is closed here when the model left it open.
 */
static int get_ring(json_object *a, const asd_parse_options *opt, asd_point **ring,
                    size_t *len) {
  *ring = NULL;
  *len = 0;
  if (!json_object_is_type(a, json_type_array)) return ASD_REJECT_BAD_GEOMETRY;
  size_t n = json_object_array_length(a);
  if (n > opt->max_vertices) return ASD_REJECT_TOO_MANY_VERTICES;
  if (n < 3) return ASD_REJECT_BAD_GEOMETRY;
  asd_point *r = malloc((n + 1) * sizeof(asd_point));
  if (!r) return FEAT_NOMEM;
  for (size_t i = 0; i < n; i++) {
    int rc = get_position(json_object_array_get_idx(a, i), &r[i]);
    if (rc != FEAT_OK) {
      free(r);
      return rc;
    }
  }
  if (r[0].x != r[n - 1].x || r[0].y != r[n - 1].y) r[n++] = r[0];
  if (n < 4) {
    free(r);
    return ASD_REJECT_BAD_GEOMETRY;
  }
  *ring = r;
  *len = n;
  return FEAT_OK;
}

/* [minx, miny, maxx, maxy] with min <= max. */
static int get_bbox(json_object *a, double b[4]) {
  if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 4)
    return ASD_REJECT_BAD_GEOMETRY;
  for (size_t i = 0; i < 4; i++) {
    int rc = get_coord(json_object_array_get_idx(a, i), &b[i]);
    if (rc != FEAT_OK) return rc;
  }
  if (b[0] > b[2] || b[1] > b[3]) return ASD_REJECT_BAD_GEOMETRY;
  return FEAT_OK;
}

static double ring_bbox_area(const asd_point *r, size_t n) {
  double x0 = r[0].x, x1 = r[0].x, y0 = r[0].y, y1 = r[0].y;
  for (size_t i = 1; i < n; i++) {
    x0 = fmin(x0, r[i].x);
    x1 = fmax(x1, r[i].x);
    y0 = fmin(y0, r[i].y);
    y1 = fmax(y1, r[i].y);
  }
  return (x1 - x0) * (y1 - y0);
}

/* A GeoJSON geometry object (imageGeometry) -> kind + ring. */
static int get_geojson_geometry(json_object *g, const asd_parse_options *opt, asd_geom_kind *kind,
                                asd_point **ring, size_t *len) {
  json_object *type = get_key(g, "type");
  json_object *coords = get_key(g, "coordinates");
  if (!json_object_is_type(type, json_type_string) || !coords) return ASD_REJECT_BAD_GEOMETRY;
  const char *t = json_object_get_string(type);
  if (strcmp(t, "Point") == 0) {
    asd_point p;
    int rc = get_position(coords, &p);
    if (rc != FEAT_OK) return rc;
    *ring = malloc(sizeof(asd_point));
    if (!*ring) return FEAT_NOMEM;
    (*ring)[0] = p;
    *len = 1;
    *kind = ASD_GEOM_POINT;
    return FEAT_OK;
  }
  if (strcmp(t, "Polygon") == 0) {
    if (!json_object_is_type(coords, json_type_array) || json_object_array_length(coords) < 1)
      return ASD_REJECT_BAD_GEOMETRY;
    *kind = ASD_GEOM_POLYGON;
    return get_ring(json_object_array_get_idx(coords, 0), opt, ring, len);
  }
  if (strcmp(t, "MultiPolygon") == 0) {
    /* One detection has one outline: keep the largest part. */
    if (!json_object_is_type(coords, json_type_array) || json_object_array_length(coords) < 1)
      return ASD_REJECT_BAD_GEOMETRY;
    size_t nparts = json_object_array_length(coords);
    asd_point *best = NULL;
    size_t best_len = 0;
    double best_area = -1;
    for (size_t i = 0; i < nparts; i++) {
      json_object *poly = json_object_array_get_idx(coords, i);
      if (!json_object_is_type(poly, json_type_array) || json_object_array_length(poly) < 1) {
        free(best);
        return ASD_REJECT_BAD_GEOMETRY;
      }
      asd_point *r;
      size_t n;
      int rc = get_ring(json_object_array_get_idx(poly, 0), opt, &r, &n);
      if (rc != FEAT_OK) {
        free(best);
        return rc;
      }
      double area = ring_bbox_area(r, n);
      if (area > best_area) {
        free(best);
        best = r;
        best_len = n;
        best_area = area;
      } else {
        free(r);
      }
    }
    *ring = best;
    *len = best_len;
    *kind = ASD_GEOM_POLYGON;
    return FEAT_OK;
  }
  return ASD_REJECT_BAD_GEOMETRY; /* LineString and friends are not detections */
}

/*
 * Legacy geom_imcoords: a ring [[x,y],...], tolerated also as polygon
 * coordinates [[[x,y],...]], and as a point: [x,y] or [[x,y]].
 */
static int get_legacy_geometry(json_object *g, const asd_parse_options *opt, asd_geom_kind *kind,
                               asd_point **ring, size_t *len) {
  if (!json_object_is_type(g, json_type_array) || json_object_array_length(g) < 1)
    return ASD_REJECT_BAD_GEOMETRY;
  json_object *first = json_object_array_get_idx(g, 0);
  if (!json_object_is_type(first, json_type_array)) {
    asd_point p;
    int rc = get_position(g, &p);
    if (rc != FEAT_OK) return rc;
    *ring = malloc(sizeof(asd_point));
    if (!*ring) return FEAT_NOMEM;
    (*ring)[0] = p;
    *len = 1;
    *kind = ASD_GEOM_POINT;
    return FEAT_OK;
  }
  json_object *inner = json_object_array_get_idx(first, 0);
  if (json_object_is_type(inner, json_type_array)) g = first;
  if (json_object_array_length(g) == 1) {
    /* [[x, y]]: a point written as a one-point ring. */
    asd_point p;
    int rc = get_position(json_object_array_get_idx(g, 0), &p);
    if (rc != FEAT_OK) return rc;
    *ring = malloc(sizeof(asd_point));
    if (!*ring) return FEAT_NOMEM;
    (*ring)[0] = p;
    *len = 1;
    *kind = ASD_GEOM_POINT;
    return FEAT_OK;
  }
  *kind = ASD_GEOM_POLYGON;
  return get_ring(g, opt, ring, len);
}

/* ------------------------------------------------------------------------ */
/* Classes and scores                                                       */
/* ------------------------------------------------------------------------ */

typedef struct class_pick {
  const char *iri; /* borrowed from the JSON tree */
  double score, raw;
  int have;
  json_object *normalised; /* [{"iri","score"(,"rawScore")}] owned */
} class_pick;

/*
 * A JSON number written in its shortest exact form (0.97, not json-c's
 * default 0.96999999999999997), so classes read back as the model wrote them.
 */
static json_object *new_number(double v) {
  char buf[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof(buf), "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return json_object_new_double_s(v, buf);
}

static int add_class(class_pick *c, const char *iri, double score, const double *raw) {
  json_object *e = json_object_new_object();
  if (!e) return FEAT_NOMEM;
  json_object_object_add(e, "iri", json_object_new_string(iri));
  json_object_object_add(e, "score", new_number(score));
  if (raw) json_object_object_add(e, "rawScore", new_number(*raw));
  json_object_array_add(c->normalised, e);
  /* Strictly greater: on a tie the first listed class wins, as the model ordered them. */
  if (!c->have || score > c->score) {
    c->iri = iri;
    c->score = score;
    c->raw = raw ? *raw : score;
    c->have = 1;
  }
  return FEAT_OK;
}

static int get_classes(json_object *props, class_pick *c) {
  json_object *fc = get_key(props, "featureClasses");
  json_object *ft = get_key(props, "feature_types");
  if (fc) {
    if (!json_object_is_type(fc, json_type_array)) return ASD_REJECT_BAD_SCORE;
    size_t n = json_object_array_length(fc);
    for (size_t i = 0; i < n; i++) {
      json_object *e = json_object_array_get_idx(fc, i);
      json_object *iri = get_key(e, "iri");
      json_object *sc = get_key(e, "score");
      json_object *rs = get_key(e, "rawScore");
      double s, r;
      if (!json_object_is_type(iri, json_type_string) || !sc || get_number(sc, &s) != NUM_OK)
        return ASD_REJECT_BAD_SCORE;
      int have_raw = rs && get_number(rs, &r) == NUM_OK;
      if (rs && !have_raw) return ASD_REJECT_BAD_SCORE;
      int rc = add_class(c, json_object_get_string(iri), s, have_raw ? &r : NULL);
      if (rc != FEAT_OK) return rc;
    }
  } else if (ft) {
    if (!json_object_is_type(ft, json_type_object)) return ASD_REJECT_BAD_SCORE;
    json_object_object_foreach(ft, key, val) {
      double s;
      if (!val || get_number(val, &s) != NUM_OK) return ASD_REJECT_BAD_SCORE;
      int rc = add_class(c, key, s, NULL);
      if (rc != FEAT_OK) return rc;
    }
  }
  json_object *ds = get_key(props, "detection_score");
  if (ds) {
    double s;
    if (get_number(ds, &s) != NUM_OK) return ASD_REJECT_BAD_SCORE;
    if (!c->have) {
      /* A score without a class: an anonymous detection. */
      c->iri = "";
      c->score = c->raw = s;
      c->have = 1;
    }
  }
  return c->have ? FEAT_OK : ASD_REJECT_BAD_SCORE;
}

/* ------------------------------------------------------------------------ */
/* Clipping to the tile window                                              */
/* ------------------------------------------------------------------------ */

/* Keeps the side of the line where sign*(coord - v) <= 0; axis 0 = x, 1 = y. */
static size_t clip_half(const asd_point *in, size_t n, asd_point *out, int axis, double v,
                        int sign) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    asd_point a = in[i], b = in[(i + 1) % n];
    double ca = axis ? a.y : a.x, cb = axis ? b.y : b.x;
    int ina = sign * (ca - v) <= 0, inb = sign * (cb - v) <= 0;
    if (ina) out[m++] = a;
    if (ina != inb) {
      double t = (v - ca) / (cb - ca);
      asd_point p = {a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)};
      if (axis) p.y = v; else p.x = v;
      out[m++] = p;
    }
  }
  return m;
}

/*
 * Clips a closed ring to [0,w]x[0,h] (Sutherland-Hodgman).  The ring is
 * replaced; returns FEAT_OK, FEAT_NOMEM, or ASD_REJECT_OUT_OF_TILE when
 * nothing with area is left.
 */
static int clip_ring(asd_point **ring, size_t *len, double w, double h) {
  size_t n = *len - 1; /* open form */
  /* Each half-plane adds at most one vertex per edge crossing: 2n is ample. */
  size_t cap = 2 * n + 8;
  asd_point *a = malloc(cap * sizeof(asd_point)), *b = malloc(cap * sizeof(asd_point));
  if (!a || !b) {
    free(a);
    free(b);
    return FEAT_NOMEM;
  }
  memcpy(a, *ring, n * sizeof(asd_point));
  n = clip_half(a, n, b, 0, 0.0, -1);
  n = clip_half(b, n, a, 0, w, +1);
  n = clip_half(a, n, b, 1, 0.0, -1);
  n = clip_half(b, n, a, 1, h, +1);
  free(b);
  if (n < 3) {
    free(a);
    return ASD_REJECT_OUT_OF_TILE;
  }
  a[n++] = a[0];
  free(*ring);
  *ring = a;
  *len = n;
  return FEAT_OK;
}

/* ------------------------------------------------------------------------ */
/* One feature                                                              */
/* ------------------------------------------------------------------------ */

static int parse_feature(json_object *f, size_t seq, const asd_tile_ref *tile,
                         const asd_parse_options *opt, asd_detection *d, int *clipped) {
  memset(d, 0, sizeof(*d));
  *clipped = 0;
  if (!json_object_is_type(f, json_type_object)) return ASD_REJECT_NOT_A_FEATURE;
  json_object *props = get_key(f, "properties");
  if (!json_object_is_type(props, json_type_object)) return ASD_REJECT_NO_GEOMETRY;

  /* Geometry: the outline first, then the box; either suffices. */
  asd_geom_kind kind = ASD_GEOM_BOX;
  asd_point *ring = NULL;
  size_t len = 0;
  int rc = FEAT_OK;
  json_object *g = get_key(props, "imageGeometry");
  json_object *lg = get_key(props, "geom_imcoords");
  if (g)
    rc = get_geojson_geometry(g, opt, &kind, &ring, &len);
  else if (lg)
    rc = get_legacy_geometry(lg, opt, &kind, &ring, &len);
  if (rc != FEAT_OK) return rc;

  double bb[4];
  json_object *b = get_key(props, "imageBBox");
  if (!b) b = get_key(props, "bounds_imcoords");
  if (b) {
    rc = get_bbox(b, bb);
    if (rc != FEAT_OK) goto fail;
  } else if (ring) {
    bb[0] = bb[2] = ring[0].x;
    bb[1] = bb[3] = ring[0].y;
    for (size_t i = 1; i < len; i++) {
      bb[0] = fmin(bb[0], ring[i].x);
      bb[1] = fmin(bb[1], ring[i].y);
      bb[2] = fmax(bb[2], ring[i].x);
      bb[3] = fmax(bb[3], ring[i].y);
    }
  } else {
    rc = ASD_REJECT_NO_GEOMETRY;
    goto fail;
  }

  class_pick cp = {0};
  cp.normalised = json_object_new_array();
  if (!cp.normalised) {
    rc = FEAT_NOMEM;
    goto fail;
  }
  rc = get_classes(props, &cp);
  if (rc != FEAT_OK) {
    json_object_put(cp.normalised);
    goto fail;
  }

  /* The tile window, in tile pixels: [0,w] x [0,h]. */
  double w = tile ? tile->w : 0, h = tile ? tile->h : 0;
  if (w > 0 && h > 0) {
    int degenerate_x = bb[2] <= bb[0], degenerate_y = bb[3] <= bb[1];
    if (bb[2] < 0 || bb[0] > w || bb[3] < 0 || bb[1] > h || (!degenerate_x && (bb[2] <= 0 || bb[0] >= w)) ||
        (!degenerate_y && (bb[3] <= 0 || bb[1] >= h))) {
      json_object_put(cp.normalised);
      rc = ASD_REJECT_OUT_OF_TILE;
      goto fail;
    }
    double tol = opt->tolerance;
    if (bb[0] < -tol || bb[1] < -tol || bb[2] > w + tol || bb[3] > h + tol) *clipped = 1;
    bb[0] = fmax(bb[0], 0.0);
    bb[1] = fmax(bb[1], 0.0);
    bb[2] = fmin(bb[2], w);
    bb[3] = fmin(bb[3], h);
    if (kind == ASD_GEOM_POINT) {
      ring[0].x = fmin(fmax(ring[0].x, 0.0), w);
      ring[0].y = fmin(fmax(ring[0].y, 0.0), h);
    } else if (kind == ASD_GEOM_POLYGON) {
      int outside = 0;
      for (size_t i = 0; i < len && !outside; i++)
        outside = ring[i].x < 0 || ring[i].y < 0 || ring[i].x > w || ring[i].y > h;
      if (outside) {
        rc = clip_ring(&ring, &len, w, h);
        if (rc == FEAT_NOMEM) {
          json_object_put(cp.normalised);
          goto fail;
        }
        if (rc != FEAT_OK) {
          /* The outline left nothing inside but the box did: keep the box. */
          free(ring);
          ring = NULL;
          len = 0;
          kind = ASD_GEOM_BOX;
        }
      }
    }
  }

  /* Tile pixels -> image pixels. */
  double ox = tile ? tile->x : 0, oy = tile ? tile->y : 0;
  d->minx = bb[0] + ox;
  d->miny = bb[1] + oy;
  d->maxx = bb[2] + ox;
  d->maxy = bb[3] + oy;
  for (size_t i = 0; i < len; i++) {
    ring[i].x += ox;
    ring[i].y += oy;
  }
  d->kind = kind;
  d->ring = ring;
  d->ring_len = len;
  ring = NULL;
  d->score = cp.score;
  d->raw_score = cp.raw;
  d->class_iri = strdup(cp.iri);
  const char *cj = json_object_to_json_string_ext(cp.normalised, JSON_C_TO_STRING_PLAIN);
  d->classes_json = cj ? strdup(cj) : NULL;
  json_object_put(cp.normalised);
  json_object *mm = get_key(props, "modelMetadata");
  if (mm) {
    const char *mj = json_object_to_json_string_ext(mm, JSON_C_TO_STRING_PLAIN);
    d->model_metadata_json = mj ? strdup(mj) : NULL;
    if (!d->model_metadata_json) goto nomem;
  }
  if (tile) {
    d->tile_index = tile->index;
    d->tile_row = tile->row;
    d->tile_col = tile->col;
    if (tile->inference_id && !(d->inference_id = strdup(tile->inference_id))) goto nomem;
  }
  d->merged_count = 1;
  d->seq = seq;
  if (!d->class_iri || !d->classes_json) goto nomem;
  return FEAT_OK;

nomem:
  asd_detection_clear(d);
  return FEAT_NOMEM;
fail:
  free(ring);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Scanning the document without building it                                */
/* ------------------------------------------------------------------------ */

/*
 * json-c can only parse a whole document into a tree, and a tree costs
 * 30-70 times the text: a 64 MiB result of [0,0,0,...] took 2.2 GB.  So the
 * document is first walked by this validating scanner, which allocates
 * nothing: it checks the syntax (RFC 8259, plus the NaN and Infinity
 * literals json-c accepts, so that they reach the per-feature checks as
 * bad numbers), finds the extent of each value and counts the values in it.
 * Only one feature at a time is then handed to json-c, and only when its
 * value count is within a budget, so the memory a result can cost is its
 * text plus one feature's tree, whatever the text holds.
 */
typedef struct scanner {
  const char *s;
  size_t len, pos;
  size_t values;     /* values scanned so far */
  const char *error; /* static description of the first syntax error */
  size_t error_at;
} scanner;

static void skip_ws(scanner *sc) {
  while (sc->pos < sc->len) {
    char c = sc->s[sc->pos];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') break;
    sc->pos++;
  }
}

static int scan_fail(scanner *sc, const char *what) {
  if (!sc->error) {
    sc->error = sc->pos >= sc->len ? "truncated document" : what;
    sc->error_at = sc->pos;
  }
  return -1;
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

static int scan_string(scanner *sc) {
  sc->pos++; /* the opening quote */
  while (sc->pos < sc->len) {
    char c = sc->s[sc->pos++];
    if (c == '"') return 0;
    if (c != '\\') continue;
    if (sc->pos >= sc->len) break;
    c = sc->s[sc->pos++];
    if (c == 'u') {
      for (int i = 0; i < 4; i++, sc->pos++)
        if (sc->pos >= sc->len || !is_hex(sc->s[sc->pos])) return scan_fail(sc, "invalid \\u escape");
    } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
      sc->pos--;
      return scan_fail(sc, "invalid escape in a string");
    }
  }
  return scan_fail(sc, "truncated document");
}

/* A number, or one of the literals true, false, null, NaN, Infinity, -Infinity. */
static int scan_literal(scanner *sc) {
  size_t a = sc->pos;
  while (sc->pos < sc->len) {
    char c = sc->s[sc->pos];
    if (!isalnum((unsigned char)c) && c != '+' && c != '-' && c != '.') break;
    sc->pos++;
  }
  size_t n = sc->pos - a;
  const char *t = sc->s + a;
  /* Most values are numbers: the words are only compared when the token has a letter where a
     number has a digit (a result holds thousands of coordinates; this is most of a scan's time). */
  int word = n && (isalpha((unsigned char)t[0]) || (n > 1 && t[0] == '-' && isalpha((unsigned char)t[1])));
  static const char *const words[] = {"true", "false", "null", "NaN", "Infinity", "-Infinity", "-NaN"};
  for (size_t i = 0; word && i < sizeof words / sizeof words[0]; i++)
    if (n == strlen(words[i]) && strncasecmp(t, words[i], n) == 0) return 0;
  size_t i = 0;
  if (i < n && t[i] == '-') i++;
  size_t d = i;
  while (i < n && isdigit((unsigned char)t[i])) i++;
  if (i == d) goto bad;
  if (i < n && t[i] == '.') {
    i++;
    while (i < n && isdigit((unsigned char)t[i])) i++;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    if (i < n && (t[i] == '+' || t[i] == '-')) i++;
    d = i;
    while (i < n && isdigit((unsigned char)t[i])) i++;
    if (i == d) goto bad;
  }
  if (i == n && n > 0) return 0;
bad:
  sc->pos = a;
  return scan_fail(sc, n ? "invalid number or literal" : "unexpected character");
}

static int scan_value(scanner *sc, int depth);

/* An array or an object; the scanner stands on its opening bracket.  Counts its elements into
   *count when given. */
static int scan_container(scanner *sc, int depth, size_t *count) {
  char close = sc->s[sc->pos] == '[' ? ']' : '}';
  if (depth >= ASD_JSON_MAX_DEPTH) return scan_fail(sc, "nesting too deep");
  sc->pos++;
  skip_ws(sc);
  if (sc->pos < sc->len && sc->s[sc->pos] == close) {
    sc->pos++;
    return 0;
  }
  for (;;) {
    if (close == '}') {
      skip_ws(sc);
      if (sc->pos >= sc->len || sc->s[sc->pos] != '"') return scan_fail(sc, "expected a member name");
      if (scan_string(sc) != 0) return -1;
      skip_ws(sc);
      if (sc->pos >= sc->len || sc->s[sc->pos] != ':') return scan_fail(sc, "expected ':'");
      sc->pos++;
    }
    if (scan_value(sc, depth + 1) != 0) return -1;
    if (count) ++*count;
    skip_ws(sc);
    if (sc->pos >= sc->len) return scan_fail(sc, "truncated document");
    char c = sc->s[sc->pos++];
    if (c == close) return 0;
    if (c != ',') {
      sc->pos--;
      return scan_fail(sc, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
    }
  }
}

static int scan_value(scanner *sc, int depth) {
  skip_ws(sc);
  if (sc->pos >= sc->len) return scan_fail(sc, "truncated document");
  sc->values++;
  char c = sc->s[sc->pos];
  if (c == '{' || c == '[') return scan_container(sc, depth, NULL);
  if (c == '"') return scan_string(sc);
  return scan_literal(sc);
}

/* What the scan of the top level found. */
typedef struct doc_shape {
  char root;                 /* '{', '[', or the first character of a scalar */
  size_t root_at;            /* its offset */
  int is_feature;            /* root object with "type": "Feature" */
  size_t features_at;        /* offset of the "features" value (0: none) */
  int features_is_array;
  size_t elements;           /* elements of the root array, or of the last "features" array */
  size_t root_values;        /* values in the whole document */
} doc_shape;

/* Scans the whole document; the root object's members are noted on the way. */
static int scan_document(scanner *sc, doc_shape *shape) {
  memset(shape, 0, sizeof *shape);
  skip_ws(sc);
  if (sc->pos >= sc->len) return scan_fail(sc, "empty document");
  shape->root = sc->s[sc->pos];
  shape->root_at = sc->pos;
  if (shape->root == '[') {
    sc->values++;
    if (scan_container(sc, 0, &shape->elements) != 0) return -1;
  } else if (shape->root != '{') {
    if (scan_value(sc, 0) != 0) return -1;
  } else {
    /* The members of the root, one at a time, to find "type" and "features". */
    sc->values++;
    sc->pos++;
    skip_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == '}') {
      sc->pos++;
    } else {
      for (;;) {
        skip_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos] != '"') return scan_fail(sc, "expected a member name");
        size_t key = sc->pos;
        if (scan_string(sc) != 0) return -1;
        size_t key_len = sc->pos - key;
        skip_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos] != ':') return scan_fail(sc, "expected ':'");
        sc->pos++;
        skip_ws(sc);
        size_t val = sc->pos, elements = 0;
        int is_features = key_len == 10 && memcmp(sc->s + key, "\"features\"", 10) == 0;
        /* The features array is counted on this scan, so that its count costs no second one. */
        if (is_features && val < sc->len && sc->s[val] == '[') {
          sc->values++;
          if (scan_container(sc, 1, &elements) != 0) return -1;
        } else if (scan_value(sc, 1) != 0) {
          return -1;
        }
        /* Duplicate names: the last one counts, as json-c keeps the last. */
        if (is_features) {
          shape->features_at = val;
          shape->features_is_array = sc->s[val] == '[';
          shape->elements = elements;
        } else if (key_len == 6 && memcmp(sc->s + key, "\"type\"", 6) == 0) {
          shape->is_feature = sc->pos - val == 9 && memcmp(sc->s + val, "\"Feature\"", 9) == 0;
        }
        skip_ws(sc);
        if (sc->pos >= sc->len) return scan_fail(sc, "truncated document");
        char c = sc->s[sc->pos++];
        if (c == '}') break;
        if (c != ',') {
          sc->pos--;
          return scan_fail(sc, "expected ',' or '}'");
        }
      }
    }
  }
  shape->root_values = sc->values;
  return 0;
}

/*
 * The most JSON values one feature may hold: four per vertex of the largest
 * ring allowed (the position array and its numbers), plus room for classes
 * and metadata.  A feature over it is skipped as too_large before json-c
 * builds anything.
 */
static size_t feature_value_budget(const asd_parse_options *opt) {
  size_t v = opt->max_vertices;
  return (v > SIZE_MAX / 8 ? SIZE_MAX / 2 : 4 * v) + 4096;
}

/* json-c on one value's text; NULL when json-c refuses it. */
static json_object *parse_span(json_tokener *tok, const char *s, size_t n) {
  json_tokener_reset(tok);
  json_object *o = json_tokener_parse_ex(tok, s, (int)n);
  if (!o && json_tokener_get_error(tok) == json_tokener_continue)
    o = json_tokener_parse_ex(tok, " ", 1); /* a bare number waits for its end */
  if (o && json_tokener_get_error(tok) != json_tokener_success) {
    json_object_put(o);
    o = NULL;
  }
  return o;
}

static asd_parse_status fail_doc(asd_parse_report *r, asd_parse_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static asd_parse_status fail_doc(asd_parse_report *r, asd_parse_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof(r->message), fmt, ap);
  va_end(ap);
  return s;
}

/* One feature's text -> a detection in out, or a reason in the report. */
static int take_feature(json_tokener *tok, const char *s, size_t n, size_t values, size_t seq,
                        const asd_tile_ref *tile, const asd_parse_options *opt, asd_detections *out,
                        asd_parse_report *report) {
  int rc;
  asd_detection d;
  int clipped = 0;
  if (values > feature_value_budget(opt)) {
    rc = ASD_REJECT_TOO_LARGE;
  } else {
    json_object *f = parse_span(tok, s, n);
    rc = f ? parse_feature(f, seq, tile, opt, &d, &clipped) : ASD_REJECT_NOT_A_FEATURE;
    json_object_put(f);
  }
  if (rc == FEAT_OK) {
    if (asd_detections_push(out, &d) == 0) {
      report->accepted++;
      if (clipped) report->clipped++;
      return FEAT_OK;
    }
    asd_detection_clear(&d);
    rc = FEAT_NOMEM;
  }
  if (rc == FEAT_NOMEM) return FEAT_NOMEM;
  report->by_reason[rc]++;
  if (report->rejected++ == 0)
    snprintf(report->message, sizeof(report->message), "feature %zu skipped: %s", seq,
             asd_reject_reason_name((asd_reject_reason)rc));
  return rc;
}

/* Each element of the features array at sc->pos, in order. */
static int take_features(scanner *sc, json_tokener *tok, const asd_tile_ref *tile, const asd_parse_options *opt,
                         asd_detections *out, asd_parse_report *report) {
  sc->pos++; /* '[' */
  for (size_t seq = 0;; seq++) {
    skip_ws(sc);
    if (sc->s[sc->pos] == ']') return 0;
    size_t a = sc->pos, v0 = sc->values;
    if (scan_value(sc, 1) != 0) return FEAT_NOMEM; /* cannot happen: scanned before */
    if (take_feature(tok, sc->s + a, sc->pos - a, sc->values - v0, seq, tile, opt, out, report) == FEAT_NOMEM)
      return FEAT_NOMEM;
    skip_ws(sc);
    if (sc->s[sc->pos] == ',') sc->pos++;
  }
}

static const char *scalar_name(const char *t) {
  if (*t == '"') return "string";
  if (strncasecmp(t, "true", 4) == 0 || strncasecmp(t, "false", 5) == 0) return "boolean";
  if (strncasecmp(t, "null", 4) == 0) return "null";
  return "number";
}

asd_parse_status asd_features_parse(const char *text, size_t len, const asd_tile_ref *tile,
                                    const asd_parse_options *opt_in, asd_detections *out,
                                    asd_parse_report *report_in) {
  asd_parse_options opt;
  if (opt_in)
    opt = *opt_in;
  else
    asd_parse_options_init(&opt);
  asd_parse_report scratch;
  asd_parse_report *report = report_in ? report_in : &scratch;
  memset(report, 0, sizeof(*report));

  if (!text) return fail_doc(report, ASD_PARSE_ERR_JSON, "model output is empty");
  if (len > opt.max_bytes)
    return fail_doc(report, ASD_PARSE_ERR_TOO_LARGE,
                    "model output is %zu bytes, more than the limit of %zu bytes", len,
                    opt.max_bytes);
  if (len > (size_t)INT32_MAX)
    return fail_doc(report, ASD_PARSE_ERR_TOO_LARGE, "model output is %zu bytes, too large to parse",
                    len);

  scanner sc = {text, len, 0, 0, NULL, 0};
  doc_shape shape;
  if (scan_document(&sc, &shape) != 0) {
    if (strcmp(sc.error, "truncated document") == 0 || strcmp(sc.error, "empty document") == 0)
      return fail_doc(report, ASD_PARSE_ERR_JSON, "model output is not JSON: %s", sc.error);
    return fail_doc(report, ASD_PARSE_ERR_JSON, "model output is not JSON: %s at byte %zu", sc.error,
                    sc.error_at);
  }
  /* Anything but whitespace after the value means the text is not one JSON document. */
  for (size_t i = sc.pos; i < len; i++) {
    char c = text[i];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\0')
      return fail_doc(report, ASD_PARSE_ERR_JSON,
                      "model output is not JSON: unexpected text after the document at byte %zu", i);
  }

  if (shape.root != '{' && shape.root != '[')
    return fail_doc(report, ASD_PARSE_ERR_SCHEMA, "model output is JSON but not a FeatureCollection (a %s)",
                    scalar_name(text + shape.root_at));
  if (shape.root == '{' && !shape.is_feature && !shape.features_is_array)
    return fail_doc(report, ASD_PARSE_ERR_SCHEMA,
                    "model output is JSON but not a FeatureCollection (no \"features\" array)");

  size_t start_pos = shape.root_at;
  size_t array_at = shape.root == '[' ? start_pos : shape.features_at;
  size_t n = 1;
  if (!shape.is_feature) n = shape.elements;
  report->features = n;
  if (n > opt.max_features)
    return fail_doc(report, ASD_PARSE_ERR_TOO_LARGE,
                    "model output has %zu features, more than the limit of %zu", n,
                    opt.max_features);

  json_tokener *tok = json_tokener_new_ex(ASD_JSON_MAX_DEPTH);
  if (!tok) return fail_doc(report, ASD_PARSE_ERR_NOMEM, "out of memory parsing model output");
  size_t start = out->count;
  int rc;
  if (shape.is_feature) {
    rc = take_feature(tok, text + start_pos, sc.pos - start_pos, shape.root_values, 0, tile, &opt, out, report);
  } else {
    sc.pos = array_at;
    rc = take_features(&sc, tok, tile, &opt, out, report);
  }
  json_tokener_free(tok);
  if (rc == FEAT_NOMEM) {
    for (size_t k = start; k < out->count; k++) asd_detection_clear(&out->items[k]);
    out->count = start;
    report->accepted = 0;
    return fail_doc(report, ASD_PARSE_ERR_NOMEM, "out of memory parsing model output");
  }
  return ASD_PARSE_OK;
}
