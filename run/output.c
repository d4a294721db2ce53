/*
 * output.c: the output's whole life: the open-output stage, the tile-status
 * layer at the end, closing, and removing an output a failed run created.
 *
 * Open.  The driver is -of, else guessed from the extension (the writer is
 * then told explicitly, so both agree), else GPKG.  Files that cannot be
 * written are reported before the run, not after it: a directory where a
 * GeoPackage should be, an unwritable -metrics path, an existing output
 * without -overwrite / -append / -resume.  -overwrite and -append start a
 * new journal (the old journal tables of a GeoPackage are dropped first);
 * -overwrite replaces the utility's two layers only (the other layers of a
 * GeoPackage are the user's, as with ogr2ogr) and a one-layer file whole.
 * On -resume the journal's identity is checked before anything is written
 * (resume.c), and the journal says whether the interrupted run created the
 * output (created again) or appended to it (reopened, this image's features
 * replaced).  One-layer formats (GeoJSON, CSV, FlatGeobuf, .shp...) get the
 * tile-status layer in a sibling file, or where -status-output says.
 *
 * Detections go in batches (ASD_OUTPUT_BATCH_SIZE, ASD_OUTPUT_BATCH_SECONDS):
 * inside a GeoPackage the journal commits the open batch at each state
 * change (sink.c asd_run_journal_commit), which is what lets batches be large
 * without weakening -resume.
 *
 * Several images.  One output for the set: every feature and tile footprint
 * says its source_image (the label: no query string), and each image's
 * shapes go through its own georeferencer (asd_run_writer_image switches
 * the writer to an image before its features are written).  A resumed
 * -append replaces the features of every image of the set.
 *
 * Discard.  A run that failed before any tile succeeded leaves no output it
 * created behind, so the next attempt does not need -overwrite.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asd_run.h"
#include "cpl_conv.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "ogr_api.h"

const char *asd_run_output_format(const asd_detect_options *o, const char *dest) {
  if (o->format) return o->format;
  const char *ext = CPLGetExtension(dest);
  static const char *const map[][2] = {{"gpkg", "GPKG"},       {"geojson", "GeoJSON"},
                                       {"json", "GeoJSON"},    {"geojsonl", "GeoJSONSeq"},
                                       {"geojsons", "GeoJSONSeq"}, {"shp", "ESRI Shapefile"},
                                       {"fgb", "FlatGeobuf"},  {"csv", "CSV"},
                                       {"kml", "KML"},         {"gml", "GML"},
                                       {"sqlite", "SQLite"},   {"gdb", "OpenFileGDB"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (EQUAL(ext, map[i][0])) return map[i][1];
  return "GPKG";
}

void asd_run_tiles_layer_name(const asd_detect_options *o, char *out, size_t n) {
  if (o->status_layer_name)
    snprintf(out, n, "%s", o->status_layer_name);
  else if (EQUAL(o->layer_name, "detections"))
    snprintf(out, n, "tiles");
  else
    snprintf(out, n, "%s_tiles", o->layer_name);
}

int asd_run_path_exists(const char *p) {
  VSIStatBufL st;
  return VSIStatL(p, &st) == 0;
}

/* Where the output and the journal go, from -of and the destination name. */
void asd_run_locate_output(asd_run *r) {
  r->format = asd_run_output_format(r->o, r->dest);
  r->in_gpkg = EQUAL(r->format, "GPKG");
  asd_run_tiles_layer_name(r->o, r->tiles_layer, sizeof r->tiles_layer);
  if (!r->in_gpkg) r->sidecar = asd_journal_sidecar_path(r->dest);
  r->journal_path = r->in_gpkg ? r->dest : r->sidecar;
  r->dest_existed = asd_run_path_exists(r->dest);
}

/* Removes an output dataset (through its driver, so that every file of a
   multi-file format goes). */
static void delete_output(const char *path) {
  if (!asd_run_path_exists(path)) return;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
  GDALDriverH drv = ds ? GDALGetDatasetDriver(ds) : NULL;
  if (ds) GDALClose(ds);
  if (!drv || GDALDeleteDataset(drv, path) != CE_None) VSIUnlink(path);
  CPLPopErrorHandler();
}

/* Deletes the journal tables of an earlier run from an existing GeoPackage,
   through a short-lived connection of its own (a new run starts a new
   journal; the writer replaces or appends to the layers). */
static int gpkg_prepare(const char *path) {
  const char *const drv[] = {"GPKG", NULL};
  GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_UPDATE, drv, NULL, NULL);
  if (!ds) return -1;
  for (int i = GDALDatasetGetLayerCount(ds) - 1; i >= 0; i--) {
    const char *name = OGR_L_GetName(GDALDatasetGetLayer(ds, i));
    if ((EQUAL(name, "asd_journal") || EQUAL(name, "asd_journal_meta")) &&
        GDALDatasetDeleteLayer(ds, i) != OGRERR_NONE) {
      GDALClose(ds);
      return -1;
    }
  }
  GDALClose(ds);
  return 0;
}

/* What can be checked before anything is written. */
static int check_output(asd_run *r) {
  const asd_detect_options *o = r->o;
  const char *dest = r->dest;
  VSIStatBufL st;
  if (r->in_gpkg && VSIStatL(dest, &st) == 0 && VSI_ISDIR(st.st_mode))
    return asd_run_fail(r, "output '%s' is a directory: a GeoPackage is a file (give DIR/NAME.gpkg)", dest);
  if (o->metrics_path) {
    char *tmp = CPLStrdup(CPLSPrintf("%s.tmp", o->metrics_path));
    VSILFILE *f = VSIFOpenL(tmp, "wb");
    if (f) VSIFCloseL(f);
    VSIUnlink(tmp);
    CPLFree(tmp);
    if (!f)
      return asd_run_fail(r, "cannot write the metrics file '%s': %s", o->metrics_path, VSIStrerror(errno));
  }
  if (o->resume) {
    /* A one-layer output may not exist yet (FlatGeobuf writes its file at
       the end): its sidecar journal is what counts. */
    if ((r->in_gpkg && !r->dest_existed) || !asd_run_path_exists(r->journal_path))
      return asd_run_fail(r, "-resume: no journal for '%s' (expected %s); run without -resume first", dest,
                          r->in_gpkg ? "the asd_journal table in the GeoPackage" : r->journal_path);
  } else if (r->dest_existed && !o->overwrite && !o->append) {
    return asd_run_fail(r,
                        "output '%s' already exists: use -overwrite to replace it, -append to add to it, or "
                        "-resume to finish an interrupted run",
                        dest);
  }
  return 0;
}

static int open_writer(asd_run *r) {
  const asd_detect_options *o = r->o;
  asd_writer_options wo;
  asd_writer_options_init(&wo);
  wo.format = r->format;
  wo.dsco = o->dsco;
  wo.lco = o->lco;
  wo.layer_name = o->layer_name;
  wo.tiles_layer_name = r->tiles_layer;
  wo.overwrite = o->resume ? !r->resume_append : o->overwrite;
  wo.append = o->resume ? r->resume_append : o->append;
  wo.replace_source = o->resume && r->resume_append;
  wo.source_image = r->images[0].label;
  char **labels = NULL;
  for (int k = 0; r->nimages > 1 && k < r->nimages; k++) labels = CSLAddString(labels, r->images[k].label);
  wo.replace_sources = labels;
  char *tiles_sidecar = asd_writer_tiles_sidecar_path(r->dest);
  wo.tiles_path = o->status_output;
  wo.tiles_fallback_path = tiles_sidecar;
  const char *tiles_file = o->status_output ? o->status_output : tiles_sidecar;
  int tiles_existed = asd_run_path_exists(tiles_file);
  wo.batch_size = atoi(CPLGetConfigOption("ASD_OUTPUT_BATCH_SIZE", "10000"));
  wo.batch_seconds = CPLAtof(CPLGetConfigOption("ASD_OUTPUT_BATCH_SECONDS", "5"));
  /* The output GeoPackage holds the journal: ASD_JOURNAL_SYNC=FULL buys
     durability against a power cut for both (journal.c); a killed process
     loses nothing either way. */
  CPLSetThreadLocalConfigOption("OGR_SQLITE_SYNCHRONOUS",
                                r->in_gpkg ? CPLGetConfigOption("ASD_JOURNAL_SYNC", "OFF") : "OFF");
  r->writer = asd_writer_open(r->dest, &wo, r->images[0].georef);
  CPLSetThreadLocalConfigOption("OGR_SQLITE_SYNCHRONOUS", NULL);
  CSLDestroy(labels);
  r->writer_image = 0;
  if (!r->writer) {
    CPLFree(tiles_sidecar);
    return asd_run_fail(r, "cannot write output '%s': %s", r->dest,
                        asd_run_report_first(&r->report, "unknown error"));
  }
  r->output_created = !r->dest_existed;
  const char *tl = asd_writer_tiles_location(r->writer);
  if (tl) {
    snprintf(r->summary->tiles_location, sizeof r->summary->tiles_location, "%s", tl);
    if (!tiles_existed && strcmp(tl, r->dest) != 0) r->tiles_path = CPLStrdup(tl);
  }
  CPLFree(tiles_sidecar);
  return 0;
}

int asd_run_open_output(asd_run *r) {
  const asd_detect_options *o = r->o;
  if (check_output(r) != 0) return -1;
  if (!r->in_gpkg && !o->resume && asd_run_path_exists(r->sidecar)) VSIUnlink(r->sidecar);
  if (r->in_gpkg && r->dest_existed && !o->resume && gpkg_prepare(r->dest) != 0)
    return asd_run_fail(r, "cannot update output '%s': %s", r->dest,
                        asd_run_report_first(&r->report, "not a writable GeoPackage"));
  r->resume_append = r->in_gpkg;
  if (o->resume && asd_run_check_resume(r) != 0) return -1;
  return open_writer(r);
}

/* Makes the writer write for image k (its source_image, its georeferencer). */
int asd_run_writer_image(asd_run *r, int k) {
  if (!r->writer || r->writer_image == k) return 0;
  r->writer_image = k;
  return asd_writer_set_image(r->writer, k, r->images[k].label, r->images[k].georef);
}

/* Every planned tile, with its final state, in the tile-status layer. */
void asd_run_write_tile_status(asd_run *r, int interrupted) {
  for (int i = 0; i < r->ntiles; i++) {
    asd_run_tile *ti = &r->tiles[i];
    const asd_tile *t = asd_run_plan_tile(r, i);
    if (ti->state == ASD_RUN_TILE_PENDING) ti->state = ASD_RUN_TILE_NOT_RUN;
    if (!r->writer || ti->state == ASD_RUN_TILE_OTHER_SHARD) continue;
    asd_run_writer_image(r, ti->image);
    int wrc = 0;
    switch (ti->state) {
      case ASD_RUN_TILE_SUCCEEDED:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_SUCCEEDED, NULL, ti->inference_id, ti->features);
        break;
      case ASD_RUN_TILE_SKIPPED:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_SKIPPED, asd_skip_reason_name(ti->skip), NULL, -1);
        break;
      case ASD_RUN_TILE_FAILED:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_FAILED, ti->reason, ti->inference_id, -1);
        break;
      default:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_FAILED,
                                  ti->reason      ? ti->reason
                                  : interrupted ? "not run: interrupted (rerun with -resume)"
                                                : "not run (rerun with -resume)",
                                  ti->inference_id, -1);
    }
    if (wrc != 0)
      asd_run_set_fatal(r, "cannot write the tile-status layer of '%s': %s", r->dest, CPLGetLastErrorMsg());
  }
}

void asd_run_close_output(asd_run *r) {
  if (!r->writer) return;
  asd_writer_get_georef_counts(r->writer, &r->geo_counts);
  int crc = asd_writer_close(r->writer);
  r->writer = NULL;
  if (crc != 0) asd_run_set_fatal(r, "cannot finish writing '%s': %s", r->dest, CPLGetLastErrorMsg());
}

void asd_run_discard_output(asd_run *r) {
  if (!r->output_created || r->any_success) return;
  if (r->journal) {
    asd_journal_close(r->journal);
    r->journal = NULL;
  }
  delete_output(r->dest);
  if (r->sidecar) VSIUnlink(r->sidecar);
  if (r->tiles_path) delete_output(r->tiles_path);
}
