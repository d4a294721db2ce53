/*
 * journal.c: the run journal (asd_journal.h), which lets a run be resumed.
 *
 * A long detection run costs money and time at every tile, so the one thing
 * the utility must never do is lose work: after a crash, kill -9, Ctrl-C or a
 * network outage, `-resume` has to finish the job without invoking again a
 * tile that already completed, and it has to find again the tiles that were
 * in flight, whose results wait in S3.  The journal is what makes that
 * possible.
 *
 * It is two aspatial OGR tables in a GeoPackage.  asd_journal has one row per
 * tile ever submitted: state, inference id, the input/output/failure S3
 * locations, the failure reason, the submission count and, once the tile
 * succeeded, the result text the model returned.  asd_journal_meta holds the
 * identity of the run (input, window, tiling, bands, endpoint), so that a
 * -resume against a different input or tiling is refused instead of silently
 * mixing tile numbers that mean different windows.
 *
 * Why keep the result text, rather than only a "done" flag?  Detections are
 * merged across tile overlaps, and a tile's detections can only be written
 * once its neighbours are done.  Keeping every succeeded tile's result in the
 * journal makes the journal the single source of truth: the output layer is
 * derived from it and can be rebuilt deterministically on resume, whatever
 * point the previous run died at, with neither duplicates nor gaps, and
 * without depending on the endpoint's S3 objects still being there.
 *
 * Why a GeoPackage?  GDAL's OGR layer API on SQLite gives atomic, committed
 * single-row updates without another dependency, the journal can live inside
 * the output GeoPackage itself (one file for the user to keep), and for other
 * output formats the same code writes a sidecar GeoPackage.  In a sidecar,
 * every state change is one SQL statement in autocommit mode, so once a call
 * returns the row is in the file and survives the process being killed.
 * Inside the output GeoPackage the journal shares the writer's connection
 * (asd_journal_open_dataset): its statement joins the writer's open
 * transaction of detections, and the utility commits that transaction right
 * after each state change.  One connection means no lock to wait on, so the
 * detections can be written in large batches, and a tile's "succeeded" row
 * and the detections written before it reach the file together.  Synchronous mode
 * is relaxed to OFF when the journal owns its connection: a killed process
 * loses nothing (the OS keeps the written pages), only a power cut could; set
 * the configuration option ASD_JOURNAL_SYNC=FULL to pay for that too.
 *
 * The in-memory index (tile number -> row id and entry) avoids a query per
 * lookup; results stay on disk and are read on demand.  It is paged, so
 * that its size follows the rows present rather than the largest tile
 * number a (possibly damaged) journal names.
 */
#include "asyncdetect/asd_journal.h"
#include "asyncdetect/asd_common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "ogr_api.h"

#define JOURNAL_TABLE "asd_journal"
#define META_TABLE "asd_journal_meta"

typedef struct slot {
  GIntBig fid; /* OGRNullFID when the tile has no row */
  asd_journal_entry e;
} slot;

struct asd_journal {
  GDALDatasetH ds;
  int owns_ds;
  OGRLayerH lyr;
  OGRLayerH meta;
  pthread_mutex_t mu;
  slot **pages; /* pages[tile / PAGE_SLOTS], allocated when a tile in it is recorded */
  int npages;
  int count;
};

static const char *const state_names[] = {"none", "submitted", "succeeded", "failed"};

const char *asd_journal_state_name(asd_journal_state s) {
  if ((int)s < 0 || (int)s > 3) return "unknown";
  return state_names[s];
}

static asd_journal_state state_from_name(const char *s) {
  for (int i = 1; i < 4; i++)
    if (s && EQUAL(s, state_names[i])) return (asd_journal_state)i;
  return ASD_JOURNAL_NONE;
}

/* Field layout of the journal table; the indices below follow it. */
enum { F_TILE, F_STATE, F_INFERENCE, F_INPUT, F_OUTPUT, F_FAILURE, F_REASON, F_ATTEMPTS, F_UPDATED, F_RESULT };
static const struct {
  const char *name;
  OGRFieldType type;
} fields[] = {
    {"tile", OFTInteger},        {"state", OFTString},       {"inference_id", OFTString},
    {"input_location", OFTString}, {"output_location", OFTString}, {"failure_location", OFTString},
    {"reason", OFTString},       {"attempts", OFTInteger},   {"updated", OFTString},
    {"result", OFTString},
};
#define NFIELDS ((int)(sizeof(fields) / sizeof(fields[0])))

static int field_index(OGRLayerH lyr, int f) {
  return OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(lyr), fields[f].name);
}

static OGRLayerH create_table(GDALDatasetH ds, const char *name, int journal) {
  char **lco = CSLSetNameValue(NULL, "FID", "fid");
  OGRLayerH lyr = GDALDatasetCreateLayer(ds, name, NULL, wkbNone, lco);
  CSLDestroy(lco);
  if (!lyr) return NULL;
  if (journal) {
    for (int i = 0; i < NFIELDS; i++) {
      OGRFieldDefnH fd = OGR_Fld_Create(fields[i].name, fields[i].type);
      OGRErr err = OGR_L_CreateField(lyr, fd, TRUE);
      OGR_Fld_Destroy(fd);
      if (err != OGRERR_NONE) return NULL;
    }
  } else {
    const char *names[] = {"key", "value"};
    for (int i = 0; i < 2; i++) {
      OGRFieldDefnH fd = OGR_Fld_Create(names[i], OFTString);
      OGRErr err = OGR_L_CreateField(lyr, fd, TRUE);
      OGR_Fld_Destroy(fd);
      if (err != OGRERR_NONE) return NULL;
    }
  }
  return lyr;
}

/*
 * The index is paged so that its memory follows the rows present, not the
 * largest tile number: a damaged or edited journal with one row for tile
 * 100,000,000 made the flat array of earlier versions allocate 9.6 GB on
 * -resume (found by autotest/fuzz/fuzz_journal.c).  With create, a missing
 * page is allocated; NULL for a tile out of range, an absent page (without
 * create) or out of memory (after a CPLError).
 */
#define PAGE_SLOTS 1024

static slot *slot_at(asd_journal *j, int tile, int create) {
  if (tile < 0) return NULL;
  int p = tile / PAGE_SLOTS;
  if (p >= j->npages) {
    if (!create) return NULL;
    int n = j->npages ? j->npages : 16;
    while (n <= p) n *= 2;
    slot **np = realloc(j->pages, (size_t)n * sizeof(*np));
    if (!np) goto oom;
    memset(np + j->npages, 0, (size_t)(n - j->npages) * sizeof(*np));
    j->pages = np;
    j->npages = n;
  }
  if (!j->pages[p]) {
    if (!create) return NULL;
    slot *pg = malloc(PAGE_SLOTS * sizeof(slot));
    if (!pg) goto oom;
    for (int i = 0; i < PAGE_SLOTS; i++) {
      memset(&pg[i], 0, sizeof(slot));
      pg[i].fid = OGRNullFID;
      pg[i].e.tile = p * PAGE_SLOTS + i;
    }
    j->pages[p] = pg;
  }
  return &j->pages[p][tile % PAGE_SLOTS];
oom:
  CPLError(CE_Failure, CPLE_OutOfMemory, "asd_journal: out of memory");
  return NULL;
}

/* Every slot of every allocated page, for the whole-journal loops. */
#define FOR_EACH_SLOT(j, s)                                 \
  for (int pg_ = 0; pg_ < (j)->npages; pg_++)               \
    for (slot *s = (j)->pages[pg_], *end_ = s ? s + PAGE_SLOTS : NULL; s && s < end_; s++)

static void entry_clear(asd_journal_entry *e) {
  CPLFree(e->inference_id);
  CPLFree(e->input_location);
  CPLFree(e->output_location);
  CPLFree(e->failure_location);
  CPLFree(e->reason);
  e->inference_id = e->input_location = e->output_location = e->failure_location = e->reason = NULL;
}

static char *dup_field(OGRFeatureH f, int idx) {
  if (idx < 0 || !OGR_F_IsFieldSetAndNotNull(f, idx)) return NULL;
  return CPLStrdup(OGR_F_GetFieldAsString(f, idx));
}

/* Reads every row into the in-memory index. */
static int load(asd_journal *j) {
  int idx[NFIELDS];
  for (int i = 0; i < NFIELDS; i++) idx[i] = field_index(j->lyr, i);
  if (idx[F_TILE] < 0 || idx[F_STATE] < 0) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_journal: table %s lacks the tile/state columns; not a gdal_asyncdetect journal",
             JOURNAL_TABLE);
    return -1;
  }
  /* The result column is large and not needed here: skip it while loading. */
  const char *ignored[] = {fields[F_RESULT].name, NULL};
  OGR_L_SetIgnoredFields(j->lyr, ignored);
  OGR_L_ResetReading(j->lyr);
  OGRFeatureH f;
  int rc = 0;
  while ((f = OGR_L_GetNextFeature(j->lyr)) != NULL) {
    int tile = OGR_F_GetFieldAsInteger(f, idx[F_TILE]);
    slot *s = tile < 0 || tile > 100000000 ? NULL : slot_at(j, tile, 1);
    if (!s) {
      OGR_F_Destroy(f);
      if (tile < 0 || tile > 100000000)
        CPLError(CE_Failure, CPLE_AppDefined, "asd_journal: invalid tile number %d", tile);
      rc = -1;
      break;
    }
    if (s->fid == OGRNullFID) j->count++;
    entry_clear(&s->e);
    s->fid = OGR_F_GetFID(f);
    s->e.tile = tile;
    s->e.state = state_from_name(OGR_F_GetFieldAsString(f, idx[F_STATE]));
    s->e.inference_id = dup_field(f, idx[F_INFERENCE]);
    s->e.input_location = dup_field(f, idx[F_INPUT]);
    s->e.output_location = dup_field(f, idx[F_OUTPUT]);
    s->e.failure_location = dup_field(f, idx[F_FAILURE]);
    s->e.reason = dup_field(f, idx[F_REASON]);
    s->e.attempts = idx[F_ATTEMPTS] >= 0 ? OGR_F_GetFieldAsInteger(f, idx[F_ATTEMPTS]) : 0;
    OGR_F_Destroy(f);
  }
  OGR_L_SetIgnoredFields(j->lyr, NULL);
  return rc;
}

static asd_journal *open_common(GDALDatasetH ds, int owns, int create) {
  asd_journal *j = CPLCalloc(1, sizeof(*j));
  j->ds = ds;
  j->owns_ds = owns;
  pthread_mutex_init(&j->mu, NULL);
  j->lyr = GDALDatasetGetLayerByName(ds, JOURNAL_TABLE);
  j->meta = GDALDatasetGetLayerByName(ds, META_TABLE);
  if (!j->lyr || !j->meta) {
    if (!create) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_journal: %s has no journal (table %s); nothing to resume",
               GDALGetDescription(ds), JOURNAL_TABLE);
      asd_journal_close(j);
      return NULL;
    }
    if (!j->lyr) j->lyr = create_table(ds, JOURNAL_TABLE, 1);
    if (j->lyr && !j->meta) j->meta = create_table(ds, META_TABLE, 0);
    /* GDAL defers CREATE TABLE until the first row or a sync; force it now
       so that the tables exist in the file even if no row follows before a
       crash. */
    if (!j->lyr || !j->meta || OGR_L_SyncToDisk(j->lyr) != OGRERR_NONE || OGR_L_SyncToDisk(j->meta) != OGRERR_NONE) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_journal: cannot create the journal tables in %s", GDALGetDescription(ds));
      asd_journal_close(j);
      return NULL;
    }
  }
  if (load(j) != 0) {
    asd_journal_close(j);
    return NULL;
  }
  return j;
}

asd_journal *asd_journal_open_dataset(GDALDatasetH ds, int create) {
  if (!ds) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_journal: no dataset");
    return NULL;
  }
  return open_common(ds, 0, create);
}

asd_journal *asd_journal_open_path(const char *path, int create) {
  const char *const drivers[] = {"GPKG", NULL};
  VSIStatBufL st;
  GDALDatasetH ds = NULL;
  if (VSIStatL(path, &st) == 0) {
    ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_UPDATE, drivers, NULL, NULL);
    if (!ds) {
      CPLError(CE_Failure, CPLE_OpenFailed, "asd_journal: cannot open %s as a GeoPackage for update", path);
      return NULL;
    }
  } else {
    if (!create) {
      CPLError(CE_Failure, CPLE_OpenFailed, "asd_journal: %s does not exist; nothing to resume", path);
      return NULL;
    }
    GDALDriverH drv = GDALGetDriverByName("GPKG");
    if (!drv) {
      CPLError(CE_Failure, CPLE_AppDefined, "asd_journal: the GDAL GPKG driver is not available");
      return NULL;
    }
    ds = GDALCreate(drv, path, 0, 0, 0, GDT_Unknown, NULL);
    if (!ds) {
      CPLError(CE_Failure, CPLE_OpenFailed, "asd_journal: cannot create %s", path);
      return NULL;
    }
  }
  const char *sync = CPLGetConfigOption("ASD_JOURNAL_SYNC", "OFF");
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", EQUAL(sync, "FULL") ? "FULL" : EQUAL(sync, "NORMAL") ? "NORMAL" : "OFF");
  OGRLayerH r = GDALDatasetExecuteSQL(ds, sql, NULL, NULL);
  if (r) GDALDatasetReleaseResultSet(ds, r);
  return open_common(ds, 1, create);
}

char *asd_journal_sidecar_path(const char *dest) { return CPLStrdup(CPLSPrintf("%s.asdjournal.gpkg", dest)); }

int asd_journal_bind(asd_journal *j, char **meta, char **mismatch) {
  if (mismatch) *mismatch = NULL;
  pthread_mutex_lock(&j->mu);
  int ki = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(j->meta), "key");
  int vi = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(j->meta), "value");
  char **have = NULL;
  OGR_L_ResetReading(j->meta);
  OGRFeatureH f;
  while ((f = OGR_L_GetNextFeature(j->meta)) != NULL) {
    if (ki >= 0 && vi >= 0)
      have = CSLSetNameValue(have, OGR_F_GetFieldAsString(f, ki), OGR_F_GetFieldAsString(f, vi));
    OGR_F_Destroy(f);
  }
  int rc = 0;
  if (CSLCount(have) == 0) {
    for (char **p = meta; p && *p; p++) {
      char *key = NULL;
      const char *val = CPLParseNameValue(*p, &key);
      if (!key) continue;
      OGRFeatureH nf = OGR_F_Create(OGR_L_GetLayerDefn(j->meta));
      OGR_F_SetFieldString(nf, ki, key);
      OGR_F_SetFieldString(nf, vi, val ? val : "");
      if (OGR_L_CreateFeature(j->meta, nf) != OGRERR_NONE) rc = -1;
      OGR_F_Destroy(nf);
      CPLFree(key);
    }
    if (rc != 0) CPLError(CE_Failure, CPLE_AppDefined, "asd_journal: cannot record the run identity");
  } else {
    for (char **p = meta; p && *p && rc == 0; p++) {
      char *key = NULL;
      const char *val = CPLParseNameValue(*p, &key);
      if (!key) continue;
      const char *old = CSLFetchNameValue(have, key);
      if (!old || strcmp(old, val ? val : "") != 0) {
        if (mismatch)
          *mismatch = CPLStrdup(CPLSPrintf("%s: journal has '%s', this run has '%s'", key, old ? old : "(none)",
                                           val ? val : ""));
        rc = -1;
      }
      CPLFree(key);
    }
  }
  CSLDestroy(have);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

#define NOTE_PREFIX "note."

int asd_journal_set_note(asd_journal *j, const char *key, const char *value) {
  if (!j || !key) return -1;
  pthread_mutex_lock(&j->mu);
  OGRFeatureDefnH defn = OGR_L_GetLayerDefn(j->meta);
  int ki = OGR_FD_GetFieldIndex(defn, "key");
  int vi = OGR_FD_GetFieldIndex(defn, "value");
  char *full = CPLStrdup(CPLSPrintf(NOTE_PREFIX "%s", key));
  OGRFeatureH found = NULL, f;
  OGR_L_ResetReading(j->meta);
  while (!found && (f = OGR_L_GetNextFeature(j->meta)) != NULL) {
    if (EQUAL(OGR_F_GetFieldAsString(f, ki), full))
      found = f;
    else
      OGR_F_Destroy(f);
  }
  OGRFeatureH nf = found ? found : OGR_F_Create(defn);
  OGR_F_SetFieldString(nf, ki, full);
  OGR_F_SetFieldString(nf, vi, value ? value : "");
  OGRErr err = found ? OGR_L_SetFeature(j->meta, nf) : OGR_L_CreateFeature(j->meta, nf);
  OGR_F_Destroy(nf);
  CPLFree(full);
  pthread_mutex_unlock(&j->mu);
  if (err != OGRERR_NONE) {
    CPLError(CE_Failure, CPLE_FileIO, "asd_journal: cannot record the note %s", key);
    return -1;
  }
  return 0;
}

char *asd_journal_get_note(asd_journal *j, const char *key) {
  if (!j || !key) return NULL;
  pthread_mutex_lock(&j->mu);
  OGRFeatureDefnH defn = OGR_L_GetLayerDefn(j->meta);
  int ki = OGR_FD_GetFieldIndex(defn, "key");
  int vi = OGR_FD_GetFieldIndex(defn, "value");
  char *out = NULL;
  OGRFeatureH f;
  OGR_L_ResetReading(j->meta);
  while (!out && (f = OGR_L_GetNextFeature(j->meta)) != NULL) {
    const char *k = OGR_F_GetFieldAsString(f, ki);
    if (STARTS_WITH(k, NOTE_PREFIX) && EQUAL(k + strlen(NOTE_PREFIX), key))
      out = CPLStrdup(OGR_F_GetFieldAsString(f, vi));
    OGR_F_Destroy(f);
  }
  pthread_mutex_unlock(&j->mu);
  return out;
}

int asd_journal_count(asd_journal *j) {
  pthread_mutex_lock(&j->mu);
  int n = j->count;
  pthread_mutex_unlock(&j->mu);
  return n;
}

static asd_journal_entry *entry_copy(const asd_journal_entry *e) {
  asd_journal_entry *c = CPLCalloc(1, sizeof(*c));
  c->tile = e->tile;
  c->state = e->state;
  c->attempts = e->attempts;
  c->inference_id = e->inference_id ? CPLStrdup(e->inference_id) : NULL;
  c->input_location = e->input_location ? CPLStrdup(e->input_location) : NULL;
  c->output_location = e->output_location ? CPLStrdup(e->output_location) : NULL;
  c->failure_location = e->failure_location ? CPLStrdup(e->failure_location) : NULL;
  c->reason = e->reason ? CPLStrdup(e->reason) : NULL;
  return c;
}

asd_journal_entry *asd_journal_get(asd_journal *j, int tile) {
  asd_journal_entry *c = NULL;
  pthread_mutex_lock(&j->mu);
  const slot *s = slot_at(j, tile, 0);
  if (s && s->fid != OGRNullFID) c = entry_copy(&s->e);
  pthread_mutex_unlock(&j->mu);
  return c;
}

void asd_journal_entry_free(asd_journal_entry *e) {
  if (!e) return;
  entry_clear(e);
  CPLFree(e);
}

char *asd_journal_result(asd_journal *j, int tile) {
  char *out = NULL;
  pthread_mutex_lock(&j->mu);
  const slot *s = slot_at(j, tile, 0);
  if (s && s->fid != OGRNullFID && s->e.state == ASD_JOURNAL_SUCCEEDED) {
    OGRFeatureH f = OGR_L_GetFeature(j->lyr, s->fid);
    if (f) {
      out = dup_field(f, field_index(j->lyr, F_RESULT));
      OGR_F_Destroy(f);
    }
  }
  pthread_mutex_unlock(&j->mu);
  return out;
}

static void set_or_null(OGRFeatureH f, int idx, const char *v) {
  if (idx < 0) return;
  if (v)
    OGR_F_SetFieldString(f, idx, v);
  else
    OGR_F_SetFieldNull(f, idx);
}

/* Writes the slot's entry (and optionally the result) as one statement. */
static int write_slot(asd_journal *j, slot *s, const char *result, int set_result) {
  OGRFeatureDefnH defn = OGR_L_GetLayerDefn(j->lyr);
  OGRFeatureH f = NULL;
  if (s->fid != OGRNullFID) f = OGR_L_GetFeature(j->lyr, s->fid);
  if (!f) f = OGR_F_Create(defn);
  OGR_F_SetFieldInteger(f, field_index(j->lyr, F_TILE), s->e.tile);
  OGR_F_SetFieldString(f, field_index(j->lyr, F_STATE), asd_journal_state_name(s->e.state));
  set_or_null(f, field_index(j->lyr, F_INFERENCE), s->e.inference_id);
  set_or_null(f, field_index(j->lyr, F_INPUT), s->e.input_location);
  set_or_null(f, field_index(j->lyr, F_OUTPUT), s->e.output_location);
  set_or_null(f, field_index(j->lyr, F_FAILURE), s->e.failure_location);
  set_or_null(f, field_index(j->lyr, F_REASON), s->e.reason);
  OGR_F_SetFieldInteger(f, field_index(j->lyr, F_ATTEMPTS), s->e.attempts);
  OGR_F_SetFieldString(f, field_index(j->lyr, F_UPDATED), CPLSPrintf("%.3f", asd_time_wall()));
  if (set_result) set_or_null(f, field_index(j->lyr, F_RESULT), result);
  OGRErr err;
  if (s->fid == OGRNullFID) {
    err = OGR_L_CreateFeature(j->lyr, f);
    if (err == OGRERR_NONE) {
      s->fid = OGR_F_GetFID(f);
      j->count++;
    }
  } else {
    err = OGR_L_SetFeature(j->lyr, f);
  }
  OGR_F_Destroy(f);
  if (err != OGRERR_NONE) {
    CPLError(CE_Failure, CPLE_FileIO, "asd_journal: cannot record tile %d as %s in %s", s->e.tile,
             asd_journal_state_name(s->e.state), GDALGetDescription(j->ds));
    return -1;
  }
  return 0;
}

static void replace(char **dst, const char *v) {
  CPLFree(*dst);
  *dst = v ? CPLStrdup(v) : NULL;
}

int asd_journal_submitted(asd_journal *j, int tile, const char *inference_id, const char *input_location,
                          const char *output_location, const char *failure_location) {
  if (tile < 0) return -1;
  pthread_mutex_lock(&j->mu);
  slot *s = slot_at(j, tile, 1);
  int rc = s ? 0 : -1;
  if (rc == 0) {
    /* The same invocation recorded again (first before the call, then with
       the locations its answer named) is one submission, not two. */
    int same = s->e.state == ASD_JOURNAL_SUBMITTED && s->e.inference_id && inference_id &&
               strcmp(s->e.inference_id, inference_id) == 0;
    s->e.state = ASD_JOURNAL_SUBMITTED;
    replace(&s->e.inference_id, inference_id);
    replace(&s->e.input_location, input_location);
    replace(&s->e.output_location, output_location);
    replace(&s->e.failure_location, failure_location);
    replace(&s->e.reason, NULL);
    if (!same) s->e.attempts++;
    rc = write_slot(j, s, NULL, 1);
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int asd_journal_succeeded(asd_journal *j, int tile, const char *result_text) {
  if (tile < 0) return -1;
  pthread_mutex_lock(&j->mu);
  slot *s = slot_at(j, tile, 1);
  int rc = s ? 0 : -1;
  if (rc == 0) {
    s->e.state = ASD_JOURNAL_SUCCEEDED;
    replace(&s->e.reason, NULL);
    rc = write_slot(j, s, result_text ? result_text : "", 1);
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int asd_journal_failed(asd_journal *j, int tile, const char *reason) {
  if (tile < 0) return -1;
  pthread_mutex_lock(&j->mu);
  slot *s = slot_at(j, tile, 1);
  int rc = s ? 0 : -1;
  if (rc == 0) {
    s->e.state = ASD_JOURNAL_FAILED;
    replace(&s->e.reason, reason ? reason : "unknown failure");
    rc = write_slot(j, s, NULL, 1);
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

void asd_journal_counts(asd_journal *j, int *submitted, int *succeeded, int *failed) {
  int n[4] = {0, 0, 0, 0};
  pthread_mutex_lock(&j->mu);
  FOR_EACH_SLOT(j, s)
    if (s->fid != OGRNullFID) n[s->e.state & 3]++;
  pthread_mutex_unlock(&j->mu);
  if (submitted) *submitted = n[ASD_JOURNAL_SUBMITTED];
  if (succeeded) *succeeded = n[ASD_JOURNAL_SUCCEEDED];
  if (failed) *failed = n[ASD_JOURNAL_FAILED];
}

void asd_journal_close(asd_journal *j) {
  if (!j) return;
  FOR_EACH_SLOT(j, s) entry_clear(&s->e);
  for (int p = 0; p < j->npages; p++) free(j->pages[p]);
  free(j->pages);
  if (j->owns_ds && j->ds) GDALClose(j->ds);
  pthread_mutex_destroy(&j->mu);
  CPLFree(j);
}
