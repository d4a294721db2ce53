/*
 * scene.c: where the sample objects go, and the pixels they paint.
 *
 * The sample scene exists to test a tiled detector end to end, so its
 * objects are not random decoration: a fixed list of hand-placed objects
 * sits exactly where tiling goes wrong (across the seams and inside the
 * overlap bands of 512/64, 512/128, 1024/64 and 1024/128 tile grids, at
 * the four-tile corners, larger than the overlap, touching each image edge
 * and corner, inside the block the nodata variant blanks), and a seeded
 * random fill adds variety (sizes 12 to 150 pixels, rectangles, rotated
 * rectangles and ellipses, two classes).
 *
 * Every rule the ground truth promises is enforced here, at placement time:
 *  - objects are bright (building: R~G~B >= 200; vehicle: R >= 200,
 *    B <= 90) on a background that never exceeds 140 in any band;
 *  - the bounding boxes of any two objects are at least GAP pixels apart,
 *    so their pixels are too, and a bbox holds the pixels of one object;
 *  - an object is either wholly inside or wholly outside (with a margin)
 *    the nodata block, so the nodata variant never cuts an object.
 *
 * A pixel belongs to an object when its centre (x + 0.5, y + 0.5) lies in
 * the object's shape; there is no anti-aliasing, so no intermediate
 * brightness exists between background and object.  Axis-aligned
 * rectangles have integer corners and so cover exactly the pixels of their
 * footprint polygon.
 *
 * Randomness comes from SplitMix64 with a fixed seed (SCENE_SEED), drawn in
 * a fixed order, so the scene is the same on every run and every machine
 * with an IEEE-754 libm; nothing here reads the clock or the environment.
 */
#include "samples.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAP 10        /* minimum distance between object bboxes, pixels */
#define EDGE_MARGIN 8 /* random objects keep this far from the image edges */
#define NODATA_MARGIN 8
#define N_RANDOM 70
#define BG_BLOCK 8 /* background noise block size, pixels */
#define PI 3.14159265358979323846

typedef struct {
  uint64_t state;
} rng_t;

/* SplitMix64: tiny, well mixed, and fully specified, so the sequence never
 * depends on the C library's rand(). */
static uint64_t rng_next(rng_t *r) {
  uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static int rng_int(rng_t *r, int lo, int hi) { /* inclusive */
  return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

const char *scene_class_name(int cls) { return cls == CLASS_VEHICLE ? "vehicle" : "building"; }

const char *scene_shape_name(int shape) {
  switch (shape) {
    case SHAPE_RECT: return "rectangle";
    case SHAPE_ROTRECT: return "rotated_rectangle";
    default: return "ellipse";
  }
}

/* The hand-placed objects, each with the reason it exists. */
typedef struct {
  int cls, shape;
  double cx, cy, w, h, angle;
  const char *placement;
} placed_t;

static const placed_t k_placed[] = {
  {CLASS_BUILDING, SHAPE_RECT, 480, 300, 40, 30, 0, "inside the x overlap band 448-512 of the 512/64 grid"},
  {CLASS_BUILDING, SHAPE_RECT, 480, 700, 150, 60, 0, "across the 512/64 x seam, wider than the overlap"},
  {CLASS_VEHICLE, SHAPE_RECT, 448, 150, 14, 28, 0, "across x=448, where the second 512/64 tile starts"},
  {CLASS_BUILDING, SHAPE_ROTRECT, 960, 960, 120, 90, 30, "four-tile corner of the 512/64 and 1024/128 grids"},
  {CLASS_BUILDING, SHAPE_RECT, 1856, 1500, 150, 100, 0, "across the 1024/128 x seam 1792-1920, wider than the overlap"},
  {CLASS_VEHICLE, SHAPE_ELLIPSE, 1376, 1376, 30, 16, 45, "four-tile corner of the 512/64 grid"},
  {CLASS_BUILDING, SHAPE_ROTRECT, 832, 1200, 100, 40, 60, "across the 512/128 x seam 768-896"},
  {CLASS_VEHICLE, SHAPE_RECT, 992, 1700, 12, 24, 0, "inside the 1024/64 x overlap band 960-1024"},
  {CLASS_BUILDING, SHAPE_RECT, 2650, 1376, 140, 140, 0, "across the 512/64 y seam 1344-1408 and the shifted last column"},
  {CLASS_BUILDING, SHAPE_ELLIPSE, 300, 480, 80, 50, 20, "inside the 512/64 y overlap band 448-512"},
  {CLASS_VEHICLE, SHAPE_ROTRECT, 1200, 928, 16, 36, 75, "inside the 1024/128 y overlap band 896-1024"},
  {CLASS_BUILDING, SHAPE_RECT, 2048, 480, 100, 80, 0, "inside the nodata block (absent from scene_nodata.tif)"},
  {CLASS_VEHICLE, SHAPE_ROTRECT, 1700, 800, 16, 32, 30, "inside the nodata block (absent from scene_nodata.tif)"},
  {CLASS_BUILDING, SHAPE_RECT, 20, 1030, 40, 60, 0, "touches the left edge"},
  {CLASS_VEHICLE, SHAPE_RECT, 2993, 1214, 14, 28, 0, "touches the right edge"},
  {CLASS_BUILDING, SHAPE_RECT, 650, 25, 100, 50, 0, "touches the top edge"},
  {CLASS_BUILDING, SHAPE_RECT, 1230, 1980, 60, 40, 0, "touches the bottom edge"},
  {CLASS_VEHICLE, SHAPE_RECT, 8, 15, 16, 30, 0, "top-left corner"},
  {CLASS_BUILDING, SHAPE_RECT, 2950, 1960, 100, 80, 0, "bottom-right corner"},
  {CLASS_BUILDING, SHAPE_RECT, 480, 20, 120, 40, 0, "touches the top edge across the 512/64 x seam"},
  {CLASS_VEHICLE, SHAPE_ROTRECT, 2300, 1700, 20, 70, 20, "long vehicle (truck)"},
};

/* Footprint polygon (no closing vertex) in image pixel coordinates. */
static void make_polygon(asd_object *o) {
  double a = o->angle_deg * PI / 180.0, c = cos(a), s = sin(a);
  if (o->shape == SHAPE_ELLIPSE) {
    o->nverts = 36;
    for (int i = 0; i < o->nverts; i++) {
      double t = 2.0 * PI * i / o->nverts;
      double u = 0.5 * o->w * cos(t), v = 0.5 * o->h * sin(t);
      o->vx[i] = o->cx + u * c - v * s;
      o->vy[i] = o->cy + u * s + v * c;
    }
    return;
  }
  static const double su[4] = {-1, 1, 1, -1}, sv[4] = {-1, -1, 1, 1};
  o->nverts = 4;
  for (int i = 0; i < 4; i++) {
    double u = 0.5 * o->w * su[i], v = 0.5 * o->h * sv[i];
    if (o->shape == SHAPE_RECT) {
      o->vx[i] = o->cx + u;
      o->vy[i] = o->cy + v;
    } else {
      o->vx[i] = o->cx + u * c - v * s;
      o->vy[i] = o->cy + u * s + v * c;
    }
  }
}

/* A conservative pixel bbox (max exclusive) of the shape.  Ellipse vertices
 * lie on the curve, so the analytic extent is used for them. */
static void outer_bbox(const asd_object *o, int b[4]) {
  double x0, x1, y0, y1;
  if (o->shape == SHAPE_ELLIPSE) {
    double a = o->angle_deg * PI / 180.0, c = cos(a), s = sin(a);
    double ra = 0.5 * o->w, rb = 0.5 * o->h;
    double ex = sqrt(ra * ra * c * c + rb * rb * s * s), ey = sqrt(ra * ra * s * s + rb * rb * c * c);
    x0 = o->cx - ex; x1 = o->cx + ex; y0 = o->cy - ey; y1 = o->cy + ey;
  } else {
    x0 = x1 = o->vx[0]; y0 = y1 = o->vy[0];
    for (int i = 1; i < o->nverts; i++) {
      x0 = fmin(x0, o->vx[i]); x1 = fmax(x1, o->vx[i]);
      y0 = fmin(y0, o->vy[i]); y1 = fmax(y1, o->vy[i]);
    }
  }
  b[0] = (int)floor(x0); b[1] = (int)floor(y0);
  b[2] = (int)ceil(x1) + 1; b[3] = (int)ceil(y1) + 1;
}

static int inside_image(const int b[4]) {
  return b[0] >= 0 && b[1] >= 0 && b[2] <= SCENE_W + 1 && b[3] <= SCENE_H + 1;
}

static int nodata_relation(const int b[4]) { /* 1 inside, 0 outside, -1 straddles */
  if (b[0] >= NODATA_X0 + NODATA_MARGIN && b[2] <= NODATA_X1 - NODATA_MARGIN &&
      b[1] >= NODATA_Y0 && b[3] <= NODATA_Y1 - NODATA_MARGIN)
    return 1;
  if (b[2] + NODATA_MARGIN <= NODATA_X0 || b[0] >= NODATA_X1 + NODATA_MARGIN ||
      b[3] + NODATA_MARGIN <= NODATA_Y0 || b[1] >= NODATA_Y1 + NODATA_MARGIN)
    return 0;
  return -1;
}

static int far_apart(const int a[4], const int b[4]) {
  return a[2] + GAP <= b[0] || b[2] + GAP <= a[0] || a[3] + GAP <= b[1] || b[3] + GAP <= a[1];
}

static int fits(const asd_scene *s, const asd_object *o, int *nodata) {
  int b[4];
  outer_bbox(o, b);
  if (!inside_image(b)) return 0;
  int rel = nodata_relation(b);
  if (rel < 0) return 0;
  for (int i = 0; i < s->nobj; i++) {
    int ob[4];
    outer_bbox(&s->obj[i], ob);
    if (!far_apart(b, ob)) return 0;
  }
  *nodata = rel;
  return 1;
}

static void pick_colour(rng_t *r, asd_object *o) {
  if (o->cls == CLASS_BUILDING) {
    int g = rng_int(r, 216, 239); /* darkest: 216 - 6 - 8 (roof shade) = 202 */
    o->rgb[0] = (unsigned char)g;
    o->rgb[1] = (unsigned char)(g - rng_int(r, 0, 3));
    o->rgb[2] = (unsigned char)(g - rng_int(r, 0, 6));
    o->nir = (uint16_t)rng_int(r, 1100, 1300);
  } else {
    o->rgb[0] = (unsigned char)rng_int(r, 215, 249);
    o->rgb[1] = (unsigned char)rng_int(r, 60, 149);
    o->rgb[2] = (unsigned char)rng_int(r, 20, 79);
    o->nir = (uint16_t)rng_int(r, 450, 650);
  }
}

/* Paints one object and records the pixels it really covers.  Buildings
 * get a two-faced roof (one half 8 levels darker) so they are textured
 * rather than flat, while staying >= 200 in every band. */
static void paint(asd_scene *s, asd_object *o) {
  int b[4];
  outer_bbox(o, b);
  double a = o->angle_deg * PI / 180.0, c = cos(a), sn = sin(a);
  double hw = 0.5 * o->w, hh = 0.5 * o->h;
  size_t plane = (size_t)SCENE_W * SCENE_H;
  o->bbox[0] = SCENE_W; o->bbox[1] = SCENE_H; o->bbox[2] = 0; o->bbox[3] = 0;
  o->npix = 0;
  for (int y = b[1] < 0 ? 0 : b[1]; y < b[3] && y < SCENE_H; y++) {
    for (int x = b[0] < 0 ? 0 : b[0]; x < b[2] && x < SCENE_W; x++) {
      double dx = x + 0.5 - o->cx, dy = y + 0.5 - o->cy;
      double u, v;
      int in;
      if (o->shape == SHAPE_RECT) {
        u = dx; v = dy;
        in = fabs(u) <= hw && fabs(v) <= hh;
      } else {
        u = dx * c + dy * sn;
        v = -dx * sn + dy * c;
        if (o->shape == SHAPE_ROTRECT)
          in = fabs(u) <= hw && fabs(v) <= hh;
        else
          in = (u * u) / (hw * hw) + (v * v) / (hh * hh) <= 1.0;
      }
      if (!in) continue;
      int shade = (o->cls == CLASS_BUILDING && o->shape != SHAPE_ELLIPSE && v < 0) ? 8 : 0;
      size_t idx = (size_t)y * SCENE_W + (size_t)x;
      for (int k = 0; k < 3; k++) s->rgb[k * plane + idx] = (unsigned char)(o->rgb[k] - shade);
      s->nir[idx] = o->nir;
      o->npix++;
      if (x < o->bbox[0]) o->bbox[0] = x;
      if (y < o->bbox[1]) o->bbox[1] = y;
      if (x + 1 > o->bbox[2]) o->bbox[2] = x + 1;
      if (y + 1 > o->bbox[3]) o->bbox[3] = y + 1;
    }
  }
}

/* Background: 4 x 4 pixel blocks, each at one of four grey-green levels.
 * Blocky, few-level noise looks noisy to a detector but compresses well
 * under DEFLATE with a horizontal predictor (and losslessly in JPEG 2000),
 * which keeps the committed files small.  Maximum value 114 <= 140. */
static void paint_background(asd_scene *s, rng_t *r) {
  size_t plane = (size_t)SCENE_W * SCENE_H;
  for (int by = 0; by < SCENE_H; by += BG_BLOCK) {
    for (int bx = 0; bx < SCENE_W; bx += BG_BLOCK) {
      int level = (int)(rng_next(r) >> 62);
      unsigned char R = (unsigned char)(60 + 16 * level), G = (unsigned char)(66 + 16 * level),
                    B = (unsigned char)(54 + 16 * level);
      uint16_t N = (uint16_t)(700 + 60 * level);
      for (int y = by; y < by + BG_BLOCK && y < SCENE_H; y++)
        for (int x = bx; x < bx + BG_BLOCK && x < SCENE_W; x++) {
          size_t idx = (size_t)y * SCENE_W + (size_t)x;
          s->rgb[idx] = R;
          s->rgb[plane + idx] = G;
          s->rgb[2 * plane + idx] = B;
          s->nir[idx] = N;
        }
    }
  }
}

static int add_object(asd_scene *s, asd_object *o, rng_t *r) {
  int nodata = 0;
  make_polygon(o);
  if (!fits(s, o, &nodata)) return 0;
  o->in_nodata = nodata;
  o->id = s->nobj + 1;
  pick_colour(r, o);
  s->obj[s->nobj++] = *o;
  return 1;
}

int scene_build(asd_scene *s) {
  rng_t r = {SCENE_SEED};
  size_t plane = (size_t)SCENE_W * SCENE_H;
  memset(s, 0, sizeof(*s));
  s->rgb = malloc(3 * plane);
  s->nir = malloc(plane * sizeof(uint16_t));
  if (!s->rgb || !s->nir) {
    fprintf(stderr, "asd_make_samples: out of memory\n");
    return -1;
  }
  paint_background(s, &r);

  for (size_t i = 0; i < sizeof(k_placed) / sizeof(k_placed[0]); i++) {
    const placed_t *p = &k_placed[i];
    asd_object o;
    memset(&o, 0, sizeof(o));
    o.cls = p->cls; o.shape = p->shape;
    o.cx = p->cx; o.cy = p->cy; o.w = p->w; o.h = p->h; o.angle_deg = p->angle;
    o.placement = p->placement;
    if (!add_object(s, &o, &r)) {
      fprintf(stderr, "asd_make_samples: hand-placed object %zu (%s) breaks a placement rule\n",
              i + 1, p->placement);
      return -1;
    }
  }

  int placed = 0;
  for (int attempt = 0; attempt < 20000 && placed < N_RANDOM; attempt++) {
    asd_object o;
    memset(&o, 0, sizeof(o));
    o.placement = "random";
    int draw = rng_int(&r, 0, 99);
    o.cls = draw < 35 ? CLASS_VEHICLE : CLASS_BUILDING;
    int sh = rng_int(&r, 0, 99);
    if (o.cls == CLASS_BUILDING) {
      o.shape = sh < 45 ? SHAPE_RECT : sh < 80 ? SHAPE_ROTRECT : SHAPE_ELLIPSE;
      o.w = 2 * rng_int(&r, 12, 75);                  /* 24 .. 150 */
      o.h = 2 * rng_int(&r, 10, (int)(o.w / 2) < 50 ? (int)(o.w / 2) : 50);
    } else {
      o.shape = sh < 25 ? SHAPE_RECT : sh < 85 ? SHAPE_ROTRECT : SHAPE_ELLIPSE;
      o.w = 2 * rng_int(&r, 6, 9);                    /* 12 .. 18 */
      o.h = 2 * rng_int(&r, 12, 20);                  /* 24 .. 40 */
    }
    o.angle_deg = o.shape == SHAPE_RECT ? 0 : rng_int(&r, 0, 179);
    double half = 0.5 * sqrt(o.w * o.w + o.h * o.h) + EDGE_MARGIN;
    int lo_x = (int)ceil(half), hi_x = SCENE_W - lo_x, lo_y = lo_x, hi_y = SCENE_H - lo_x;
    o.cx = rng_int(&r, lo_x, hi_x);
    o.cy = rng_int(&r, lo_y, hi_y);
    if (add_object(s, &o, &r)) placed++;
  }

  for (int i = 0; i < s->nobj; i++) {
    paint(s, &s->obj[i]);
    if (s->obj[i].npix < 12) {
      fprintf(stderr, "asd_make_samples: object %d covers only %ld pixels\n", s->obj[i].id, s->obj[i].npix);
      return -1;
    }
  }
  return 0;
}

void scene_free(asd_scene *s) {
  free(s->rgb);
  free(s->nir);
  s->rgb = NULL;
  s->nir = NULL;
}
