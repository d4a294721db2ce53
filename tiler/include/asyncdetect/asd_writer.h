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
 *    feature_count.  QGIS users see the gaps of a partial run at once.
 *    Drivers that hold one layer per file (GeoJSON, ESRI Shapefile as a
 *    single file) cannot hold it: it is then disabled with a warning unless
 *    tiles_path names a separate datasource for it.
 *
 * All functions report errors through CPLError and return -1 (or NULL).
 * A writer is not thread-safe: call it from one thread.
 */
#ifndef ASD_WRITER_H
#define ASD_WRITER_H

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
  int write_tiles;          /* default 1 */
  int overwrite;            /* replace existing layers / datasource */
  int append;               /* append to existing layers (schema must match) */
  int batch_size;           /* features per transaction (default 10000) */
  int nested_properties;    /* -1 auto (GeoJSON drivers), 0 no, 1 yes */
  const char *source_image; /* value of source_image (the image name) */
  const char *source_metadata_json; /* extra sourceMetadata JSON object, or NULL */
} asd_writer_options;

void asd_writer_options_init(asd_writer_options *o);

typedef struct asd_writer asd_writer;

/* Creates (or opens for append) the datasource at path and its layers.
 * georef converts image pixels to the output SRS (NULL = pixel space).
 * The georef must outlive the writer. */
asd_writer *asd_writer_open(const char *path, const asd_writer_options *o, asd_georef *georef);

/* Writes one detection (image-pixel coordinates).  0 or -1. */
int asd_writer_add_detection(asd_writer *w, const struct asd_detection *d);

typedef enum asd_tile_state {
  ASD_TILE_SUCCEEDED = 0,
  ASD_TILE_FAILED = 1,
  ASD_TILE_SKIPPED = 2
} asd_tile_state;

/* "succeeded", "failed", "skipped". */
const char *asd_tile_state_name(asd_tile_state s);

/* Writes the footprint of a tile with its final state.  reason and
 * inference_id may be NULL; feature_count < 0 leaves it unset. */
int asd_writer_add_tile(asd_writer *w, const asd_tile *t, asd_tile_state state, const char *reason,
                        const char *inference_id, long long feature_count);

long long asd_writer_feature_count(const asd_writer *w);

/* Commits, closes the datasource and frees the writer.  Returns 0, or -1 if
 * the final commit or close failed (the writer is freed either way). */
int asd_writer_close(asd_writer *w);

#ifdef __cplusplus
}
#endif

#endif /* ASD_WRITER_H */
