/*
 * writer.c: detections and tile footprints into an OGR datasource.
 *
 * The writer is the last stage of a tile's life: detections arrive in image
 * pixels (already merged), are converted by the georeferencer, and become
 * features of an OGR layer.  The schema is documented in asd_writer.h.
 *
 * Two audiences shape it.  GeoPackage users (QGIS, ogr2ogr, SQL) want flat,
 * typed columns they can filter and style on: class, score, bbox numbers.
 * Users of the OSML tool chain want the GeoJSON properties OSML's model
 * runner writes (imageGeometry, imageBBox, featureClasses, ...), nested.
 * OGR can carry both: nested values are String fields with the JSON
 * subtype, which the GeoJSON driver writes as JSON objects and arrays (and
 * other drivers keep as JSON text).  So every driver gets the flat fields,
 * and GeoJSON (or nested_properties=1) also gets the OSML ones.
 *
 * The tile layer exists so that a partial run is visible: a failed tile is a
 * hole in the detections that looks exactly like "nothing there" unless its
 * footprint is drawn, labelled failed with its reason.
 *
 * Transactions.  Writing row by row into SQLite-based formats is slow and
 * leaves half-written state on a crash; features are therefore grouped in
 * transactions of batch_size features (when the driver supports them),
 * committed when a batch fills, when one has been open batch_seconds, when
 * the caller asks (asd_writer_commit) and at close.  The utility keeps its
 * run journal in the same GeoPackage connection (asd_writer_dataset), so a
 * journal record and the detections written before it commit together, and
 * no second connection ever waits on this one's lock.
 *
 * One-layer formats.  GeoJSON, CSV, FlatGeobuf or a single .shp hold one
 * layer per file, so the tile layer goes to a sibling file of the same
 * format (ships.geojson -> ships_tiles.geojson): the user keeps a status
 * map whatever the format, and a GDAL user expects one file per layer.
 *
 * Resumed appends.  With replace_source the features an earlier, interrupted
 * run wrote for the same source image (or images: replace_sources) are
 * deleted first (both layers), so that the resumed run can write the whole
 * result again without duplicating it, while the other images' features in
 * an appended-to output stay.
 *
 * Several images.  One writer serves a run over a set of images:
 * asd_writer_set_image() switches the source_image value and the
 * georeferencer used for the features that follow (the layers' SRS is the
 * first image's output SRS, which every image shares: -t_srs).
 *
 * Existing outputs.  As with ogr2ogr, an existing datasource is never
 * silently replaced: without -overwrite or -append it is an error.
 * -overwrite deletes and recreates the layers in a multi-layer datasource
 * (other layers in a GeoPackage survive), or the whole file for single-layer
 * formats; -append adds to existing layers, creating missing fields.
 */
#include "asyncdetect/asd_writer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <json-c/json.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <gdal_utils.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_features.h"
#include "styles.h"

/* Field indexes of the detections layer. */
enum {
  F_CLASS, F_SCORE, F_RAW_SCORE, F_CLASSES, F_IMINX, F_IMINY, F_IMAXX, F_IMAXY, F_IGEOM, F_CLON, F_CLAT,
  F_TROW, F_TCOL, F_INFID, F_SRC, F_MODEL, F_MERGED, F_GEOREF,
  /* nested (GeoJSON) */
  N_IMAGE_GEOMETRY, N_IMAGE_BBOX, N_FEATURE_CLASSES, N_MODEL_METADATA, N_CENTER_LON, N_CENTER_LAT,
  N_INFERENCE_METADATA, N_SOURCE_METADATA,
  F_COUNT
};

typedef struct field_def {
  const char *name;
  OGRFieldType type;
  OGRFieldSubType subtype;
} field_def;

static const field_def DETECTION_FIELDS[F_COUNT] = {
    {"class", OFTString, OFSTNone},
    {"score", OFTReal, OFSTNone},
    {"raw_score", OFTReal, OFSTNone},
    {"classes", OFTString, OFSTJSON},
    {"image_minx", OFTReal, OFSTNone},
    {"image_miny", OFTReal, OFSTNone},
    {"image_maxx", OFTReal, OFSTNone},
    {"image_maxy", OFTReal, OFSTNone},
    {"image_geometry", OFTString, OFSTNone},
    {"center_lon", OFTReal, OFSTNone},
    {"center_lat", OFTReal, OFSTNone},
    {"tile_row", OFTInteger, OFSTNone},
    {"tile_col", OFTInteger, OFSTNone},
    {"inference_id", OFTString, OFSTNone},
    {"source_image", OFTString, OFSTNone},
    {"model_metadata", OFTString, OFSTJSON},
    {"merged_count", OFTInteger, OFSTNone},
    {"georef", OFTString, OFSTNone},
    {"imageGeometry", OFTString, OFSTJSON},
    {"imageBBox", OFTString, OFSTJSON},
    {"featureClasses", OFTString, OFSTJSON},
    {"modelMetadata", OFTString, OFSTJSON},
    {"center_longitude", OFTReal, OFSTNone},
    {"center_latitude", OFTReal, OFSTNone},
    {"inferenceMetadata", OFTString, OFSTJSON},
    {"sourceMetadata", OFTString, OFSTJSON},
};

enum { T_INDEX, T_ROW, T_COL, T_X, T_Y, T_W, T_H, T_STATUS, T_REASON, T_INFID, T_FCOUNT, T_SRC, T_GEOREF, T_UNGEO,
       T_COUNT };

static const field_def TILE_FIELDS[T_COUNT] = {
    {"tile_index", OFTInteger, OFSTNone}, {"tile_row", OFTInteger, OFSTNone}, {"tile_col", OFTInteger, OFSTNone},
    {"x", OFTInteger, OFSTNone},          {"y", OFTInteger, OFSTNone},        {"width", OFTInteger, OFSTNone},
    {"height", OFTInteger, OFSTNone},     {"status", OFTString, OFSTNone},    {"reason", OFTString, OFSTNone},
    {"inference_id", OFTString, OFSTNone}, {"feature_count", OFTInteger64, OFSTNone},
    {"source_image", OFTString, OFSTNone},    {"georef", OFTString, OFSTNone},
    {"not_georeferenced", OFTInteger64, OFSTNone},
};

/* The value of the georef fields: how the geometry was made. */
static const char *georef_value(asd_georef_status st) {
  switch (st) {
    case ASD_GEOREF_OK: return "ok";
    case ASD_GEOREF_TRIMMED: return "trimmed";
    case ASD_GEOREF_FAILED: return "none";
  }
  return "none";
}

typedef struct out_ds {
  GDALDatasetH ds;
  int in_tx;        /* a transaction is open */
  int tx_supported; /* StartTransaction works on this datasource */
  int pending;      /* features written in the open transaction */
  double t0;        /* when the open transaction started (monotonic seconds) */
} out_ds;

struct asd_writer {
  asd_georef *georef;
  out_ds main;
  out_ds tiles_ds; /* used only when the tile layer is in a separate datasource */
  OGRLayerH det;
  OGRLayerH tiles;
  out_ds *tiles_owner;
  int det_idx[F_COUNT];
  int tile_idx[T_COUNT];
  int nested;
  int shapefile; /* the detections go to a Shapefile */
  int batch;
  double batch_seconds;
  char *tiles_location; /* datasource of the tile layer, NULL when none */
  char *deferred_tiles;  /* tile layer to create at the first tile (no random layer write) */
  OGRSpatialReferenceH deferred_srs;
  char **deferred_lco;
  long long written;
  asd_writer_georef_counts geo; /* shapes trimmed or left without a geometry */
  /* Detections without a geometry per producing tile, keyed by
   * (tile_row, tile_col): the tile layer says how many each tile has. */
  long long *ungeo_keys, *ungeo_counts;
  size_t ungeo_n;
  char *source_image;
  int image;       /* the caller's number of the current image (asd_writer_set_image) */
  char *source_metadata;
  char inference_dt[32];
  int failed; /* a write failed: close reports it */
};

void asd_writer_options_init(asd_writer_options *o) {
  memset(o, 0, sizeof(*o));
  o->write_tiles = 1;
  o->batch_size = 10000;
  o->nested_properties = -1;
}

const char *asd_tile_state_name(asd_tile_state s) {
  switch (s) {
    case ASD_TILE_SUCCEEDED: return "succeeded";
    case ASD_TILE_FAILED: return "failed";
    case ASD_TILE_SKIPPED: return "skipped";
  }
  return "unknown";
}

/* The driver for a path: explicit, else from the extension, else GPKG. */
static GDALDriverH pick_driver(const char *path, const char *format) {
  if (format) {
    GDALDriverH d = GDALGetDriverByName(format);
    if (!d || !GDALGetMetadataItem(d, GDAL_DCAP_VECTOR, NULL)) {
      CPLError(CE_Failure, CPLE_NotSupported, "asd_writer: '%s' is not an OGR vector driver", format);
      return NULL;
    }
    return d;
  }
  static const struct {
    const char *ext, *driver;
  } map[] = {{"gpkg", "GPKG"},       {"geojson", "GeoJSON"}, {"json", "GeoJSON"},
             {"geojsonl", "GeoJSONSeq"}, {"geojsons", "GeoJSONSeq"}, {"shp", "ESRI Shapefile"},
             {"fgb", "FlatGeobuf"}, {"sqlite", "SQLite"},   {"csv", "CSV"},
             {"kml", "KML"},        {"gml", "GML"},         {"parquet", "Parquet"}};
  const char *ext = CPLGetExtension(path);
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (EQUAL(ext, map[i].ext)) {
      GDALDriverH d = GDALGetDriverByName(map[i].driver);
      if (d) return d;
    }
  return GDALGetDriverByName("GPKG");
}

static int is_geojson(GDALDriverH d) {
  const char *n = GDALGetDriverShortName(d);
  return EQUAL(n, "GeoJSON") || EQUAL(n, "GeoJSONSeq");
}

/* Opens an existing datasource for update, or NULL (quietly). */
static GDALDatasetH open_update(const char *path, GDALDriverH d) {
  const char *drivers[2] = {GDALGetDriverShortName(d), NULL};
  CPLPushErrorHandler(CPLQuietErrorHandler);
  GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_UPDATE, drivers, NULL, NULL);
  CPLPopErrorHandler();
  return ds;
}

static void tx_begin(out_ds *o) {
  if (!o->tx_supported || o->in_tx) return;
  if (GDALDatasetStartTransaction(o->ds, FALSE) == OGRERR_NONE) {
    o->in_tx = 1;
    o->pending = 0;
    o->t0 = asd_time_monotonic();
  } else {
    o->tx_supported = 0;
    CPLErrorReset();
  }
}

static int tx_commit(out_ds *o) {
  if (!o->in_tx) return 0;
  o->in_tx = 0;
  o->pending = 0;
  if (GDALDatasetCommitTransaction(o->ds) != OGRERR_NONE) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: committing a batch of features to '%s' failed",
             GDALGetDescription(o->ds));
    return -1;
  }
  return 0;
}

static int is_shapefile(GDALDatasetH ds) {
  GDALDriverH d = ds ? GDALGetDatasetDriver(ds) : NULL;
  return d && EQUAL(GDALGetDriverShortName(d), "ESRI Shapefile");
}

/* Makes sure every field exists (creating missing ones) and records the
 * indexes.  Returns 0 or -1. */
static int ensure_fields(OGRLayerH lyr, const field_def *defs, int n, int first_nested, int nested, int *idx,
                         int laundered) {
  OGRFeatureDefnH fd = OGR_L_GetLayerDefn(lyr);
  for (int i = 0; i < n; i++) {
    idx[i] = -1;
    if (i >= first_nested && !nested) continue;
    /* Not an exact match: a Shapefile keeps 10 characters of a name, so
     * that -append and -resume reuse "source_ima" instead of adding a
     * second column. */
    int k = OGR_FD_GetFieldIndex(fd, defs[i].name);
    for (int j = 0; laundered && k < 0 && j < OGR_FD_GetFieldCount(fd); j++) {
      const char *have = OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(fd, j));
      if (strlen(have) == 10 && strlen(defs[i].name) > 10 && EQUALN(have, defs[i].name, 10)) k = j;
    }
    if (k < 0) {
      OGRFieldDefnH f = OGR_Fld_Create(defs[i].name, defs[i].type);
      if (defs[i].subtype != OFSTNone) OGR_Fld_SetSubType(f, defs[i].subtype);
      /* A Shapefile cuts every long name and says so, field by field: the
       * cut names are documented (asd_writer.h), so not repeated each run. */
      if (laundered) CPLPushErrorHandler(CPLQuietErrorHandler);
      OGRErr err = OGR_L_CreateField(lyr, f, TRUE);
      if (laundered) CPLPopErrorHandler();
      OGR_Fld_Destroy(f);
      if (err != OGRERR_NONE) {
        CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: cannot create field '%s' in layer '%s'", defs[i].name,
                 OGR_L_GetName(lyr));
        return -1;
      }
      fd = OGR_L_GetLayerDefn(lyr);
      /* Drivers may launder names (Shapefile truncates to 10 characters):
       * the new field is the last one. */
      k = OGR_FD_GetFieldIndex(fd, defs[i].name);
      if (k < 0) k = OGR_FD_GetFieldCount(fd) - 1;
    }
    idx[i] = k;
  }
  return 0;
}

static int find_layer(GDALDatasetH ds, const char *name) {
  for (int i = 0; i < GDALDatasetGetLayerCount(ds); i++)
    if (EQUAL(OGR_L_GetName(GDALDatasetGetLayer(ds, i)), name)) return i;
  return -1;
}

/* Gets or creates a layer under the -overwrite / -append rules. */
static OGRLayerH get_layer(GDALDatasetH ds, const char *name, int overwrite, int append, OGRSpatialReferenceH srs,
                           OGRwkbGeometryType gtype, char **lco) {
  int i = find_layer(ds, name);
  if (i >= 0) {
    if (append) return GDALDatasetGetLayer(ds, i);
    if (!overwrite) {
      CPLError(CE_Failure, CPLE_AppDefined,
               "asd_writer: layer '%s' already exists in '%s': use -overwrite or -append", name,
               GDALGetDescription(ds));
      return NULL;
    }
    if (GDALDatasetDeleteLayer(ds, i) != OGRERR_NONE) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: cannot delete existing layer '%s' of '%s'", name,
               GDALGetDescription(ds));
      return NULL;
    }
  }
  char **opts = CSLDuplicate(lco);
  /* Without GEOMETRY the CSV driver drops the geometry: keep it as WKT. */
  GDALDriverH drv = GDALGetDatasetDriver(ds);
  if (drv && EQUAL(GDALGetDriverShortName(drv), "CSV") && !CSLFetchNameValue(opts, "GEOMETRY"))
    opts = CSLSetNameValue(opts, "GEOMETRY", "AS_WKT");
  OGRLayerH l = GDALDatasetCreateLayer(ds, name, srs, gtype, opts);
  CSLDestroy(opts);
  if (!l)
    CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: cannot create layer '%s' in '%s'", name,
             GDALGetDescription(ds));
  return l;
}

/* Does this datasource hold one layer per file?  Some drivers say so (no
 * ODsCCreateLayer); others accept a second layer but put it elsewhere: a
 * .shp or .csv file name makes a sibling file named after the layer
 * (tiles.shp, which the next run in the same folder would clash with), and
 * GeoJSONSeq writes it into the same stream.  A folder (Shapefile, CSV) is
 * a multi-layer datasource. */
static int one_layer_driver(GDALDriverH drv, const char *path) {
  VSIStatBufL st;
  if (VSIStatL(path, &st) == 0 && VSI_ISDIR(st.st_mode)) return 0;
  static const char *const names[] = {"ESRI Shapefile", "CSV", "GeoJSONSeq", "GeoJSON", "FlatGeobuf",
                                      "MapInfo File", NULL};
  for (int i = 0; names[i]; i++)
    if (EQUAL(GDALGetDriverShortName(drv), names[i])) return 1;
  return 0;
}

static int one_layer_file(GDALDatasetH ds, GDALDriverH drv, const char *path) {
  return !GDALDatasetTestCapability(ds, ODsCCreateLayer) || one_layer_driver(drv, path);
}

/*
 * Some one-layer drivers append but cannot delete a feature (GeoJSONSeq).
 * For a resumed append to such a file, the file is written again without
 * the features of src (GDALVectorTranslate with a -where filter into a
 * temporary sibling, then renamed over it).  0 or -1.
 */
static int rewrite_without_source(const char *path, GDALDriverH drv, const char *field, char **srcs) {
  const char *ext = CPLGetExtension(path);
  char *tmp = CPLStrdup(CPLSPrintf("%s.asdtmp%s%s", CPLResetExtension(path, ""), *ext ? "." : "", ext));
  const char *src = srcs[0];
  asd_buf list;
  asd_buf_init(&list);
  for (char **p = srcs; *p; p++) {
    char *v = CPLEscapeString(*p, -1, CPLES_SQL);
    asd_buf_appendf(&list, "%s'%s'", p == srcs ? "" : ",", v);
    CPLFree(v);
  }
  char *val = CPLStrdup((const char *)list.data);
  asd_buf_free(&list);
  char *fesc = CPLEscapeString(field, -1, CPLES_SQLI);
  char *where = CPLStrdup(CPLSPrintf("\"%s\" NOT IN (%s) OR \"%s\" IS NULL", fesc, val, fesc));
  const char *argv[] = {"-f", GDALGetDriverShortName(drv), "-where", where, NULL};
  int rc = -1;
  GDALVectorTranslateOptions *opts = GDALVectorTranslateOptionsNew((char **)argv, NULL);
  GDALDatasetH in = opts ? GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL) : NULL;
  if (in) {
    GDALDatasetH out = GDALVectorTranslate(tmp, NULL, 1, &in, opts, NULL);
    GDALClose(in);
    if (out) {
      GDALClose(out);
      CPLPushErrorHandler(CPLQuietErrorHandler);
      if (GDALDeleteDataset(drv, path) != CE_None) VSIUnlink(path);
      CPLPopErrorHandler();
      if (VSIRename(tmp, path) == 0) rc = 0;
    }
  }
  if (rc != 0) {
    VSIUnlink(tmp);
    CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: cannot rewrite '%s' without the earlier features of '%s'", path,
             src);
  }
  GDALVectorTranslateOptionsFree(opts);
  CPLFree(where);
  CPLFree(fesc);
  CPLFree(val);
  CPLFree(tmp);
  return rc;
}

/* Opens or creates the datasource at path under the -overwrite/-append rules. */
static GDALDatasetH open_output(const char *path, GDALDriverH drv, const asd_writer_options *o) {
  VSIStatBufL st;
  const int exists = VSIStatL(path, &st) == 0;
  if (exists) {
    if (!o->overwrite && !o->append) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: '%s' already exists: use -overwrite or -append", path);
      return NULL;
    }
    GDALDatasetH ds = open_update(path, drv);
    /* A datasource that holds one layer (GeoJSON, a .shp...) cannot take a
     * new layer once opened: -overwrite replaces it whole, as ogr2ogr does. */
    if (ds && o->overwrite && (!GDALDatasetTestCapability(ds, ODsCDeleteLayer) || one_layer_file(ds, drv, path))) {
      GDALClose(ds);
      ds = NULL;
    }
    char *single[] = {(char *)o->source_image, NULL};
    char **srcs = o->replace_sources ? o->replace_sources : single;
    if (ds && o->append && o->replace_source && srcs[0] && one_layer_file(ds, drv, path) &&
        GDALDatasetGetLayerCount(ds) == 1 && !OGR_L_TestCapability(GDALDatasetGetLayer(ds, 0), OLCDeleteFeature)) {
      OGRLayerH l = GDALDatasetGetLayer(ds, 0);
      int fi = OGR_L_FindFieldIndex(l, "source_image", FALSE);
      char *field = fi >= 0 ? CPLStrdup(OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(OGR_L_GetLayerDefn(l), fi))) : NULL;
      GDALClose(ds);
      ds = NULL;
      int rc = field ? rewrite_without_source(path, drv, field, srcs) : 0;
      CPLFree(field);
      if (rc == 0) ds = open_update(path, drv);
      if (!ds) return NULL;
    }
    if (ds) return ds;
    if (o->append) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: cannot open '%s' for update with the %s driver", path,
               GDALGetDriverShortName(drv));
      return NULL;
    }
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErr err = GDALDeleteDataset(drv, path);
    CPLPopErrorHandler();
    if (err != CE_None && VSIUnlink(path) != 0) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: cannot replace '%s'", path);
      return NULL;
    }
  }
  GDALDatasetH ds = GDALCreate(drv, path, 0, 0, 0, GDT_Unknown, o->dsco);
  if (!ds)
    CPLError(CE_Failure, CPLE_OpenFailed, "asd_writer: cannot create '%s' with the %s driver", path,
             GDALGetDriverShortName(drv));
  return ds;
}

/* Deletes the features of lyr whose source_image field (index fi) equals
 * src: SQL in SQLite-based formats, feature by feature elsewhere.  0 or -1. */
static int delete_source(GDALDatasetH ds, OGRLayerH lyr, int fi, const char *src) {
  if (fi < 0) return 0;
  /* The field's name as the driver stored it (Shapefile truncates it). */
  const char *fname = OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(OGR_L_GetLayerDefn(lyr), fi));
  const char *dname = GDALGetDriverShortName(GDALGetDatasetDriver(ds));
  char *val = CPLEscapeString(src, -1, CPLES_SQL);
  char *fesc = CPLEscapeString(fname, -1, CPLES_SQLI);
  int rc = 0;
  if (EQUAL(dname, "GPKG") || EQUAL(dname, "SQLite")) {
    char *lesc = CPLEscapeString(OGR_L_GetName(lyr), -1, CPLES_SQLI);
    CPLErrorReset();
    OGRLayerH res = GDALDatasetExecuteSQL(
        ds, CPLSPrintf("DELETE FROM \"%s\" WHERE \"%s\" = '%s'", lesc, fesc, val), NULL, NULL);
    if (res) GDALDatasetReleaseResultSet(ds, res);
    if (CPLGetLastErrorType() == CE_Failure) rc = -1;
    CPLFree(lesc);
  } else {
    GIntBig *fids = NULL;
    size_t n = 0, cap = 0;
    if (OGR_L_SetAttributeFilter(lyr, CPLSPrintf("\"%s\" = '%s'", fesc, val)) != OGRERR_NONE) rc = -1;
    OGR_L_ResetReading(lyr);
    OGRFeatureH f;
    while (rc == 0 && (f = OGR_L_GetNextFeature(lyr)) != NULL) {
      if (n == cap) {
        cap = cap ? 2 * cap : 256;
        fids = CPLRealloc(fids, cap * sizeof *fids);
      }
      fids[n++] = OGR_F_GetFID(f);
      OGR_F_Destroy(f);
    }
    OGR_L_SetAttributeFilter(lyr, NULL);
    if (n && !OGR_L_TestCapability(lyr, OLCDeleteFeature)) rc = -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
      if (OGR_L_DeleteFeature(lyr, fids[i]) != OGRERR_NONE) rc = -1;
    CPLFree(fids);
    if (rc == 0 && n && EQUAL(dname, "ESRI Shapefile")) {
      /* Deleted records stay in the .dbf until the file is packed. */
      char *lesc = CPLEscapeString(OGR_L_GetName(lyr), -1, CPLES_SQLI);
      OGRLayerH res = GDALDatasetExecuteSQL(ds, CPLSPrintf("REPACK \"%s\"", lesc), NULL, NULL);
      if (res) GDALDatasetReleaseResultSet(ds, res);
      CPLFree(lesc);
    }
  }
  if (rc != 0)
    CPLError(CE_Failure, CPLE_AppDefined,
             "asd_writer: cannot remove the earlier features of '%s' from layer '%s' of '%s' (the %s driver "
             "cannot delete features)",
             src, OGR_L_GetName(lyr), GDALGetDescription(ds), dname);
  CPLFree(val);
  CPLFree(fesc);
  return rc;
}

static void init_out(out_ds *o, GDALDatasetH ds) {
  memset(o, 0, sizeof(*o));
  o->ds = ds;
  o->tx_supported = GDALDatasetTestCapability(ds, ODsCTransactions) != 0;
}

asd_writer *asd_writer_open(const char *path, const asd_writer_options *o, asd_georef *georef) {
  asd_writer_options def;
  if (!o) {
    asd_writer_options_init(&def);
    o = &def;
  }
  if (!path || !path[0]) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_writer: no output path");
    return NULL;
  }
  if (o->overwrite && o->append) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_writer: -overwrite and -append are mutually exclusive");
    return NULL;
  }
  GDALAllRegister();
  GDALDriverH drv = pick_driver(path, o->format);
  if (!drv) return NULL;
  if (!GDALGetMetadataItem(drv, GDAL_DCAP_CREATE, NULL)) {
    CPLError(CE_Failure, CPLE_NotSupported, "asd_writer: the %s driver cannot create datasources",
             GDALGetDriverShortName(drv));
    return NULL;
  }
  GDALDatasetH ds = open_output(path, drv, o);
  if (!ds) return NULL;

  asd_writer *w = CPLCalloc(1, sizeof(*w));
  w->georef = georef;
  init_out(&w->main, ds);
  w->batch = o->batch_size > 0 ? o->batch_size : 10000;
  w->batch_seconds = o->batch_seconds > 0 ? o->batch_seconds : 0;
  w->nested = o->nested_properties < 0 ? is_geojson(drv) : o->nested_properties != 0;
  w->shapefile = EQUAL(GDALGetDriverShortName(drv), "ESRI Shapefile");
  w->source_image = CPLStrdup(o->source_image ? o->source_image : "");
  w->source_metadata = o->source_metadata_json ? CPLStrdup(o->source_metadata_json) : NULL;
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(w->inference_dt, sizeof(w->inference_dt), "%Y-%m-%dT%H:%M:%SZ", &tmv);

  OGRSpatialReferenceH srs = asd_georef_srs(georef);
  /* Pixel space: a GeoPackage layer without an SRS is recorded as
   * "undefined geographic", which GIS software would read as degrees.  A
   * local (engineering) SRS says what the numbers are. */
  OGRSpatialReferenceH local = NULL;
  if (!srs && asd_georef_is_pixel_space(georef) && !is_geojson(drv)) {
    local = OSRNewSpatialReference(NULL);
    OSRSetLocalCS(local, "image pixels (x right, y down)");
    srs = local;
  }
  /* Single-geometry-type formats get polygons; others any geometry, so a
   * point detection stays a point. */
  const int single_type = EQUAL(GDALGetDriverShortName(drv), "ESRI Shapefile");
  const OGRwkbGeometryType gtype = single_type ? wkbPolygon : wkbUnknown;
  const char *lname = o->layer_name ? o->layer_name : "detections";
  if (o->append && one_layer_file(ds, drv, path) && GDALDatasetGetLayerCount(ds) == 1)
    /* The one layer of a file is named after the file (ships.shp: ships):
     * appending means appending to it, whatever its name. */
    w->det = GDALDatasetGetLayer(ds, 0);
  else
    w->det = get_layer(ds, lname, o->overwrite, o->append, srs, gtype, o->lco);
  if (!w->det || ensure_fields(w->det, DETECTION_FIELDS, F_COUNT, N_IMAGE_GEOMETRY, w->nested, w->det_idx, is_shapefile(ds)) != 0) {
    if (local) OSRDestroySpatialReference(local);
    asd_writer_close(w);
    return NULL;
  }

  if (o->write_tiles) {
    char *tname = o->tiles_layer_name ? CPLStrdup(o->tiles_layer_name)
                  : o->layer_name   ? CPLStrdup(CPLSPrintf("%s_tiles", o->layer_name))
                                    : CPLStrdup("tiles");
    GDALDatasetH tds = NULL;
    const char *tpath = o->tiles_path;
    const int one_layer = find_layer(ds, tname) < 0 && one_layer_file(ds, drv, path);
    if (!tpath && o->tiles_fallback_path && one_layer) tpath = o->tiles_fallback_path;
    if (tpath) {
      /* The sibling file of a one-layer output takes the output's driver. */
      GDALDriverH tdrv = o->tiles_path ? pick_driver(tpath, NULL) : drv;
      tds = tdrv ? open_output(tpath, tdrv, o) : NULL;
      if (!tds) {
        CPLFree(tname);
        if (local) OSRDestroySpatialReference(local);
        asd_writer_close(w);
        return NULL;
      }
      init_out(&w->tiles_ds, tds);
      w->tiles_owner = &w->tiles_ds;
      w->tiles_location = CPLStrdup(tpath);
    } else if (!one_layer) {
      tds = ds;
      w->tiles_owner = &w->main;
      w->tiles_location = CPLStrdup(path);
    } else {
      CPLError(CE_Warning, CPLE_AppDefined,
               "asd_writer: the %s driver holds one layer per file: the tile-status layer is not written "
               "(give it a separate file)",
               GDALGetDriverShortName(drv));
    }
    if (tds == ds && !GDALDatasetTestCapability(ds, ODsCRandomLayerWrite) && find_layer(ds, tname) < 0) {
      /* KML, GML...: features must go layer after layer, so the tile layer
         is created after the last detection (asd_writer_add_tile). */
      w->deferred_tiles = CPLStrdup(tname);
      w->deferred_srs = srs ? OSRClone(srs) : NULL;
      w->deferred_lco = CSLDuplicate(o->lco);
    } else if (tds) {
      if (tds != ds && o->append && GDALDatasetGetLayerCount(tds) == 1)
        w->tiles = GDALDatasetGetLayer(tds, 0); /* the sibling file's one layer */
      else
        w->tiles = get_layer(tds, tname, o->overwrite, o->append, srs, wkbPolygon, o->lco);
      if (!w->tiles || ensure_fields(w->tiles, TILE_FIELDS, T_COUNT, T_COUNT, 0, w->tile_idx, is_shapefile(w->tiles_owner->ds)) != 0) {
        CPLFree(tname);
        if (local) OSRDestroySpatialReference(local);
        asd_writer_close(w);
        return NULL;
      }
    }
    CPLFree(tname);
  }
  char *single[] = {(char *)o->source_image, NULL};
  for (char **src = o->replace_sources ? o->replace_sources : single; o->replace_source && o->append && *src; src++) {
    if (delete_source(ds, w->det, w->det_idx[F_SRC], *src) != 0 ||
        (w->tiles && delete_source(w->tiles_owner->ds, w->tiles, w->tile_idx[T_SRC], *src) != 0)) {
      if (local) OSRDestroySpatialReference(local);
      asd_writer_close(w);
      return NULL;
    }
  }
  if (local) OSRDestroySpatialReference(local);
  return w;
}

/* ------------------------------------------------------------------------
 * Features.
 * ---------------------------------------------------------------------- */

/* Appends a JSON number with full precision (integers stay integers). */
static void json_num(asd_buf *b, double v) {
  if (!isfinite(v)) {
    asd_buf_append_str(b, "null");
  } else if (v == floor(v) && fabs(v) < 1e15) {
    asd_buf_appendf(b, "%.0f", v);
  } else {
    asd_buf_appendf(b, "%.17g", v);
  }
}

/* The detection's outline in image pixels as a list of points (closed ring
 * for boxes and polygons, one point for points). */
static int pixel_shape(const asd_detection *d, double **xy_out) {
  double *xy;
  int n;
  if (d->kind == ASD_GEOM_POLYGON && d->ring && d->ring_len >= 4) {
    n = (int)d->ring_len;
    xy = CPLMalloc(sizeof(double) * 2 * (size_t)n);
    for (int i = 0; i < n; i++) xy[2 * i] = d->ring[i].x, xy[2 * i + 1] = d->ring[i].y;
  } else if (d->kind == ASD_GEOM_POINT && d->ring && d->ring_len >= 1) {
    n = 1;
    xy = CPLMalloc(sizeof(double) * 2);
    xy[0] = d->ring[0].x;
    xy[1] = d->ring[0].y;
  } else {
    n = 5;
    xy = CPLMalloc(sizeof(double) * 10);
    const double c[10] = {d->minx, d->miny, d->minx, d->maxy, d->maxx, d->maxy, d->maxx, d->miny, d->minx, d->miny};
    memcpy(xy, c, sizeof(c));
  }
  *xy_out = xy;
  return n;
}

static char *shape_wkt(const double *xy, int n) {
  asd_buf b;
  asd_buf_init(&b);
  if (n == 1) {
    asd_buf_appendf(&b, "POINT (%.15g %.15g)", xy[0], xy[1]);
  } else {
    asd_buf_append_str(&b, "POLYGON ((");
    for (int i = 0; i < n; i++) asd_buf_appendf(&b, "%s%.15g %.15g", i ? "," : "", xy[2 * i], xy[2 * i + 1]);
    asd_buf_append_str(&b, "))");
  }
  return (char *)asd_buf_take(&b, NULL);
}

static char *shape_geojson(const double *xy, int n) {
  asd_buf b;
  asd_buf_init(&b);
  if (n == 1) {
    asd_buf_append_str(&b, "{\"type\":\"Point\",\"coordinates\":[");
    json_num(&b, xy[0]);
    asd_buf_append_str(&b, ",");
    json_num(&b, xy[1]);
    asd_buf_append_str(&b, "]}");
  } else {
    asd_buf_append_str(&b, "{\"type\":\"Polygon\",\"coordinates\":[[");
    for (int i = 0; i < n; i++) {
      asd_buf_append_str(&b, i ? ",[" : "[");
      json_num(&b, xy[2 * i]);
      asd_buf_append_str(&b, ",");
      json_num(&b, xy[2 * i + 1]);
      asd_buf_append_str(&b, "]");
    }
    asd_buf_append_str(&b, "]]}");
  }
  return (char *)asd_buf_take(&b, NULL);
}

/* A JSON string literal (escaped) through json-c. */
static void json_str(asd_buf *b, const char *s) {
  json_object *o = json_object_new_string(s ? s : "");
  asd_buf_append_str(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(o);
}

/* (image, row, col) -> one key; grids stay below 2^22 rows and columns. */
static long long ungeo_key(int image, int row, int col) {
  return ((long long)image << 44) | ((long long)(row & 0x3fffff) << 22) | (long long)(col & 0x3fffff);
}

/* Detections of tile (row, col) written without a geometry so far. */
static long long ungeo_count(const asd_writer *w, int row, int col) {
  const long long k = ungeo_key(w->image, row, col);
  for (size_t i = 0; i < w->ungeo_n; i++)
    if (w->ungeo_keys[i] == k) return w->ungeo_counts[i];
  return 0;
}

/* Counts a shape trimmed or left without a geometry.  Failures are rare
 * (the edge of a limited domain), so a list searched linearly will do. */
static void count_georef(asd_writer *w, asd_georef_status st, int tile, int row, int col) {
  if (st == ASD_GEOREF_TRIMMED) {
    if (tile) w->geo.tiles_trimmed++;
    else w->geo.detections_trimmed++;
    return;
  }
  if (st != ASD_GEOREF_FAILED || asd_georef_is_pixel_space(w->georef)) return;
  if (tile) {
    w->geo.tiles_failed++;
    return;
  }
  w->geo.detections_failed++;
  const long long k = ungeo_key(w->image, row, col);
  for (size_t i = 0; i < w->ungeo_n; i++)
    if (w->ungeo_keys[i] == k) {
      w->ungeo_counts[i]++;
      return;
    }
  w->ungeo_keys = CPLRealloc(w->ungeo_keys, (w->ungeo_n + 1) * sizeof(long long));
  w->ungeo_counts = CPLRealloc(w->ungeo_counts, (w->ungeo_n + 1) * sizeof(long long));
  w->ungeo_keys[w->ungeo_n] = k;
  w->ungeo_counts[w->ungeo_n++] = 1;
}

/* Counts a write, committing when the batch is full or old enough. */
static int after_write(asd_writer *w, out_ds *o) {
  if (!o->in_tx) return 0;
  if (++o->pending >= w->batch) return tx_commit(o);
  if (w->batch_seconds > 0 && asd_time_monotonic() - o->t0 >= w->batch_seconds) return tx_commit(o);
  return 0;
}

int asd_writer_add_detection(asd_writer *w, const struct asd_detection *d) {
  if (!w || !d || !w->det) return -1;
  tx_begin(&w->main);
  double *xy = NULL;
  const int n = pixel_shape(d, &xy);
  OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(w->det));

  /* Geometry: trimmed to its georeferenced part when it crosses the edge
   * of the transform's domain, absent (and counted) when nothing of it is
   * georeferenced; the image-pixel fields are written either way. */
  asd_georef_status gst = ASD_GEOREF_FAILED;
  OGRGeometryH g = asd_georef_ring_ex(w->georef, xy, n, &gst);
  if (g && OGR_L_GetGeomType(w->det) == wkbPolygon && wkbFlatten(OGR_G_GetGeometryType(g)) != wkbPolygon) {
    /* A point in a polygon-only layer (Shapefile) becomes its box. */
    OGR_G_DestroyGeometry(g);
    g = asd_georef_box_ex(w->georef, d->minx, d->miny, d->maxx, d->maxy, &gst);
  }
  count_georef(w, gst, 0, d->tile_row, d->tile_col);

  /* Centre of the box, converted; the centre of what was georeferenced
   * when the box's own centre is outside the transform's domain. */
  double cx = (d->minx + d->maxx) / 2, cy = (d->miny + d->maxy) / 2;
  int center_ok = asd_georef_transform(w->georef, 1, &cx, &cy) == 0;
  if (!center_ok && g) {
    OGRGeometryH c = OGR_G_CreateGeometry(wkbPoint);
    if (OGR_G_Centroid(g, c) == OGRERR_NONE) {
      cx = OGR_G_GetX(c, 0);
      cy = OGR_G_GetY(c, 0);
      center_ok = 1;
    }
    OGR_G_DestroyGeometry(c);
  }
  if (g) OGR_F_SetGeometryDirectly(f, g);

  const int *ix = w->det_idx;
  OGR_F_SetFieldString(f, ix[F_CLASS], d->class_iri ? d->class_iri : "");
  OGR_F_SetFieldDouble(f, ix[F_SCORE], d->score);
  OGR_F_SetFieldDouble(f, ix[F_RAW_SCORE], d->raw_score);
  OGR_F_SetFieldString(f, ix[F_CLASSES], d->classes_json ? d->classes_json : "[]");
  OGR_F_SetFieldDouble(f, ix[F_IMINX], d->minx);
  OGR_F_SetFieldDouble(f, ix[F_IMINY], d->miny);
  OGR_F_SetFieldDouble(f, ix[F_IMAXX], d->maxx);
  OGR_F_SetFieldDouble(f, ix[F_IMAXY], d->maxy);
  char *wkt = shape_wkt(xy, n);
  /* A .dbf string holds 254 characters: a longer outline would be cut
   * into invalid WKT, so a Shapefile leaves it empty (the box columns
   * remain). */
  if (wkt && !(w->shapefile && strlen(wkt) > 254)) OGR_F_SetFieldString(f, ix[F_IGEOM], wkt);
  free(wkt);
  if (center_ok) {
    OGR_F_SetFieldDouble(f, ix[F_CLON], cx);
    OGR_F_SetFieldDouble(f, ix[F_CLAT], cy);
  }
  OGR_F_SetFieldInteger(f, ix[F_TROW], d->tile_row);
  OGR_F_SetFieldInteger(f, ix[F_TCOL], d->tile_col);
  if (d->inference_id) OGR_F_SetFieldString(f, ix[F_INFID], d->inference_id);
  OGR_F_SetFieldString(f, ix[F_SRC], w->source_image);
  if (d->model_metadata_json) OGR_F_SetFieldString(f, ix[F_MODEL], d->model_metadata_json);
  OGR_F_SetFieldInteger(f, ix[F_MERGED], d->merged_count > 0 ? d->merged_count : 1);
  OGR_F_SetFieldString(f, ix[F_GEOREF], georef_value(gst));

  if (w->nested) {
    char *gj = shape_geojson(xy, n);
    if (gj) OGR_F_SetFieldString(f, ix[N_IMAGE_GEOMETRY], gj);
    free(gj);
    asd_buf b;
    asd_buf_init(&b);
    asd_buf_append_str(&b, "[");
    json_num(&b, d->minx);
    asd_buf_append_str(&b, ",");
    json_num(&b, d->miny);
    asd_buf_append_str(&b, ",");
    json_num(&b, d->maxx);
    asd_buf_append_str(&b, ",");
    json_num(&b, d->maxy);
    asd_buf_append_str(&b, "]");
    OGR_F_SetFieldString(f, ix[N_IMAGE_BBOX], (const char *)b.data);
    OGR_F_SetFieldString(f, ix[N_FEATURE_CLASSES], d->classes_json ? d->classes_json : "[]");
    OGR_F_SetFieldString(f, ix[N_MODEL_METADATA], d->model_metadata_json ? d->model_metadata_json : "{}");
    if (center_ok) {
      OGR_F_SetFieldDouble(f, ix[N_CENTER_LON], cx);
      OGR_F_SetFieldDouble(f, ix[N_CENTER_LAT], cy);
    }
    asd_buf_reset(&b);
    asd_buf_append_str(&b, "{\"jobId\":");
    if (d->inference_id) json_str(&b, d->inference_id);
    else asd_buf_append_str(&b, "null");
    asd_buf_appendf(&b, ",\"inferenceDT\":\"%s\"}", w->inference_dt);
    OGR_F_SetFieldString(f, ix[N_INFERENCE_METADATA], (const char *)b.data);
    asd_buf_reset(&b);
    if (w->source_metadata) {
      asd_buf_append_str(&b, w->source_metadata);
    } else {
      asd_buf_append_str(&b, "[{\"location\":");
      json_str(&b, w->source_image);
      asd_buf_append_str(&b, "}]");
    }
    OGR_F_SetFieldString(f, ix[N_SOURCE_METADATA], (const char *)b.data);
    asd_buf_free(&b);
  }
  CPLFree(xy);

  int rc = 0;
  if (OGR_L_CreateFeature(w->det, f) != OGRERR_NONE) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: writing a detection to layer '%s' failed",
             OGR_L_GetName(w->det));
    w->failed = 1;
    rc = -1;
  } else {
    w->written++;
  }
  OGR_F_Destroy(f);
  if (after_write(w, &w->main) != 0) {
    w->failed = 1;
    rc = -1;
  }
  return rc;
}

int asd_writer_add_tile(asd_writer *w, const asd_tile *t, asd_tile_state state, const char *reason,
                        const char *inference_id, long long feature_count) {
  if (!w || !t) return -1;
  if (w->deferred_tiles) {
    char *name = w->deferred_tiles;
    w->deferred_tiles = NULL;
    w->tiles_owner = &w->main;
    tx_commit(&w->main);
    w->tiles = GDALDatasetCreateLayer(w->main.ds, name, w->deferred_srs, wkbPolygon, w->deferred_lco);
    if (!w->tiles || ensure_fields(w->tiles, TILE_FIELDS, T_COUNT, T_COUNT, 0, w->tile_idx, is_shapefile(w->tiles_owner->ds)) != 0) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: cannot create layer '%s' in '%s'", name,
               GDALGetDescription(w->main.ds));
      w->tiles = NULL;
      w->failed = 1;
    }
    CPLFree(name);
    if (!w->tiles) return -1;
  }
  if (!w->tiles) return 0; /* disabled (single-layer format) */
  out_ds *o = w->tiles_owner;
  tx_begin(o);
  OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(w->tiles));
  asd_georef_status gst = ASD_GEOREF_FAILED;
  OGRGeometryH g = asd_georef_box_ex(w->georef, t->x, t->y, (double)t->x + t->w, (double)t->y + t->h, &gst);
  if (g) OGR_F_SetGeometryDirectly(f, g);
  count_georef(w, gst, 1, t->row, t->col);
  const int *ix = w->tile_idx;
  OGR_F_SetFieldInteger(f, ix[T_INDEX], t->index);
  OGR_F_SetFieldInteger(f, ix[T_ROW], t->row);
  OGR_F_SetFieldInteger(f, ix[T_COL], t->col);
  OGR_F_SetFieldInteger(f, ix[T_X], t->x);
  OGR_F_SetFieldInteger(f, ix[T_Y], t->y);
  OGR_F_SetFieldInteger(f, ix[T_W], t->w);
  OGR_F_SetFieldInteger(f, ix[T_H], t->h);
  OGR_F_SetFieldString(f, ix[T_STATUS], asd_tile_state_name(state));
  if (reason) OGR_F_SetFieldString(f, ix[T_REASON], reason);
  else if (state == ASD_TILE_SKIPPED && t->skip != ASD_SKIP_NONE)
    OGR_F_SetFieldString(f, ix[T_REASON], asd_skip_reason_name(t->skip));
  if (inference_id) OGR_F_SetFieldString(f, ix[T_INFID], inference_id);
  if (feature_count >= 0) OGR_F_SetFieldInteger64(f, ix[T_FCOUNT], feature_count);
  OGR_F_SetFieldString(f, ix[T_SRC], w->source_image);
  OGR_F_SetFieldString(f, ix[T_GEOREF], georef_value(gst));
  OGR_F_SetFieldInteger64(f, ix[T_UNGEO], ungeo_count(w, t->row, t->col));
  int rc = 0;
  if (OGR_L_CreateFeature(w->tiles, f) != OGRERR_NONE) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_writer: writing tile %d to layer '%s' failed", t->index,
             OGR_L_GetName(w->tiles));
    w->failed = 1;
    rc = -1;
  }
  OGR_F_Destroy(f);
  if (after_write(w, o) != 0) {
    w->failed = 1;
    rc = -1;
  }
  return rc;
}

int asd_writer_set_image(asd_writer *w, int image, const char *source_image, asd_georef *georef) {
  if (!w || !georef) return -1;
  w->image = image;
  w->georef = georef;
  CPLFree(w->source_image);
  w->source_image = CPLStrdup(source_image ? source_image : "");
  return 0;
}

long long asd_writer_feature_count(const asd_writer *w) { return w ? w->written : 0; }

void asd_writer_get_georef_counts(const asd_writer *w, asd_writer_georef_counts *c) {
  if (w)
    *c = w->geo;
  else
    memset(c, 0, sizeof(*c));
}

GDALDatasetH asd_writer_dataset(asd_writer *w) { return w ? w->main.ds : NULL; }

int asd_writer_commit(asd_writer *w) {
  if (!w) return -1;
  int rc = tx_commit(&w->main);
  if (rc != 0) w->failed = 1;
  return rc;
}

const char *asd_writer_tiles_location(const asd_writer *w) { return w ? w->tiles_location : NULL; }

char *asd_writer_tiles_sidecar_path(const char *dest) {
  if (!dest) return NULL;
  const char *ext = CPLGetExtension(dest);
  if (!*ext) return CPLStrdup(CPLSPrintf("%s_tiles", dest));
  /* CPLSPrintf has no %.*s: cut a copy at the dot. */
  char *stem = CPLStrdup(dest);
  stem[strlen(dest) - strlen(ext) - 1] = '\0';
  char *out = CPLStrdup(CPLSPrintf("%s_tiles.%s", stem, ext));
  CPLFree(stem);
  return out;
}

static int close_out(out_ds *o) {
  if (!o->ds) return 0;
  int rc = tx_commit(o);
  CPLErrorReset();
  GDALClose(o->ds);
  if (CPLGetLastErrorType() == CE_Failure) rc = -1;
  o->ds = NULL;
  return rc;
}

int asd_writer_close(asd_writer *w) {
  if (!w) return -1;
  int rc = w->failed ? -1 : 0;
  const asd_writer_georef_counts *c = &w->geo;
  if (c->detections_failed || c->tiles_failed || c->detections_trimmed || c->tiles_trimmed)
    CPLError(CE_Warning, CPLE_AppDefined,
             "%lld detection(s) and %lld tile footprint(s) not georeferenced (%s): written with their image-pixel "
             "fields and no geometry (field georef = none); %lld detection(s) and %lld footprint(s) trimmed to their "
             "georeferenced part (georef = trimmed)",
             c->detections_failed, c->tiles_failed, asd_georef_why(w->georef), c->detections_trimmed,
             c->tiles_trimmed);
  CPLFree(w->ungeo_keys);
  CPLFree(w->ungeo_counts);
  /* Default map styles (styles.c): GeoPackage rows now, style files once closed. */
  asd_styles_job *styles =
      w->failed ? NULL : asd_styles_begin(w->main.ds, w->det, w->tiles_owner ? w->tiles_owner->ds : NULL, w->tiles);
  if (close_out(&w->tiles_ds) != 0) rc = -1;
  if (close_out(&w->main) != 0) rc = -1;
  asd_styles_finish(styles, rc == 0);
  CPLFree(w->source_image);
  CPLFree(w->source_metadata);
  CPLFree(w->tiles_location);
  CPLFree(w->deferred_tiles);
  if (w->deferred_srs) OSRDestroySpatialReference(w->deferred_srs);
  CSLDestroy(w->deferred_lco);
  CPLFree(w);
  return rc;
}
