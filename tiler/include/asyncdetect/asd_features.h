/*
 * asd_features.h: detections, and parsing a model's FeatureCollection into them.
 *
 * A detection is one object found by the model, held in *full-image pixel*
 * coordinates (the parser adds the tile window's offset to the tile-pixel
 * coordinates the model returns).  Every later stage (merge, georeference,
 * OGR writer) consumes this one struct.
 *
 * Geometry.  Every detection has a bounding box (minx, miny, maxx, maxy) in
 * image pixels with the max edges exclusive, as OSML's imageBBox.  On top of
 * the box it may carry a ring:
 *   - ASD_GEOM_BOX:     no ring (ring == NULL, ring_len == 0); the box is the shape;
 *   - ASD_GEOM_POINT:   ring holds exactly one point; the box is the point
 *                       itself unless the model also gave a bbox;
 *   - ASD_GEOM_POLYGON: ring is the exterior ring, closed (last point equals
 *                       the first), at least 4 points; holes are dropped.
 *
 * Classes.  class_iri is the best class (highest score), score its score
 * (which soft-NMS may lower later), raw_score the model's score before any
 * merging (featureClasses[].rawScore when the model gives one).
 * classes_json is every class normalised to the current OSML form
 * [{"iri":"...","score":s[,"rawScore":r]}], whichever schema the model used.
 * model_metadata_json is the feature's modelMetadata object as JSON, or NULL.
 *
 * Ownership.  Strings and the ring are heap memory owned by the detection;
 * asd_detection_clear frees them.  A container (asd_detections) owns its
 * detections; asd_detections_push *moves* a detection in (the source is
 * left zeroed).
 *
 * Parsing accepts both generations of the OSML model output (see
 * PROTOCOL.md):
 *   current: imageGeometry (Point, Polygon, MultiPolygon: the largest part),
 *            imageBBox [minx,miny,maxx,maxy], featureClasses
 *            [{iri, score, rawScore?}], modelMetadata;
 *   legacy:  geom_imcoords (ring of [x,y]), bounds_imcoords [minx,miny,maxx,maxy],
 *            feature_types {"class": score}, detection_score.
 * The document may be a FeatureCollection, a bare array of features or a
 * single Feature.  A malformed feature (wrong types, NaN, huge numbers,
 * missing geometry or score, entirely outside the tile) is skipped and
 * counted by reason in asd_parse_report; it never fails the tile.  A
 * feature partly outside the tile is clipped to it (counted as clipped).
 * Only a document that cannot be read at all (not JSON, not a feature
 * collection, larger than the limits) fails, with one clear line in the
 * report's message.
 */
#ifndef ASD_FEATURES_H
#define ASD_FEATURES_H

#include "asyncdetect/asd_export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum asd_geom_kind {
  ASD_GEOM_BOX = 0,
  ASD_GEOM_POINT = 1,
  ASD_GEOM_POLYGON = 2
} asd_geom_kind;

/* "box", "point", "polygon". */
ASD_API const char *asd_geom_kind_name(asd_geom_kind k);

typedef struct asd_point {
  double x, y;
} asd_point;

typedef struct asd_detection {
  /* Bounding box in full-image pixels; max edges exclusive. */
  double minx, miny, maxx, maxy;
  asd_geom_kind kind;
  asd_point *ring;  /* see the header comment; NULL for ASD_GEOM_BOX */
  size_t ring_len;
  char *class_iri;  /* best class, never NULL after parsing ("" when the model gave none) */
  double score;     /* score of class_iri after merging */
  double raw_score; /* the model's score before merging */
  char *classes_json;        /* [{"iri":..,"score":..,"rawScore":..}], never NULL after parsing */
  char *model_metadata_json; /* modelMetadata as JSON, or NULL */
  int tile_index, tile_row, tile_col; /* tile that produced it (the best one after merging) */
  char *inference_id;        /* SageMaker inference id of that tile, or NULL */
  int merged_count;          /* raw detections this one stands for (1 unless merged) */
  size_t seq;                /* position of the feature in its tile's document (tie-breaker) */
} asd_detection;

/* Frees what d owns and zeroes it. */
ASD_API void asd_detection_clear(asd_detection *d);
/* Deep copy; dst is overwritten (not freed first).  0, or -1 out of memory. */
ASD_API int asd_detection_copy(asd_detection *dst, const asd_detection *src);
/* Centre of the bounding box. */
ASD_API void asd_detection_center(const asd_detection *d, double *x, double *y);
/*
 * The detection's shape in image pixels as WKT ("POINT (x y)" or
 * "POLYGON ((...))"; a box is written as its 5-point polygon).  The caller
 * free()s the string.  NULL when out of memory.
 */
ASD_API char *asd_detection_wkt(const asd_detection *d);

/* A growable array of detections that owns them. */
typedef struct asd_detections {
  asd_detection *items;
  size_t count;
  size_t cap;
} asd_detections;

ASD_API void asd_detections_init(asd_detections *v);
/* Moves *d into v (d is zeroed).  0, or -1 out of memory (d left as it was). */
ASD_API int asd_detections_push(asd_detections *v, asd_detection *d);
/* Moves every detection of src to the end of dst; src is left empty.  0 or -1. */
ASD_API int asd_detections_move_all(asd_detections *dst, asd_detections *src);
/* Clears every detection and empties v (keeps its storage for reuse). */
ASD_API void asd_detections_reset(asd_detections *v);
/* Clears every detection and frees the storage; v is left empty and reusable. */
ASD_API void asd_detections_free(asd_detections *v);

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

/* The tile a FeatureCollection belongs to: its window in full-image pixels. */
typedef struct asd_tile_ref {
  int index, row, col;
  double x, y; /* top-left of the window in the image */
  double w, h; /* window size; 0 disables the out-of-tile check and clipping */
  const char *inference_id; /* copied into each detection; may be NULL */
} asd_tile_ref;

typedef struct asd_parse_options {
  size_t max_bytes;    /* larger documents are refused (default asd_max_result_bytes():
                          ASD_MAX_RESULT_BYTES, 64 MiB) */
  size_t max_features; /* documents with more features are refused (default 1,000,000) */
  size_t max_vertices; /* a ring with more points is skipped (default 100,000) */
  double tolerance;    /* a feature reaching further than this many pixels outside the
                          tile counts as clipped (default 0.5); all are clipped to it */
} asd_parse_options;

ASD_API void asd_parse_options_init(asd_parse_options *o);

/* Why a feature was skipped. */
typedef enum asd_reject_reason {
  ASD_REJECT_NOT_A_FEATURE = 0,    /* not a JSON object */
  ASD_REJECT_NO_GEOMETRY = 1,      /* none of imageGeometry/imageBBox/geom_imcoords/bounds_imcoords */
  ASD_REJECT_BAD_GEOMETRY = 2,     /* wrong types, too few points, unsupported type, inverted box */
  ASD_REJECT_BAD_NUMBER = 3,       /* NaN, infinity, or a coordinate beyond +-1e9 */
  ASD_REJECT_BAD_SCORE = 4,        /* no score, or a score that is not a finite number */
  ASD_REJECT_OUT_OF_TILE = 5,      /* entirely outside the tile window */
  ASD_REJECT_TOO_MANY_VERTICES = 6,/* ring longer than max_vertices */
  ASD_REJECT_TOO_LARGE = 7,        /* more JSON values than 4 x max_vertices + 4096: parsing it
                                      would cost more memory than any detection can need */
  ASD_REJECT_REASON_COUNT = 8
} asd_reject_reason;

/* "not_a_feature", "no_geometry", "bad_geometry", "bad_number", "bad_score",
 * "out_of_tile", "too_many_vertices", "too_large". */
ASD_API const char *asd_reject_reason_name(asd_reject_reason r);

typedef struct asd_parse_report {
  size_t features;   /* features found in the document */
  size_t accepted;   /* detections produced */
  size_t rejected;   /* features skipped (sum of by_reason) */
  size_t clipped;    /* accepted features clipped to the tile window */
  size_t by_reason[ASD_REJECT_REASON_COUNT];
  char message[256]; /* fatal error, else a summary of the first rejection ("" if none) */
} asd_parse_report;

/*
 * One line summarising a report for logs, e.g. "12 features: 9 accepted (1
 * clipped), 3 skipped (out_of_tile 2, bad_score 1)".  Returns buf.
 */
ASD_API const char *asd_parse_report_format(const asd_parse_report *r, char *buf, size_t len);

typedef enum asd_parse_status {
  ASD_PARSE_OK = 0,
  ASD_PARSE_ERR_TOO_LARGE = 1, /* max_bytes or max_features exceeded */
  ASD_PARSE_ERR_JSON = 2,      /* not JSON */
  ASD_PARSE_ERR_SCHEMA = 3,    /* JSON, but no FeatureCollection / features / Feature */
  ASD_PARSE_ERR_NOMEM = 4
} asd_parse_status;

ASD_API const char *asd_parse_status_name(asd_parse_status s);

/*
 * Parses len bytes of text (need not be NUL-terminated) as the model output
 * for tile, appending the detections (image pixels) to out.  opt may be NULL
 * (defaults); report may be NULL.  On a fatal status nothing is appended and
 * report->message holds one line saying what was wrong.  Thread-safe (no
 * shared state).
 */
ASD_API asd_parse_status asd_features_parse(const char *text, size_t len, const asd_tile_ref *tile,
                                    const asd_parse_options *opt, asd_detections *out,
                                    asd_parse_report *report);

#ifdef __cplusplus
}
#endif

#endif /* ASD_FEATURES_H */
