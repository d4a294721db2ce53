/*
 * merge_bench.c: the merge benchmark driver (run by bench/merge.sh).
 *
 * A synthetic scene stands in for a large image: objects (6..28 px, two
 * classes) are scattered over the image, one candidate per 32x32 cell, and
 * the "model" of each 512/64 tile reports every object it sees, cut at the
 * tile edges, with a score that depends on how much of the object it sees.
 * Objects in overlaps are therefore reported two or four times and objects
 * across seams as pieces: the input the merger exists for.  The scene is
 * generated tile by tile from a hash of the cell, so the generator holds
 * nothing and the memory measured is the merger's.
 *
 *   merge_bench stream N   streams tiles (raster order, shuffled within
 *                          windows of 32 tiles as a worker pool returns
 *                          them) through asd_merger until about N
 *                          detections; pops and frees results after every
 *                          tile, as the writer does.
 *   merge_bench hold N     the same detections collected first, then merged
 *                          in one asd_merge_batch call (what a
 *                          non-streaming merger holds).
 *   merge_bench naive N    the same kind of scene with about N detections,
 *                          merged by a naive O(n^2) greedy NMS over the
 *                          whole list (sort by score, compare every pair),
 *                          and by asd_merger (nms) on the same list.
 *
 * Prints one line "key=value ..." per measurement; peak RSS from getrusage.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_merge.h"

#define TILE 512
#define OVERLAP 64
#define CELL 32

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static double u01(uint64_t h) { return (double)(h >> 11) / 9007199254740992.0; }

/* The object of cell (cx, cy), if any. */
static int cell_object(long cx, long cy, double b[4], int *cls) {
  uint64_t h = mix(((uint64_t)cx << 32) ^ (uint64_t)cy ^ 0x5eed);
  if (u01(h) >= 0.5) return 0;
  double w = 6 + 22 * u01(mix(h + 1)), hh = 6 + 22 * u01(mix(h + 2));
  double x = cx * CELL + (CELL - w) * u01(mix(h + 3)), y = cy * CELL + (CELL - hh) * u01(mix(h + 4));
  b[0] = floor(x);
  b[1] = floor(y);
  b[2] = floor(x + w);
  b[3] = floor(y + hh);
  *cls = (int)(mix(h + 5) & 1);
  return 1;
}

static long origins(long size, long *out) {
  long n = 0;
  for (long x = 0;; x += TILE - OVERLAP) {
    if (x + TILE >= size) {
      out[n++] = size - TILE;
      break;
    }
    out[n++] = x;
  }
  return n;
}

static asd_detection make_det(const double b[4], int cls, double score, size_t seq) {
  static const char *names[] = {"building", "vehicle"};
  asd_detection d;
  memset(&d, 0, sizeof(d));
  d.minx = b[0];
  d.miny = b[1];
  d.maxx = b[2];
  d.maxy = b[3];
  d.kind = ASD_GEOM_BOX;
  d.class_iri = strdup(names[cls]);
  d.classes_json = strdup(cls ? "[{\"iri\":\"vehicle\",\"score\":0.9}]" : "[{\"iri\":\"building\",\"score\":0.9}]");
  d.score = d.raw_score = score;
  d.merged_count = 1;
  d.seq = seq;
  return d;
}

/* What tile t's model reports. */
static void tile_detections(const asd_merge_tile *t, asd_detections *out, size_t *objects_whole) {
  long cx0 = (long)floor(t->x / CELL), cy0 = (long)floor(t->y / CELL);
  long cx1 = (long)floor((t->x + t->w - 1) / CELL), cy1 = (long)floor((t->y + t->h - 1) / CELL);
  size_t seq = 0;
  for (long cy = cy0; cy <= cy1; cy++)
    for (long cx = cx0; cx <= cx1; cx++) {
      double b[4];
      int cls;
      if (!cell_object(cx, cy, b, &cls)) continue;
      double c[4] = {fmax(b[0], t->x), fmax(b[1], t->y), fmin(b[2], t->x + t->w), fmin(b[3], t->y + t->h)};
      if (!(c[2] > c[0] && c[3] > c[1])) continue;
      double frac = (c[2] - c[0]) * (c[3] - c[1]) / ((b[2] - b[0]) * (b[3] - b[1]));
      if (frac == 1.0 && objects_whole) (*objects_whole)++;
      double score = 0.5 + 0.45 * frac - 0.02 * u01(mix((uint64_t)t->index * 7919u + (uint64_t)(cx * 31 + cy)));
      asd_detection d = make_det(c, cls, score, seq++);
      d.tile_index = t->index;
      asd_detections_push(out, &d);
    }
}

/* Image size (square) that gives about n detections. */
static long side_for(size_t n) {
  /* 0.5 objects per 32x32 cell, ~1.32 detections per object with 512/64 tiles. */
  double per_px = 0.5 / (CELL * CELL) * 1.31;
  long s = (long)ceil(sqrt((double)n / per_px));
  return s < TILE ? TILE : s;
}

static asd_merge_tile *make_tiles(long side, size_t *n) {
  long *xs = malloc(sizeof(long) * (size_t)(side / (TILE - OVERLAP) + 2));
  long nx = origins(side, xs);
  asd_merge_tile *t = malloc(sizeof(asd_merge_tile) * (size_t)(nx * nx));
  size_t k = 0;
  for (long r = 0; r < nx; r++)
    for (long c = 0; c < nx; c++) {
      t[k] = (asd_merge_tile){(int)k, (double)xs[c], (double)xs[r], TILE, TILE};
      k++;
    }
  free(xs);
  *n = k;
  return t;
}

static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Objects with pixels inside the image: what a perfect merge outputs. */
static size_t count_objects(long side) {
  size_t n = 0;
  for (long cy = 0; cy * CELL < side; cy++)
    for (long cx = 0; cx * CELL < side; cx++) {
      double b[4];
      int cls;
      if (cell_object(cx, cy, b, &cls) && b[0] < side && b[1] < side) n++;
    }
  return n;
}

static int run_stream(size_t target, int hold) {
  long side = side_for(target);
  size_t nt;
  asd_merge_tile *tiles = make_tiles(side, &nt);
  /* Completion order: raster order, shuffled within windows of 32 tiles. */
  size_t *order = malloc(nt * sizeof(size_t));
  for (size_t i = 0; i < nt; i++) order[i] = i;
  asd_rng rng;
  asd_rng_seed(&rng, 42);
  for (size_t w = 0; w < nt; w += 32) {
    size_t end = w + 32 < nt ? w + 32 : nt;
    for (size_t i = end - 1; i > w; i--) {
      size_t j = w + asd_rng_next(&rng) % (i - w + 1);
      size_t t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }
  asd_merge_options opt;
  asd_merge_options_init(&opt); /* nmm, class-aware, seam-aware */
  char err[256];
  size_t added = 0, emitted = 0;
  double gen = 0, t0 = asd_time_monotonic();
  asd_merge_stats st;
  memset(&st, 0, sizeof(st));
  if (!hold) {
    asd_merger *m = asd_merger_new(&opt, tiles, nt, err, sizeof(err));
    if (!m) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    asd_detections v, out;
    asd_detections_init(&v);
    asd_detections_init(&out);
    for (size_t i = 0; i < nt; i++) {
      double g0 = asd_time_monotonic();
      tile_detections(&tiles[order[i]], &v, NULL);
      gen += asd_time_monotonic() - g0;
      added += v.count;
      if (asd_merger_add_tile(m, tiles[order[i]].index, &v, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
      }
      asd_merger_pop(m, &out);
      emitted += out.count;
      asd_detections_reset(&out); /* written and freed */
    }
    asd_merger_finish(m);
    asd_merger_pop(m, &out);
    emitted += out.count;
    asd_merger_get_stats(m, &st);
    asd_detections_free(&v);
    asd_detections_free(&out);
    asd_merger_free(m);
  } else {
    asd_detections all;
    asd_detections_init(&all);
    for (size_t i = 0; i < nt; i++) {
      double g0 = asd_time_monotonic();
      tile_detections(&tiles[order[i]], &all, NULL);
      gen += asd_time_monotonic() - g0;
    }
    added = all.count;
    if (asd_merge_batch(&opt, tiles, nt, &all, err, sizeof(err))) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    emitted = all.count;
    asd_detections_free(&all);
  }
  double total = asd_time_monotonic() - t0;
  size_t objects = count_objects(side);
  printf("mode=%s image=%ldx%ld tiles=%zu detections=%zu objects=%zu output=%zu merge_seconds=%.2f "
         "generate_seconds=%.2f per_detection_us=%.2f peak_pending=%zu largest_group=%zu peak_rss_mb=%.1f\n",
         hold ? "hold" : "stream", side, side, nt, added, objects, emitted, total - gen, gen,
         (total - gen) / (double)added * 1e6, st.peak_pending, st.largest_group, peak_rss_kb() / 1024.0);
  free(order);
  free(tiles);
  return 0;
}

typedef struct nd {
  double b[4];
  double score;
  int cls;
} nd;

static int cmp_nd(const void *a, const void *b) {
  const nd *x = a, *y = b;
  return (x->score < y->score) - (x->score > y->score);
}

static double iou(const nd *a, const nd *b) {
  double w = fmin(a->b[2], b->b[2]) - fmax(a->b[0], b->b[0]);
  double h = fmin(a->b[3], b->b[3]) - fmax(a->b[1], b->b[1]);
  if (w <= 0 || h <= 0) return 0;
  double i = w * h;
  return i / ((a->b[2] - a->b[0]) * (a->b[3] - a->b[1]) + (b->b[2] - b->b[0]) * (b->b[3] - b->b[1]) - i);
}

static int run_naive(size_t target) {
  long side = side_for(target);
  size_t nt;
  asd_merge_tile *tiles = make_tiles(side, &nt);
  asd_detections all;
  asd_detections_init(&all);
  for (size_t i = 0; i < nt; i++) tile_detections(&tiles[i], &all, NULL);
  size_t n = all.count;
  nd *v = malloc(n * sizeof(nd));
  for (size_t i = 0; i < n; i++) {
    asd_detection *d = &all.items[i];
    v[i] = (nd){{d->minx, d->miny, d->maxx, d->maxy}, d->score, strcmp(d->class_iri, "vehicle") == 0};
  }
  /* The naive baseline: every pair compared. */
  double t0 = asd_time_monotonic();
  qsort(v, n, sizeof(nd), cmp_nd);
  unsigned char *gone = calloc(n, 1);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (gone[i]) continue;
    kept++;
    for (size_t j = i + 1; j < n; j++)
      if (!gone[j] && v[j].cls == v[i].cls && iou(&v[i], &v[j]) > 0.5) gone[j] = 1;
  }
  double naive = asd_time_monotonic() - t0;
  /* The same list through the merger, same mode (nms, IoU 0.5, class-aware). */
  asd_merge_options opt;
  asd_merge_options_init(&opt);
  opt.mode = ASD_MERGE_NMS;
  char err[256];
  t0 = asd_time_monotonic();
  if (asd_merge_batch(&opt, tiles, nt, &all, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  double ours = asd_time_monotonic() - t0;
  printf("mode=naive detections=%zu naive_nms_seconds=%.3f naive_kept=%zu asd_nms_seconds=%.4f asd_kept=%zu "
         "same_result=%s speedup=%.0fx naive_extrapolated_1M_seconds=%.0f\n",
         n, naive, kept, ours, all.count, kept == all.count ? "yes" : "no", naive / ours,
         naive * pow(1e6 / (double)n, 2));
  free(gone);
  free(v);
  free(tiles);
  asd_detections_free(&all);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: merge_bench stream|hold|naive N\n");
    return 1;
  }
  size_t n = (size_t)strtoull(argv[2], NULL, 10);
  if (!strcmp(argv[1], "stream")) return run_stream(n, 0);
  if (!strcmp(argv[1], "hold")) return run_stream(n, 1);
  if (!strcmp(argv[1], "naive")) return run_naive(n);
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 1;
}
