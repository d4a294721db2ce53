/*
 * asd_writer.h: writing detections and tile footprints to an OGR datasource.
 *
 * Any OGR vector driver with create support works (-of, default GPKG), with
 * -dsco, -lco, -nln, -overwrite and -append as in ogr2ogr.  Features are
 * written inside transactions of batch_size features (one transaction per
 * batch makes GeoPackage writes fast and keeps a crash from leaving a
 * half-written row).
 *
 * Two layers:
 *
 * 1. Detections (layer name -nln, default "detections"), geometry in the
 *    georeferencer's output SRS (EPSG:4326 lon/lat by default; in pixel
 *    space a local SRS "image pixels (x right, y down)", none for GeoJSON),
 *    polygon (or point for point detections; a Shapefile layer holds
 *    polygons only, so a point becomes its box there), field merged_count
 *    (raw detections merged into this one) as well.  Flat fields:
 *
 *    | field            | type     | meaning                                              |
 *    |------------------|----------|------------------------------------------------------|
 *    | class            | String   | top class (iri of the best featureClasses entry)     |
 *    | score            | Real     | its score after merging (soft-NMS may lower it)      |
 *    | raw_score        | Real     | the model's score before merging                     |
 *    | classes          | String   | every class as JSON [{"iri":..,"score":..,"rawScore":..}] (subtype JSON) |
 *    | image_minx/miny/maxx/maxy | Real | bounding box in full-image pixels (max exclusive) |
 *    | image_geometry   | String   | the detection's outline in image pixels, as WKT      |
 *    | center_lon       | Real     | centre of the box in the output SRS (x / lon)       |
 *    | center_lat       | Real     | centre of the box in the output SRS (y / lat)       |
 *    | tile_row, tile_col | Integer | grid position of the tile that produced it          |
 *    | inference_id     | String   | SageMaker inference id of that tile                  |
 *    | source_image     | String   | the source image name as given                       |
 *    | model_metadata   | String   | the model's modelMetadata as JSON (subtype JSON)     |
 *    | georef           | String   | "ok", "trimmed" (partly outside the transform's domain: the |
 *    |                  |          | georeferenced part) or "none" (no geometry; image fields only) |
 *
 *    For GeoJSON output (driver GeoJSON or GeoJSONSeq), nested OSML-
 *    compatible properties are written too, as JSON-typed fields that the
 *    GeoJSON driver emits as nested objects: imageGeometry (GeoJSON geometry
 *    in image pixels), imageBBox [minx,miny,maxx,maxy], featureClasses
 *    [{iri,score,rawScore}], modelMetadata, center_longitude,
 *    center_latitude, inferenceMetadata {jobId, inferenceDT},
 *    sourceMetadata {sourceImage, ...}.
 *
 * 2. Tile footprints (layer "<nln>_tiles", default "tiles"): one polygon per
 *    tile in the same SRS, fields tile_index, tile_row, tile_col, x, y,
 *    width, height (image pixels), status ("succeeded" | "failed" |
 *    "skipped"), reason (why it failed or was skipped), inference_id,
 *    feature_count, source_image, georef (the footprint's, as above) and
 *    not_georeferenced (detections of the tile written without a geometry).  QGIS users see the gaps of a partial run
 *    at once.  Drivers that hold one layer per file (GeoJSON, GeoJSONSeq,
 *    CSV, FlatGeobuf, a single .shp, ...) cannot hold it next to the
 *    detections: it then goes to tiles_fallback_path, a sibling file of the
 *    same format (asd_writer_tiles_sidecar_path: ships.geojson ->
 *    ships_tiles.geojson), or to tiles_path when that names one explicitly;
 *    only without either is it left out, with a warning.
 *
 * A Shapefile keeps 10 characters of a field name (source_image becomes
 * source_ima, inference_id inference_, ...: -append and -resume find them
 * again) and 254 of a string: image_geometry is left empty when the
 * outline's WKT is longer.
 *
 * CSV output gets its geometry as a WKT column (layer creation option
 * GEOMETRY=AS_WKT) unless -lco GEOMETRY=... says otherwise: without it the
 * CSV driver drops geometries, which is never what a detection run wants.
 *
 * All functions report errors through CPLError and return -1 (or NULL).
 * A writer is not thread-safe: call it from one thread.
 */
#ifndef ASD_WRITER_H
#define ASD_WRITER_H

#include "asyncdetect/asd_export.h"

#include <gdal.h>

#include "asyncdetect/asd_georef.h"
#include "asyncdetect/asd_plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defined in asd_features.h (owned by the feature parser). */
struct asd_detection;

typedef struct asd_writer_options {
  const char *format;       /* OGR driver short name; NULL = guessed from the extension, else GPKG */
  char **dsco;              /* dataset creation options (CSL) */
  char **lco;               /* layer creation options (CSL), both layers */
  const char *layer_name;   /* detections layer (default "detections") */
  const char *tiles_layer_name; /* default "<layer_name>_tiles", or "tiles" with the default name */
  const char *tiles_path;   /* optional separate datasource for the tile layer */
  const char *tiles_fallback_path; /* used instead when the output holds one layer only */
  int write_tiles;          /* default 1 */
  int overwrite;            /* replace existing layers / datasource */
  int append;               /* append to existing layers (schema must match) */
  int batch_size;           /* features per transaction (default 10000) */
  double batch_seconds;     /* also commit a transaction open this long (0 = no limit) */
  int replace_source;       /* with append: first delete the features of both layers whose
                               source_image is source_image (a resumed run rewrites them) */
  int nested_properties;    /* -1 auto (GeoJSON drivers), 0 no, 1 yes */
  const char *source_image; /* value of source_image (the image name) */
  char **replace_sources;   /* with replace_source: every image whose features go (a run over
                               several images), NULL = source_image only */
  const char *source_metadata_json; /* extra sourceMetadata JSON object, or NULL */
} asd_writer_options;

ASD_API void asd_writer_options_init(asd_writer_options *o);

typedef struct asd_writer asd_writer;

/* Creates (or opens for append) the datasource at path and its layers.
 * georef converts image pixels to the output SRS (NULL = pixel space).
 * The georef must outlive the writer. */
ASD_API asd_writer *asd_writer_open(const char *path, const asd_writer_options *o, asd_georef *georef);

/* A run over several images: the detections and tiles written from now on
 * are image's (a number of the caller's, kept apart in the writer's counts),
 * named source_image and georeferenced by georef, which must outlive the
 * writer.  0 or -1. */
ASD_API int asd_writer_set_image(asd_writer *w, int image, const char *source_image, asd_georef *georef);

/* Writes one detection (image-pixel coordinates).  0 or -1. */
ASD_API int asd_writer_add_detection(asd_writer *w, const struct asd_detection *d);

typedef enum asd_tile_state {
  ASD_TILE_SUCCEEDED = 0,
  ASD_TILE_FAILED = 1,
  ASD_TILE_SKIPPED = 2
} asd_tile_state;

/* "succeeded", "failed", "skipped". */
ASD_API const char *asd_tile_state_name(asd_tile_state s);

/* Writes the footprint of a tile with its final state.  reason and
 * inference_id may be NULL; feature_count < 0 leaves it unset. */
ASD_API int asd_writer_add_tile(asd_writer *w, const asd_tile *t, asd_tile_state state, const char *reason,
                        const char *inference_id, long long feature_count);

ASD_API long long asd_writer_feature_count(const asd_writer *w);

/* Shapes whose transform failed at some of their pixels (a limited domain:
 * the corners of a geostationary disk, a diverging polynomial): trimmed to
 * their georeferenced part (field georef = "trimmed"), or written without a
 * geometry, with their image-pixel fields (georef = "none"). */
typedef struct asd_writer_georef_counts {
  long long detections_trimmed, detections_failed;
  long long tiles_trimmed, tiles_failed;
} asd_writer_georef_counts;

ASD_API void asd_writer_get_georef_counts(const asd_writer *w, asd_writer_georef_counts *c);

/* The output datasource, for code that must write in the same connection
 * and transactions (the run journal inside an output GeoPackage).  Callers
 * must use it from the writer's thread and never close it. */
ASD_API GDALDatasetH asd_writer_dataset(asd_writer *w);

/* Commits the open transaction of the output now (features and whatever
 * else was written through asd_writer_dataset), so that it survives the
 * process being killed.  0, or -1 after a CPLError. */
ASD_API int asd_writer_commit(asd_writer *w);

/* Name of the datasource holding the tile layer (the output itself, or a
 * separate file), or NULL when it is not written. */
ASD_API const char *asd_writer_tiles_location(const asd_writer *w);

/* The sibling file for the tile layer of a one-layer output: the output's
 * name with "_tiles" before its extension (CPLFree). */
ASD_API char *asd_writer_tiles_sidecar_path(const char *dest);

/* Commits, closes the datasource and frees the writer.  Returns 0, or -1 if
 * the final commit or close failed (the writer is freed either way). */
ASD_API int asd_writer_close(asd_writer *w);

#ifdef __cplusplus
}
#endif

#endif /* ASD_WRITER_H */
