/*
 * merge_blobs_bench.c: result parsing and the NMM merge on a dense real
 * scene, the client-side work the utility does per tile after the model.
 *
 * The local endpoint's "blobs" model (apps/endpoint/models/blobs.c, linked
 * in from the endpoint's static core) runs once over every tile of an RGB
 * raster (bench/texture_raster.py's 4096² texture gives ~110 detections per
 * 512² tile: convex hulls of bright components, many inside the boxes of
 * larger ones).  Its FeatureCollections are kept in memory; then, R times,
 * each is parsed with asd_features_parse and streamed through asd_merger
 * with the utility's options (run/sink.c: NMM over whole chains, seam-aware,
 * class-aware) in raster order, as the utility does, and the two phases are timed separately (CPU time
 * of this thread; the model's time is not counted).
 *
 *   merge_blobs_bench RASTER TILE OVERLAP REPEATS [OUT.wkt]
 *
 * Prints "key=value ..." with the detections parsed, the features kept, the
 * best of the repeats for each phase in ms per tile, and a digest of the
 * output (sum of the outlines' areas, rings and vertices).  OUT.wkt gets one
 * line per kept feature (class, score, box, WKT) from the last repeat, in a
 * canonical order, so that two builds can be compared geometry by geometry
 * (bench/merge_compare.py).
 */
#include <gdal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_merge.h"
#include "models.h"

typedef struct tile_out {
  asd_tile_ref ref;
  char *json;
  size_t len;
} tile_out;

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int origins(int size, int tile, int overlap, int *out) {
  int n = 0;
  for (int x = 0;; x += tile - overlap) {
    if (x + tile >= size) {
      out[n++] = size - tile;
      break;
    }
    out[n++] = x;
  }
  return n;
}

/* Shoelace area of a closed ring, or of the box. */
static double outline_area(const asd_detection *d) {
  if (d->kind != ASD_GEOM_POLYGON || d->ring_len < 4) return (d->maxx - d->minx) * (d->maxy - d->miny);
  double a = 0;
  for (size_t i = 0; i + 1 < d->ring_len; i++) a += d->ring[i].x * d->ring[i + 1].y - d->ring[i + 1].x * d->ring[i].y;
  return fabs(a) / 2;
}

static int cmp_det(const void *pa, const void *pb) {
  const asd_detection *a = pa, *b = pb;
  double ka[5] = {a->minx, a->miny, a->maxx, a->maxy, -a->score};
  double kb[5] = {b->minx, b->miny, b->maxx, b->maxy, -b->score};
  for (int i = 0; i < 5; i++)
    if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
  return strcmp(a->class_iri, b->class_iri);
}

static int load_tiles(const char *path, int T, int ov, tile_out **outs, asd_merge_tile **tiles, size_t *n) {
  GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
  if (!ds) return -1;
  int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds);
  int *xs = malloc(sizeof(int) * (size_t)(W / (T - ov) + 2)), *ys = malloc(sizeof(int) * (size_t)(H / (T - ov) + 2));
  int nx = origins(W, T, ov, xs), ny = origins(H, T, ov, ys);
  *n = (size_t)nx * (size_t)ny;
  *outs = calloc(*n, sizeof(tile_out));
  *tiles = calloc(*n, sizeof(asd_merge_tile));
  unsigned char *rgb = malloc((size_t)T * T * 3);
  int bands[3] = {1, 2, 3};
  ep_blobs_params bp;
  ep_blobs_params_init(&bp);
  for (int r = 0; r < ny; r++)
    for (int c = 0; c < nx; c++) {
      int i = r * nx + c;
      if (GDALDatasetRasterIO(ds, GF_Read, xs[c], ys[r], T, T, rgb, T, T, GDT_Byte, 3, bands, 3, 3 * T, 1) != CE_None)
        return -1;
      asd_buf buf;
      asd_buf_init(&buf);
      if (ep_blobs_detect_rgb(rgb, T, T, &bp, &buf) < 0) return -1;
      (*outs)[i].ref = (asd_tile_ref){i, r, c, xs[c], ys[r], T, T, "bench-inference"};
      (*outs)[i].json = (char *)buf.data;
      (*outs)[i].len = buf.len;
      (*tiles)[i] = (asd_merge_tile){i, xs[c], ys[r], T, T};
    }
  free(rgb);
  free(xs);
  free(ys);
  GDALClose(ds);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: merge_blobs_bench RASTER TILE OVERLAP REPEATS [OUT.wkt]\n");
    return 2;
  }
  int T = atoi(argv[2]), ov = atoi(argv[3]), reps = atoi(argv[4]);
  GDALAllRegister();
  tile_out *outs;
  asd_merge_tile *tiles;
  size_t nt;
  if (load_tiles(argv[1], T, ov, &outs, &tiles, &nt)) {
    fprintf(stderr, "merge_blobs_bench: cannot read or label %s\n", argv[1]);
    return 1;
  }
  double best_parse = INFINITY, best_merge = INFINITY;
  size_t parsed = 0, kept = 0;
  asd_detections all;
  asd_detections_init(&all);
  for (int rep = 0; rep < reps; rep++) {
    asd_merge_options opt;
    asd_merge_options_init(&opt);
    opt.nmm_transitive = 1; /* as the utility (run/sink.c) */
    char err[256];
    asd_merger *m = asd_merger_new(&opt, tiles, nt, err, sizeof(err));
    if (!m) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    asd_detections_reset(&all);
    double tp = 0, tm = 0;
    parsed = 0;
    for (size_t i = 0; i < nt; i++) {
      asd_detections dets;
      asd_detections_init(&dets);
      asd_parse_report rep_;
      double t0 = cpu_now();
      if (asd_features_parse(outs[i].json, outs[i].len, &outs[i].ref, NULL, &dets, &rep_) != ASD_PARSE_OK) {
        fprintf(stderr, "tile %zu: %s\n", i, rep_.message);
        return 1;
      }
      double t1 = cpu_now();
      parsed += dets.count;
      if (asd_merger_add_tile(m, (int)i, &dets, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
      }
      asd_merger_pop(m, &all);
      tm += cpu_now() - t1;
      tp += t1 - t0;
      asd_detections_free(&dets);
    }
    double t1 = cpu_now();
    asd_merger_finish(m);
    asd_merger_pop(m, &all);
    asd_merger_free(m);
    tm += cpu_now() - t1;
    kept = all.count;
    if (tp < best_parse) best_parse = tp;
    if (tm < best_merge) best_merge = tm;
  }
  qsort(all.items, all.count, sizeof(asd_detection), cmp_det);
  double area = 0;
  size_t polys = 0, vertices = 0;
  FILE *f = argc > 5 ? fopen(argv[5], "w") : NULL;
  for (size_t i = 0; i < all.count; i++) {
    const asd_detection *d = &all.items[i];
    area += outline_area(d);
    if (d->kind == ASD_GEOM_POLYGON) {
      polys++;
      vertices += d->ring_len;
    }
    if (f) {
      char *wkt = asd_detection_wkt(d);
      fprintf(f, "%s\t%.17g\t%d\t%.17g %.17g %.17g %.17g\t%s\n", d->class_iri, d->score, d->merged_count, d->minx,
              d->miny, d->maxx, d->maxy, wkt);
      free(wkt);
    }
  }
  if (f) fclose(f);
  printf("tiles=%zu tile=%d overlap=%d detections=%zu kept=%zu polygons=%zu vertices=%zu area=%.6f "
         "parse_ms_per_tile=%.3f merge_ms_per_tile=%.3f (best of %d)\n",
         nt, T, ov, parsed, kept, polys, vertices, area, best_parse / (double)nt * 1e3, best_merge / (double)nt * 1e3,
         reps);
  asd_detections_free(&all);
  for (size_t i = 0; i < nt; i++) free(outs[i].json);
  free(outs);
  free(tiles);
  return 0;
}
