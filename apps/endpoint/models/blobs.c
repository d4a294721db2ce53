/*
 * blobs.c: a real, if simple, detector for the sample scenes.
 *
 * The sample data (data/) paints bright objects on a darker noisy ground:
 * buildings grey-white (R~G~B >= 200), vehicles red-orange (R >= 200,
 * B <= 90), background <= 140 in every band.  The model therefore needs no
 * learning: a pixel is foreground when max(R,G,B) exceeds a threshold (170
 * by default, between the two populations), foreground pixels are grouped
 * into 8-connected components, components smaller than 12 pixels are noise,
 * and each remaining component is one object.  Its class comes from colour
 * (mean R - mean B > 60 means red, hence vehicle) and its score is its mean
 * brightness (mean of max(R,G,B)) / 255, so the same tile always gives the
 * same answer.
 *
 * Output follows the OSML current schema: imageGeometry is the convex hull
 * of the component's pixel squares (pixel-corner coordinates, a closed
 * ring), imageBBox is [minx, miny, maxx+1, maxy+1], top-level geometry null.
 *
 * Speed matters (the benchmark drives hundreds of tiles a second), so the
 * labelling is a single scan with an explicit breadth-first queue over a
 * byte mask: no recursion, no per-pixel allocation, each pixel touched a
 * constant number of times.  The hull uses each row's leftmost and rightmost
 * pixel, which bounds its input to 4 points per row.
 *
 * Custom attributes: blobs_threshold=N (0..254), blobs_min_pixels=N.
 */
#include "models/model_impl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void ep_blobs_params_init(ep_blobs_params *p) {
  p->threshold = 170;
  p->min_pixels = 12;
  p->vehicle_rb = 60;
}

typedef struct pt {
  int x, y;
} pt;

static int pt_cmp(const void *a, const void *b) {
  const pt *p = a, *q = b;
  if (p->x != q->x) return p->x < q->x ? -1 : 1;
  if (p->y != q->y) return p->y < q->y ? -1 : 1;
  return 0;
}

static long long cross(pt o, pt a, pt b) {
  return (long long)(a.x - o.x) * (b.y - o.y) - (long long)(a.y - o.y) * (b.x - o.x);
}

/* Andrew's monotone chain; pts sorted in place; hull gets n+1 slots. Returns
 * the hull size (counter-clockwise in a y-up frame, without the closing point). */
static int convex_hull(pt *pts, int n, pt *hull) {
  qsort(pts, (size_t)n, sizeof(pt), pt_cmp);
  int k = 0;
  for (int i = 0; i < n; i++) {
    while (k >= 2 && cross(hull[k - 2], hull[k - 1], pts[i]) <= 0) k--;
    hull[k++] = pts[i];
  }
  for (int i = n - 2, t = k + 1; i >= 0; i--) {
    while (k >= t && cross(hull[k - 2], hull[k - 1], pts[i]) <= 0) k--;
    hull[k++] = pts[i];
  }
  return k > 1 ? k - 1 : k;
}

int ep_blobs_detect_rgb(const unsigned char *rgb, int width, int height, const ep_blobs_params *p,
                         asd_buf *out) {
  size_t npix = (size_t)width * (size_t)height;
  unsigned char *mask = malloc(npix ? npix : 1);
  /* The queue only ever holds one component; it starts small and grows. */
  size_t qcap = npix < 16384 ? (npix ? npix : 1) : 16384;
  int *queue = malloc(qcap * sizeof(int));
  int *rowmin = malloc((size_t)(height > 0 ? height : 1) * sizeof(int));
  int *rowmax = malloc((size_t)(height > 0 ? height : 1) * sizeof(int));
  pt *pts = malloc((size_t)(height > 0 ? height : 1) * 4 * sizeof(pt));
  pt *hull = malloc(((size_t)(height > 0 ? height : 1) * 4 + 1) * sizeof(pt));
  double *ring = malloc(((size_t)(height > 0 ? height : 1) * 4 + 2) * 2 * sizeof(double));
  int nfeat = -1;
  if (!mask || !queue || !rowmin || !rowmax || !pts || !hull || !ring) goto done;
  for (size_t i = 0; i < npix; i++) {
    const unsigned char *px = rgb + 3 * i;
    unsigned char m = px[0] > px[1] ? px[0] : px[1];
    if (px[2] > m) m = px[2];
    mask[i] = m > p->threshold ? 1 : 0; /* 1 = foreground not yet labelled */
  }
  for (int y = 0; y < height; y++) {
    rowmin[y] = INT_MAX;
    rowmax[y] = -1;
  }
  nfeat = 0;
  ep_features_begin(out);
  for (size_t start = 0; start < npix; start++) {
    if (mask[start] != 1) continue;
    size_t head = 0, tail = 0;
    queue[tail++] = (int)start;
    mask[start] = 2;
    long long sum_r = 0, sum_b = 0, sum_v = 0;
    int minx = INT_MAX, miny = INT_MAX, maxx = -1, maxy = -1;
    while (head < tail) {
      int idx = queue[head++];
      int x = idx % width, y = idx / width;
      const unsigned char *px = rgb + 3 * (size_t)idx;
      unsigned char v = px[0] > px[1] ? px[0] : px[1];
      if (px[2] > v) v = px[2];
      sum_r += px[0];
      sum_b += px[2];
      sum_v += v;
      if (x < minx) minx = x;
      if (x > maxx) maxx = x;
      if (y < miny) miny = y;
      if (y > maxy) maxy = y;
      if (x < rowmin[y]) rowmin[y] = x;
      if (x > rowmax[y]) rowmax[y] = x;
      for (int dy = -1; dy <= 1; dy++) {
        int ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (int dx = -1; dx <= 1; dx++) {
          int nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          size_t n = (size_t)ny * (size_t)width + (size_t)nx;
          if (mask[n] == 1) {
            if (tail == qcap) {
              size_t ncap = qcap * 2 < npix ? qcap * 2 : npix;
              int *q = realloc(queue, ncap * sizeof(int));
              if (!q) {
                nfeat = -1;
                goto done;
              }
              queue = q;
              qcap = ncap;
            }
            mask[n] = 2;
            queue[tail++] = (int)n;
          }
        }
      }
    }
    long long count = (long long)tail;
    if (count >= p->min_pixels) {
      int np = 0;
      for (int y = miny; y <= maxy; y++) {
        if (rowmax[y] < 0) continue;
        pts[np++] = (pt){rowmin[y], y};
        pts[np++] = (pt){rowmin[y], y + 1};
        pts[np++] = (pt){rowmax[y] + 1, y};
        pts[np++] = (pt){rowmax[y] + 1, y + 1};
      }
      int nh = convex_hull(pts, np, hull);
      /* The hull comes out counter-clockwise in a y-up frame; in image
       * coordinates (y down) that is clockwise, so reverse it to give the
       * GeoJSON-preferred counter-clockwise exterior ring as drawn. */
      for (int i = 0; i < nh; i++) {
        ring[2 * i] = hull[nh - 1 - i].x;
        ring[2 * i + 1] = hull[nh - 1 - i].y;
      }
      ring[2 * nh] = ring[0];
      ring[2 * nh + 1] = ring[1];
      double bbox[4] = {minx, miny, maxx + 1, maxy + 1};
      double mean_r = (double)sum_r / (double)count, mean_b = (double)sum_b / (double)count;
      const char *iri = mean_r - mean_b > p->vehicle_rb ? "vehicle" : "building";
      double score = (double)sum_v / (double)count / 255.0;
      ep_feature_append(out, nfeat == 0, bbox, nh >= 3 ? ring : NULL, nh >= 3 ? nh + 1 : 0, iri,
                         score, "blobs");
      nfeat++;
    }
    for (int y = miny; y <= maxy; y++) {
      rowmin[y] = INT_MAX;
      rowmax[y] = -1;
    }
  }
  ep_features_end(out);
done:
  free(mask);
  free(queue);
  free(rowmin);
  free(rowmax);
  free(pts);
  free(hull);
  free(ring);
  return nfeat;
}

static int int_attribute(const char *attrs, const char *key, int lo, int hi, int *value,
                         ep_model_output *out) {
  char text[32];
  if (!ep_custom_attribute(attrs, key, text, sizeof(text))) return 0;
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < lo || v > hi)
    return ep_model_fail(out, "blobs", "%s=%s is not an integer in %d..%d", key, text, lo, hi);
  *value = (int)v;
  return 0;
}

int ep_model_blobs_run(void *state, const ep_model_input *in, ep_model_output *out) {
  (void)state;
  ep_blobs_params params;
  ep_blobs_params_init(&params);
  if (int_attribute(in->custom_attributes, "blobs_threshold", 0, 254, &params.threshold, out) != 0 ||
      int_attribute(in->custom_attributes, "blobs_min_pixels", 1, 1 << 30, &params.min_pixels, out) != 0)
    return -1;
  int w = 0, h = 0;
  char err[384];
  unsigned char *rgb = ep_decode_rgb(in->data, in->len, &w, &h, err, sizeof(err));
  if (!rgb) return ep_model_fail(out, "blobs", "%s", err);
  int n = ep_blobs_detect_rgb(rgb, w, h, &params, &out->body);
  free(rgb);
  if (n < 0) return ep_model_fail(out, "blobs", "out of memory labelling a %dx%d tile", w, h);
  return 0;
}
