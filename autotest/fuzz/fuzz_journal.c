/*
 * fuzz_journal.c: reading back a run journal for -resume (tiler/journal.c),
 * and what the resume does with what it read.
 *
 * A journal is a GeoPackage the user keeps between runs; it may be damaged,
 * edited, or come from another version.  The fuzz input describes its rows,
 * one per line, fields separated by '|':
 *
 *   T|tile|state|inference_id|input|output|failure|reason|attempts|result
 *   M|key|value                        (a row of asd_journal_meta)
 *
 * "~" stands for a NULL field; "\n" inside the result field is written as
 * "\\n".  The rows are inserted with OGR directly (not through the journal
 * API, which would only write well-formed rows) into a copy of an empty
 * journal in /vsimem/, then the journal is opened as -resume opens it:
 * identity bound, note read, every tile of a 64-tile plan looked up, the
 * stored result of a succeeded tile parsed as model output, the S3
 * locations of an in-flight tile parsed as URIs.  Checked: whatever the rows,
 * the journal either opens or fails with a CPLError, and an entry read back
 * has the tile number it was asked for and a known state.
 */
#include <string.h>

#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "gdal.h"
#include "ogr_api.h"

#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_journal.h"
#include "asyncdetect/asd_s3.h"
#include "fuzz_target.h"

#define TEMPLATE "/vsimem/fuzz_journal_template.gpkg"
#define WORK "/vsimem/fuzz_journal.gpkg"
#define NTILES 64

static GByte *template_bytes;
static vsi_l_offset template_len;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  GDALAllRegister();
  CPLSetConfigOption("CPL_LOG_ERRORS", "OFF");
  CPLPushErrorHandler(CPLQuietErrorHandler);
  asd_journal *j = asd_journal_open_path(TEMPLATE, 1);
  if (!j) {
    fprintf(stderr, "fuzz_journal: cannot create the template journal\n");
    abort();
  }
  asd_journal_close(j);
  GByte *b = VSIGetMemFileBuffer(TEMPLATE, &template_len, FALSE);
  template_bytes = CPLMalloc((size_t)template_len);
  memcpy(template_bytes, b, (size_t)template_len);
  VSIUnlink(TEMPLATE);
  return 0;
}

static void set_field(OGRFeatureH f, OGRFeatureDefnH defn, const char *name, const char *v) {
  int idx = OGR_FD_GetFieldIndex(defn, name);
  if (idx < 0) return;
  if (!v || strcmp(v, "~") == 0) {
    OGR_F_SetFieldNull(f, idx);
    return;
  }
  char *unescaped = CPLStrdup(v);
  for (char *p = unescaped; (p = strstr(p, "\\n")) != NULL;) {
    *p = '\n';
    memmove(p + 1, p + 2, strlen(p + 2) + 1);
  }
  OGR_F_SetFieldString(f, idx, unescaped);
  CPLFree(unescaped);
}

static void write_rows(const char *text) {
  GDALDatasetH ds = GDALOpenEx(WORK, GDAL_OF_VECTOR | GDAL_OF_UPDATE, NULL, NULL, NULL);
  FUZZ_CHECK(ds != NULL);
  OGRLayerH lyr = GDALDatasetGetLayerByName(ds, "asd_journal");
  OGRLayerH meta = GDALDatasetGetLayerByName(ds, "asd_journal_meta");
  FUZZ_CHECK(lyr && meta);
  static const char *const cols[] = {"tile", "state", "inference_id", "input_location", "output_location",
                                     "failure_location", "reason", "attempts", "result"};
  char **lines = CSLTokenizeStringComplex(text, "\n", FALSE, TRUE);
  for (int i = 0; lines && lines[i] && i < 256; i++) {
    char **f = CSLTokenizeStringComplex(lines[i], "|", FALSE, TRUE);
    int n = CSLCount(f);
    if (n >= 1 && strcmp(f[0], "T") == 0) {
      OGRFeatureH feat = OGR_F_Create(OGR_L_GetLayerDefn(lyr));
      for (int k = 0; k < 9 && k + 1 < n; k++) set_field(feat, OGR_L_GetLayerDefn(lyr), cols[k], f[k + 1]);
      /* A row the table refuses is simply not there, as in a damaged file. */
      if (OGR_L_CreateFeature(lyr, feat) != OGRERR_NONE) CPLErrorReset();
      OGR_F_Destroy(feat);
    } else if (n >= 2 && strcmp(f[0], "M") == 0) {
      OGRFeatureH feat = OGR_F_Create(OGR_L_GetLayerDefn(meta));
      set_field(feat, OGR_L_GetLayerDefn(meta), "key", f[1]);
      set_field(feat, OGR_L_GetLayerDefn(meta), "value", n >= 3 ? f[2] : NULL);
      if (OGR_L_CreateFeature(meta, feat) != OGRERR_NONE) CPLErrorReset();
      OGR_F_Destroy(feat);
    }
    CSLDestroy(f);
  }
  CSLDestroy(lines);
  GDALClose(ds);
}

static void replay(asd_journal *j) {
  char **identity = NULL;
  identity = CSLSetNameValue(identity, "input", "scene.tif");
  identity = CSLSetNameValue(identity, "tiles", "64");
  char *mismatch = NULL;
  if (asd_journal_bind(j, identity, &mismatch) != 0) {
    /* A mismatch names the key; -resume stops there. */
    CPLFree(mismatch);
    CSLDestroy(identity);
    return;
  }
  CSLDestroy(identity);
  CPLFree(asd_journal_get_note(j, "output_mode"));
  int s = 0, ok = 0, failed = 0;
  asd_journal_counts(j, &s, &ok, &failed);
  FUZZ_CHECK(s >= 0 && ok >= 0 && failed >= 0 && s + ok + failed <= asd_journal_count(j));
  for (int i = 0; i < NTILES; i++) {
    asd_journal_entry *e = asd_journal_get(j, i);
    if (!e) continue;
    FUZZ_CHECK(e->tile == i);
    FUZZ_CHECK(e->state >= ASD_JOURNAL_NONE && e->state <= ASD_JOURNAL_FAILED);
    if (e->state == ASD_JOURNAL_SUCCEEDED) {
      char *text = asd_journal_result(j, i);
      if (text) {
        asd_tile_ref t;
        memset(&t, 0, sizeof t);
        t.index = i;
        t.x = (i % 8) * 448;
        t.y = (i / 8) * 448;
        t.w = t.h = 512;
        t.inference_id = e->inference_id;
        asd_detections dets;
        asd_detections_init(&dets);
        asd_parse_report rep;
        asd_features_parse(text, strlen(text), &t, NULL, &dets, &rep);
        asd_detections_free(&dets);
        CPLFree(text);
      }
    } else if (e->state == ASD_JOURNAL_SUBMITTED && e->output_location && *e->output_location) {
      const char *locs[] = {e->output_location, e->failure_location, e->input_location};
      for (int k = 0; k < 3; k++) {
        if (!locs[k]) continue;
        asd_s3_uri u;
        asd_aws_error err;
        if (asd_s3_uri_parse(locs[k], 0, &u, &err) == 0) {
          FUZZ_CHECK(asd_s3_bucket_name_valid(u.bucket) || u.bucket[0]);
          asd_s3_uri_free(&u);
        }
      }
    }
    asd_journal_entry_free(e);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = CPLMalloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  GByte *copy = CPLMalloc((size_t)template_len);
  memcpy(copy, template_bytes, (size_t)template_len);
  VSIFCloseL(VSIFileFromMemBuffer(WORK, copy, template_len, TRUE));
  write_rows(text);
  CPLFree(text);
  CPLErrorReset();
  asd_journal *j = asd_journal_open_path(WORK, 0);
  if (j) {
    replay(j);
    asd_journal_close(j);
  } else {
    FUZZ_CHECK(CPLGetLastErrorType() == CE_Failure);
  }
  VSIUnlink(WORK);
  return 0;
}
