/*
 * shards.c: -merge-shards SHARD1 ... DST, the outputs of -shard K/N runs put
 * back together as if one run had done the work.
 *
 * A shard run (-shard K/N) takes a contiguous block of the tiles of one
 * image, or of the images of a list (inputs.c asd_shard_range), and writes
 * what it found unmerged: its detections layer has every raw detection, and
 * its journal every tile's state and the model's result text, bound to the
 * same identity a single run would have (the plan is the whole image's, so
 * tile numbers mean the same windows in every shard).  Merging reads the
 * journals, not the detection layers: the stored results are parsed and fed
 * to the same streaming merger a single run uses (tile pixels -> image
 * pixels, then merged within each image, then georeferenced and written),
 * tile by tile in plan order.  The merger's result does not depend on the
 * order tiles arrive in, so seams between shards are merged exactly as the
 * seams inside one, and the output is the one a single run writes.
 *
 * What the merge needs the sources for.  A shard records each tile's
 * result in tile pixels; turning it into the output needs the image's plan
 * (where each tile lies: from the raster size, the tiling and the window)
 * and its georeferencer (geotransform, RPCs, GCPs or geolocation arrays,
 * which the journal does not hold).  So each source is opened again, for
 * its size and georeferencing only (no pixel is read), under the name the
 * shards recorded.  That name is the source's label (inputs.c
 * asd_source_label): a presigned URL without its query string, since the
 * signature is a secret no file may hold, and so a name that opens nothing.
 * The
 * caller then gives the sources again (-merge-source SRC, or the list file
 * with -input_file_list): each is matched to the shards' image whose label
 * it has, and read under its full name, which is written nowhere.  The
 * reopened raster must have the size the shards recorded, else the merge
 * would put the tiles' detections on another image.
 *
 * Every tile ends in the merged output with a state: the one its shard
 * recorded (succeeded, failed with its reason, skipped as the shard's
 * "skipped" note says), or "not run" when it is still in flight in its
 * shard or in no shard given (then the run says how many, and exits 2).
 * The merged output's journal is a full run's journal: the same command
 * without -shard and with -resume finishes whatever was not run.
 *
 * Identity checks.  Shards must agree on what their tile numbers mean: the
 * keys every shard shares (tile size, overlap, bands, scaling, tile format,
 * endpoint) must be equal, and an image present in two shards must have the
 * same size, window and tile count in both; otherwise one line names the
 * shards and the first key that differs.
 */
#include "shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asd_run.h"
#include "cpl_conv.h"
#include "cpl_string.h"
#include "ogr_api.h"

/* Keys of the identity that describe one image rather than the run. */
static int is_image_key(const char *key) {
  return EQUAL(key, "source") || EQUAL(key, "raster_size") || EQUAL(key, "window") || EQUAL(key, "tiles") ||
         EQUAL(key, "images") || STARTS_WITH_CI(key, "image.");
}

void asd_run_shards_free(asd_run_shards *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) {
    CPLFree(s->shard[i].path);
    CPLFree(s->shard[i].journal_path);
    if (s->shard[i].journal) asd_journal_close(s->shard[i].journal);
    CSLDestroy(s->shard[i].meta);
    CPLFree(s->shard[i].skipped);
  }
  CPLFree(s->shard);
  for (int i = 0; i < s->nimages; i++) {
    CPLFree(s->image[i].label);
    CPLFree(s->image[i].raster_size);
    CPLFree(s->image[i].window);
    CPLFree(s->image[i].offset);
  }
  CPLFree(s->image);
  CSLDestroy(s->common);
  CPLFree(s);
}

/* The identity a shard's journal was bound to (asd_journal_meta), read
   with a connection of its own, notes apart. */
static char **read_identity(const char *journal_path) {
  const char *const drv[] = {"GPKG", NULL};
  GDALDatasetH ds = GDALOpenEx(journal_path, GDAL_OF_VECTOR | GDAL_OF_READONLY, drv, NULL, NULL);
  OGRLayerH l = ds ? GDALDatasetGetLayerByName(ds, "asd_journal_meta") : NULL;
  char **meta = NULL;
  if (l) {
    int ki = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "key");
    int vi = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "value");
    OGRFeatureH f;
    while (ki >= 0 && vi >= 0 && (f = OGR_L_GetNextFeature(l)) != NULL) {
      const char *k = OGR_F_GetFieldAsString(f, ki);
      if (!STARTS_WITH(k, "note.")) meta = CSLSetNameValue(meta, k, OGR_F_GetFieldAsString(f, vi));
      OGR_F_Destroy(f);
    }
  }
  if (ds) GDALClose(ds);
  return meta;
}

static int open_shard(asd_run *r, asd_run_shard *s, const char *path) {
  s->path = CPLStrdup(path);
  char *side = asd_journal_sidecar_path(path);
  if (asd_run_path_exists(side)) {
    s->journal_path = side;
  } else {
    CPLFree(side);
    s->journal_path = CPLStrdup(path);
  }
  if (!asd_run_path_exists(s->journal_path))
    return asd_run_fail(r, "-merge-shards: '%s' does not exist", path);
  s->meta = read_identity(s->journal_path);
  if (CSLCount(s->meta) == 0)
    return asd_run_fail(r, "-merge-shards: '%s' has no journal: is it the output of a gdal_asyncdetect -shard run?",
                        path);
  s->journal = asd_journal_open_path(s->journal_path, 0);
  if (!s->journal)
    return asd_run_fail(r, "-merge-shards: cannot read the journal of '%s': %s", path,
                        asd_run_report_first(&r->report, "unknown error"));
  s->skipped = asd_journal_get_note(s->journal, "skipped");
  char *which = asd_journal_get_note(s->journal, "shard");
  s->k = which ? atoi(which) : 0;
  CPLFree(which);
  return 0;
}

/* Shards in K order, whatever order the shell's glob gave them in
   (s10 before s2): the union lists the images in the original order. */
static int by_k(const void *a, const void *b) {
  const asd_run_shard *x = a, *y = b;
  return (x->k > y->k) - (x->k < y->k);
}

/* The keys every shard must share, equal in each. */
static int check_common(asd_run *r, asd_run_shards *sh) {
  for (char **p = sh->shard[0].meta; p && *p; p++) {
    char *key = NULL;
    const char *v = CPLParseNameValue(*p, &key);
    if (key && !is_image_key(key)) sh->common = CSLSetNameValue(sh->common, key, v ? v : "");
    CPLFree(key);
  }
  for (int i = 1; i < sh->n; i++) {
    for (char **p = sh->common; p && *p; p++) {
      char *key = NULL;
      const char *v = CPLParseNameValue(*p, &key);
      const char *w = CSLFetchNameValue(sh->shard[i].meta, key);
      int same = w && strcmp(w, v ? v : "") == 0;
      if (!same) {
        asd_run_fail(r, "-merge-shards: '%s' is not a shard of the same run as '%s' (%s: '%s' there, '%s' here)",
                     sh->shard[i].path, sh->shard[0].path, key, w ? w : "(none)", v ? v : "");
        CPLFree(key);
        return -1;
      }
      CPLFree(key);
    }
  }
  return 0;
}

/* Finds or adds the image label in the union; checks that two shards agree
   on its size, window and tile count. */
static int add_image(asd_run *r, asd_run_shards *sh, int shard, const char *label, const char *size,
                     const char *window, int ntiles, int offset) {
  for (int i = 0; i < sh->nimages; i++) {
    asd_run_shard_image *im = &sh->image[i];
    if (strcmp(im->label, label) != 0) continue;
    if (strcmp(im->raster_size, size) != 0 || strcmp(im->window, window) != 0 || im->ntiles != ntiles)
      return asd_run_fail(r, "-merge-shards: '%s' and '%s' describe the image '%s' differently (%s, window %s vs %s, "
                          "window %s)",
                          sh->shard[shard].path, sh->shard[0].path, label, size, window, im->raster_size, im->window);
    im->offset[shard] = offset;
    return 0;
  }
  sh->image = CPLRealloc(sh->image, sizeof *sh->image * (size_t)(sh->nimages + 1));
  asd_run_shard_image *im = &sh->image[sh->nimages++];
  im->label = CPLStrdup(label);
  im->raster_size = CPLStrdup(size);
  im->window = CPLStrdup(window);
  im->ntiles = ntiles;
  im->offset = CPLMalloc(sizeof(int) * (size_t)sh->n);
  for (int k = 0; k < sh->n; k++) im->offset[k] = -1;
  im->offset[shard] = offset;
  return 0;
}

/* The images of one shard's identity: "source" for a run over one image,
   "image.K" = LABEL|WxHxB|X,Y,W,H|TILES for a run over several. */
static int shard_images(asd_run *r, asd_run_shards *sh, int k) {
  char **m = sh->shard[k].meta;
  const char *n = CSLFetchNameValue(m, "images");
  if (!n) {
    const char *src = CSLFetchNameValue(m, "source"), *size = CSLFetchNameValue(m, "raster_size");
    const char *win = CSLFetchNameValue(m, "window"), *tiles = CSLFetchNameValue(m, "tiles");
    if (!src || !size || !win || !tiles)
      return asd_run_fail(r, "-merge-shards: '%s': incomplete journal identity", sh->shard[k].path);
    return add_image(r, sh, k, src, size, win, atoi(tiles), 0);
  }
  int offset = 0;
  for (int i = 0; i < atoi(n); i++) {
    const char *v = CSLFetchNameValue(m, CPLSPrintf("image.%d", i));
    /* The label may hold '|': the three other fields are taken from the right. */
    char *copy = v ? CPLStrdup(v) : NULL;
    char *f[3] = {NULL, NULL, NULL};
    for (int j = 2; copy && j >= 0; j--) {
      char *bar = strrchr(copy, '|');
      if (!bar) break;
      *bar = '\0';
      f[j] = bar + 1;
    }
    int rc = copy && f[0] ? add_image(r, sh, k, copy, f[0], f[1], atoi(f[2]), offset) : -1;
    if (rc == 0) offset += atoi(f[2]);
    if (!copy || !f[0])
      asd_run_fail(r, "-merge-shards: '%s': incomplete journal identity (image %d)", sh->shard[k].path, i);
    CPLFree(copy);
    if (rc != 0) return -1;
  }
  return 0;
}

/* The image of the union labelled like src, or -1. */
static int image_named(const asd_run_shards *sh, const char *src) {
  char *label = asd_source_label(src);
  int found = -1;
  for (int i = 0; i < sh->nimages && found < 0; i++)
    if (strcmp(sh->image[i].label, label) == 0) found = i;
  CPLFree(label);
  return found;
}

/* -merge-source SRC, and the lines of -input_file_list: the image labelled
   like SRC is read from SRC.  A list may name images of shards not given
   (a part of the fleet merged); a -merge-source no shard has is a mistake. */
static int use_sources_given(asd_run *r, asd_run_shards *sh) {
  for (int pass = 0; pass < 2; pass++) {
    for (char **src = pass ? r->o->merge_sources : r->o->merge_source_list; src && *src; src++) {
      int i = image_named(sh, *src);
      if (i < 0 && pass == 1) {
        char *label = asd_source_label(*src);
        asd_run_fail(r, "-merge-source '%s': no shard given has this image (theirs: '%s'%s)", label,
                     sh->image[0].label, sh->nimages > 1 ? CPLSPrintf(" and %d more", sh->nimages - 1) : "");
        CPLFree(label);
        return -1;
      }
      if (i < 0) continue;
      CPLFree(r->names[i]);
      r->names[i] = CPLStrdup(*src);
    }
  }
  return 0;
}

int asd_run_open_shards(asd_run *r, char **paths) {
  asd_run_shards *sh = CPLCalloc(1, sizeof *sh);
  r->shards = sh;
  sh->n = CSLCount(paths);
  sh->shard = CPLCalloc((size_t)sh->n, sizeof *sh->shard);
  for (int i = 0; i < sh->n; i++)
    if (open_shard(r, &sh->shard[i], paths[i]) != 0) return -1;
  qsort(sh->shard, (size_t)sh->n, sizeof *sh->shard, by_k);
  if (check_common(r, sh) != 0) return -1;
  for (int i = 0; i < sh->n; i++)
    if (shard_images(r, sh, i) != 0) return -1;
  /* The tiling the shards used, whatever the merge command says. */
  asd_detect_options *o = &r->merge_opts;
  *o = *r->o;
  o->tile_size = atoi(CSLFetchNameValueDef(sh->common, "tile_size", "512"));
  o->overlap = atoi(CSLFetchNameValueDef(sh->common, "overlap", "128"));
  o->has_projwin = 0;
  o->has_srcwin = 0;
  if (sh->nimages == 1) {
    int x, y, w, h, W, H;
    if (sscanf(sh->image[0].window, "%d,%d,%d,%d", &x, &y, &w, &h) == 4 &&
        sscanf(sh->image[0].raster_size, "%dx%d", &W, &H) == 2 && (x || y || w != W || h != H)) {
      o->has_srcwin = 1;
      o->srcwin[0] = x, o->srcwin[1] = y, o->srcwin[2] = w, o->srcwin[3] = h;
    }
  }
  r->o = o;
  for (int i = 0; i < sh->nimages; i++) r->names = CSLAddString(r->names, sh->image[i].label);
  return use_sources_given(r, sh);
}

int asd_run_check_shard_sources(asd_run *r) {
  const asd_run_shards *sh = r->shards;
  for (int i = 0; i < sh->nimages && i < r->nimages; i++) {
    const asd_run_image *im = &r->images[i];
    if (strcmp(im->raster_size, sh->image[i].raster_size) == 0 && im->ntiles == sh->image[i].ntiles) continue;
    return asd_run_fail(r, "-merge-shards: '%s' is not the image the shards read (%s, %d tiles, here %s, %d tiles)",
                        im->label, sh->image[i].raster_size, sh->image[i].ntiles, im->raster_size, im->ntiles);
  }
  return 0;
}

/* The skip reason of journal tile t in a shard's "skipped" note, or NONE. */
static asd_skip_reason skipped_in(const asd_run_shard *s, int t) {
  if (!s->skipped) return ASD_SKIP_NONE;
  const char *key = CPLSPrintf("%d:", t);
  size_t n = strlen(key);
  for (const char *p = s->skipped; p && *p;) {
    if (strncmp(p, key, n) == 0) {
      for (int k = 1; k < ASD_SKIP_REASON_COUNT; k++) {
        const char *name = asd_skip_reason_name((asd_skip_reason)k);
        if (strncmp(p + n, name, strlen(name)) == 0) return (asd_skip_reason)k;
      }
      return ASD_SKIP_NODATA;
    }
    p = strchr(p, ',');
    if (p) p++;
  }
  return ASD_SKIP_NONE;
}

/* Rank of a recorded state: a result wins over a failure, a failure over a
   tile still in flight. */
static int rank(const asd_journal_entry *e) {
  if (!e) return 0;
  return e->state == ASD_JOURNAL_SUCCEEDED ? 3 : e->state == ASD_JOURNAL_FAILED ? 2 : 1;
}

/* One tile of the union, from the shard that has the best record of it. */
static void merge_tile_from_shards(asd_run *r, int g, int *not_run) {
  const asd_run_shards *sh = r->shards;
  const int k = r->tiles[g].image, local = g - r->images[k].first;
  const asd_run_shard_image *im = &sh->image[k];
  asd_journal_entry *best = NULL;
  int best_shard = -1;
  asd_skip_reason skip = ASD_SKIP_NONE;
  for (int s = 0; s < sh->n; s++) {
    if (im->offset[s] < 0) continue;
    asd_journal_entry *e = asd_journal_get(sh->shard[s].journal, im->offset[s] + local);
    if (rank(e) > rank(best)) {
      asd_journal_entry_free(best);
      best = e;
      best_shard = s;
    } else {
      asd_journal_entry_free(e);
    }
    if (skip == ASD_SKIP_NONE) skip = skipped_in(&sh->shard[s], im->offset[s] + local);
  }
  char *text = best && best->state == ASD_JOURNAL_SUCCEEDED
                   ? asd_journal_result(sh->shard[best_shard].journal, best->tile)
                   : NULL;
  if (!best && skip != ASD_SKIP_NONE)
    asd_run_replay_skipped(r, g, skip);
  else if (!best || (best->state == ASD_JOURNAL_SUCCEEDED && !text)) {
    asd_run_replay_not_run(r, g, best, "not run: in no shard given to -merge-shards");
    (*not_run)++;
  } else if (best->state == ASD_JOURNAL_SUBMITTED) {
    asd_run_replay_not_run(r, g, best,
                           "not run: still in flight in its shard (finish it with -resume, then merge again)");
    (*not_run)++;
  } else {
    asd_run_replay_recorded(r, g, best, text);
  }
  CPLFree(text);
  asd_journal_entry_free(best);
}

int asd_run_replay_shards(asd_run *r) {
  if (asd_run_open_merger(r) != 0) return -1;
  int not_run = 0;
  for (int g = 0; g < r->ntiles && !r->fatal; g++) merge_tile_from_shards(r, g, &not_run);
  asd_run_journal_commit(r);
  if (not_run)
    CPLError(CE_Warning, CPLE_AppDefined,
             "-merge-shards: %d of %d tile(s) not run: in no shard given, or still in flight in theirs (the "
             "tile-status layer says which)",
             not_run, r->ntiles);
  return r->fatal ? -1 : 0;
}
