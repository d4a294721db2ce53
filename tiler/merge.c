/*
 * merge.c: streaming removal of duplicate detections across tile overlaps.
 *
 * The problem.  Tiles overlap so that every object lies wholly inside at
 * least one tile (when it is smaller than the overlap).  The price is that
 * objects in an overlap are reported by two or four tiles, and objects cut
 * by a tile edge are reported as a piece by one tile and whole (or as the
 * other piece) by the next.  The classic answers work on the whole list of
 * boxes at once: greedy NMS, soft-NMS, SAHI's greedy NMM.  An image with
 * millions of detections should not have to hold them all, so this merger
 * streams.
 *
 * Groups.  Call two detections *linked* when the merge mode could make one
 * affect the other: same class (unless class-agnostic) and IoU above the
 * NMS threshold (nms), any overlap (soft-nms, whose gaussian decay touches
 * every overlapping box), or IoS above the NMM threshold (nmm).  Each of
 * these greedy algorithms only ever acts along links, so running it on each
 * connected component ("group") separately gives exactly the result of
 * running it on everything.  Groups are kept with a union-find whose roots
 * also hold a circular list of the members.
 *
 * When is a group final?  A detection lies inside the window of the tile
 * that produced it (the parser clips it, and the merger clips the box it
 * merges with to that window as well, so the rule holds for any input).
 * A detection that would link to member D must overlap D, so it comes from
 * a tile whose window overlaps D.  Therefore once every tile overlapping
 * any member is done, nothing can ever join the group: it is final, the
 * mode runs on it, its results go to the ready queue and its members are
 * freed.  Each detection counts its not-yet-done overlapping tiles when it
 * arrives; each root holds the sum over its group; completing a tile
 * decrements the detections its window touches, and a group whose sum
 * reaches zero is finalised.  Note the counting is per member, not per
 * group: a group spanning a chain of tiles waits for all of them, which is
 * what the merge chains require (a member's fate can depend on a member
 * three links away).
 *
 * Order independence.  The groups are connected components of a fixed
 * graph, so they do not depend on arrival order; within a group candidates
 * are ranked by score, then box position, class, tile index and position in
 * the tile's document, a total order.  The output set is the same for any
 * completion order; only the order in which groups become ready varies.
 *
 * Cost.  Finding neighbours uses a uniform grid (spatial_index.c) over the
 * tile plan's extent: O(1) expected per detection for realistic densities.
 * Within a group the modes are quadratic in the group size, and groups are
 * a few detections (an object and its duplicates), so the whole is
 * O(n log n) for n detections, dominated by sorting within groups.
 *
 * Outlines (nmm).  The leader takes the union box of its members and, when
 * it is a polygon and the box grew, the union of the members' outlines if
 * that is one polygon (else the box).  All members are united at once
 * (GEOS's cascaded union through OGR), not pairwise: NMM over whole chains,
 * as the utility runs it, makes groups of hundreds on dense scenes, where
 * k-1 pairwise unions of a growing outline were quadratic (445 ms of CPU per
 * tile on the blobs texture at the default overlap, against 8 ms; bench/
 * RESULTS.md, "NMM outlines").  The union is the same point set either way;
 * the ring may start elsewhere or run the other way round, which is why the
 * tests compare outlines as shapes.
 *
 * Seam-aware IoS (nmm).  Two pieces of an object wider than the overlap
 * share only the overlap strip, so their plain IoS is small.  Measured on
 * the two boxes clipped to the area the two tile windows share, the pieces
 * are identical (IoS 1), and a cut piece against its full twin is too.
 * Boxes from the same tile are compared as they are.
 */
#include "asyncdetect/asd_merge.h"

#include <math.h>
#include <ogr_api.h>
#include <cpl_error.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spatial_index.h"

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

const char *asd_merge_mode_name(asd_merge_mode m) {
  switch (m) {
  case ASD_MERGE_NONE: return "none";
  case ASD_MERGE_NMS: return "nms";
  case ASD_MERGE_SOFT_NMS: return "soft-nms";
  case ASD_MERGE_NMM: return "nmm";
  }
  return "unknown";
}

int asd_merge_mode_parse(const char *s, asd_merge_mode *m) {
  if (!s) return -1;
  if (!strcasecmp(s, "none")) *m = ASD_MERGE_NONE;
  else if (!strcasecmp(s, "nms")) *m = ASD_MERGE_NMS;
  else if (!strcasecmp(s, "soft-nms") || !strcasecmp(s, "softnms") || !strcasecmp(s, "soft_nms"))
    *m = ASD_MERGE_SOFT_NMS;
  else if (!strcasecmp(s, "nmm")) *m = ASD_MERGE_NMM;
  else return -1;
  return 0;
}

void asd_merge_options_init(asd_merge_options *o) {
  memset(o, 0, sizeof(*o));
  o->mode = ASD_MERGE_NMM;
  o->iou_threshold = 0.5;
  o->ios_threshold = 0.5;
  o->sigma = 0.5;
  o->score_threshold = 0.25;
  o->soft_min_iou = 0.1;
  o->min_score = 0.0;
  o->class_agnostic = 0;
  o->seam_aware = 1;
  o->point_radius = 1.0;
}

int asd_merge_options_validate(const asd_merge_options *o, char *err, size_t errlen) {
  const char *bad = NULL;
  if (o->mode < ASD_MERGE_NONE || o->mode > ASD_MERGE_NMM) bad = "unknown merge mode";
  else if (!(o->iou_threshold >= 0 && o->iou_threshold <= 1)) bad = "iou_threshold must be in [0,1]";
  else if (!(o->ios_threshold >= 0 && o->ios_threshold <= 1)) bad = "ios_threshold must be in [0,1]";
  else if (!(o->sigma > 0 && isfinite(o->sigma))) bad = "soft-nms sigma must be > 0";
  else if (!(o->score_threshold >= 0 && isfinite(o->score_threshold))) bad = "soft-nms score_threshold must be >= 0";
  else if (!(o->soft_min_iou >= 0 && o->soft_min_iou < 1)) bad = "soft_min_iou must be in [0,1)";
  else if (!isfinite(o->min_score)) bad = "min_score must be a finite number";
  else if (!(o->point_radius > 0 && isfinite(o->point_radius))) bad = "point_radius must be > 0";
  if (bad) {
    if (err && errlen) snprintf(err, errlen, "merge options: %s", bad);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The merger                                                               */
/* ------------------------------------------------------------------------ */

typedef struct mtile {
  int index;
  double x0, y0, x1, y1;
  int done;
  uint64_t stamp;
} mtile;

typedef struct mnode {
  asd_detection d;
  double x0, y0, x1, y1; /* the box it merges with: bbox, points widened, clipped to its tile */
  int tile;              /* position in m->tiles */
  int parent;            /* union-find; next free node when unused */
  int next;              /* circular list of the group's members */
  int size;              /* group size (roots) */
  int pending;           /* tiles not done overlapping this node when it arrived, minus those done since */
  long sum;              /* roots: sum of pending over the group */
  uint64_t stamp;
  uint64_t gid;          /* the group being finalised, while it is */
  int gpos;              /* rank within that group */
  int in_use;
} mnode;

typedef struct ivec {
  int *v;
  size_t n, cap;
} ivec;

struct asd_merger {
  pthread_mutex_t lock;
  asd_merge_options opt;
  mtile *tiles;
  size_t ntiles;
  asd_sgrid *tile_grid;
  asd_sgrid *node_grid;
  mnode *nodes;
  int nodes_cap;
  int free_node;
  uint64_t stamp;
  uint64_t gid;
  ivec found;  /* query results */
  ivec roots;  /* groups to finalise */
  asd_detections ready;
  asd_merge_stats st;
};

static int ivec_push(ivec *a, int x) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 64;
    int *n = realloc(a->v, cap * sizeof(int));
    if (!n) return -1;
    a->v = n;
    a->cap = cap;
  }
  a->v[a->n++] = x;
  return 0;
}

static int overlaps(double ax0, double ay0, double ax1, double ay1, double bx0, double by0,
                    double bx1, double by1) {
  return ax0 < bx1 && bx0 < ax1 && ay0 < by1 && by0 < ay1;
}

static int cmp_tile_index(const void *a, const void *b) {
  int x = ((const mtile *)a)->index, y = ((const mtile *)b)->index;
  return (x > y) - (x < y);
}

static int find_tile(const asd_merger *m, int index) {
  size_t lo = 0, hi = m->ntiles;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (m->tiles[mid].index < index) lo = mid + 1;
    else hi = mid;
  }
  return (lo < m->ntiles && m->tiles[lo].index == index) ? (int)lo : -1;
}

asd_merger *asd_merger_new(const asd_merge_options *opt, const asd_merge_tile *tiles,
                           size_t ntiles, char *err, size_t errlen) {
  asd_merge_options o;
  if (opt) o = *opt;
  else asd_merge_options_init(&o);
  if (asd_merge_options_validate(&o, err, errlen)) return NULL;
  if (ntiles > (size_t)INT32_MAX / 2) {
    if (err && errlen) snprintf(err, errlen, "merge: too many tiles (%zu)", ntiles);
    return NULL;
  }
  asd_merger *m = calloc(1, sizeof(*m));
  if (!m) goto oom;
  pthread_mutex_init(&m->lock, NULL);
  m->opt = o;
  m->free_node = -1;
  m->ntiles = ntiles;
  m->tiles = calloc(ntiles ? ntiles : 1, sizeof(mtile));
  if (!m->tiles) goto oom;
  double ex0 = 0, ey0 = 0, ex1 = 1, ey1 = 1, minside = INFINITY;
  for (size_t i = 0; i < ntiles; i++) {
    const asd_merge_tile *t = &tiles[i];
    if (!(t->w > 0 && t->h > 0 && isfinite(t->x) && isfinite(t->y) && isfinite(t->w) &&
          isfinite(t->h))) {
      if (err && errlen)
        snprintf(err, errlen, "merge: tile %d has an invalid window (%g,%g %gx%g)", t->index, t->x,
                 t->y, t->w, t->h);
      asd_merger_free(m);
      return NULL;
    }
    m->tiles[i] = (mtile){t->index, t->x, t->y, t->x + t->w, t->y + t->h, 0, 0};
    if (i == 0) {
      ex0 = t->x; ey0 = t->y; ex1 = t->x + t->w; ey1 = t->y + t->h;
    } else {
      ex0 = fmin(ex0, t->x); ey0 = fmin(ey0, t->y);
      ex1 = fmax(ex1, t->x + t->w); ey1 = fmax(ey1, t->y + t->h);
    }
    minside = fmin(minside, fmin(t->w, t->h));
  }
  qsort(m->tiles, ntiles, sizeof(mtile), cmp_tile_index);
  for (size_t i = 1; i < ntiles; i++)
    if (m->tiles[i].index == m->tiles[i - 1].index) {
      if (err && errlen) snprintf(err, errlen, "merge: tile index %d is listed twice", m->tiles[i].index);
      asd_merger_free(m);
      return NULL;
    }
  if (!isfinite(minside)) minside = 256;
  /*
   * Tiles: a cell per tile stride or so.  Detections: cells of a quarter
   * tile, near the size of typical detections, so that lists stay short.
   */
  m->tile_grid = asd_sgrid_new(ex0, ey0, ex1, ey1, minside, (size_t)1 << 20);
  m->node_grid = asd_sgrid_new(ex0, ey0, ex1, ey1, fmax(minside / 4, 16), (size_t)1 << 22);
  if (!m->tile_grid || !m->node_grid) goto oom;
  for (size_t i = 0; i < ntiles; i++)
    if (asd_sgrid_insert(m->tile_grid, (int)i, m->tiles[i].x0, m->tiles[i].y0, m->tiles[i].x1,
                         m->tiles[i].y1))
      goto oom;
  m->st.tiles_total = ntiles;
  return m;
oom:
  if (err && errlen) snprintf(err, errlen, "merge: out of memory");
  asd_merger_free(m);
  return NULL;
}

void asd_merger_free(asd_merger *m) {
  if (!m) return;
  for (int i = 0; i < m->nodes_cap; i++)
    if (m->nodes[i].in_use) asd_detection_clear(&m->nodes[i].d);
  free(m->nodes);
  free(m->tiles);
  asd_sgrid_free(m->tile_grid);
  asd_sgrid_free(m->node_grid);
  free(m->found.v);
  free(m->roots.v);
  asd_detections_free(&m->ready);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

/* ------------------------------------------------------------------------ */
/* Queries with de-duplication by stamps                                    */
/* ------------------------------------------------------------------------ */

typedef struct qctx {
  asd_merger *m;
  double x0, y0, x1, y1;
  int fail;
} qctx;

static void visit_node(void *ud, int id) {
  qctx *q = ud;
  mnode *n = &q->m->nodes[id];
  if (n->stamp == q->m->stamp) return;
  n->stamp = q->m->stamp;
  if (overlaps(n->x0, n->y0, n->x1, n->y1, q->x0, q->y0, q->x1, q->y1))
    if (ivec_push(&q->m->found, id)) q->fail = 1;
}

static void visit_tile(void *ud, int id) {
  qctx *q = ud;
  mtile *t = &q->m->tiles[id];
  if (t->stamp == q->m->stamp) return;
  t->stamp = q->m->stamp;
  if (overlaps(t->x0, t->y0, t->x1, t->y1, q->x0, q->y0, q->x1, q->y1))
    if (ivec_push(&q->m->found, id)) q->fail = 1;
}

/* Fills m->found with the nodes (or tiles) whose box overlaps the given one. */
static int query(asd_merger *m, int tiles, double x0, double y0, double x1, double y1) {
  qctx q = {m, x0, y0, x1, y1, 0};
  m->found.n = 0;
  m->stamp++;
  asd_sgrid_query(tiles ? m->tile_grid : m->node_grid, x0, y0, x1, y1,
                  tiles ? visit_tile : visit_node, &q);
  return q.fail ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Geometry of merge boxes                                                  */
/* ------------------------------------------------------------------------ */

static double area(double x0, double y0, double x1, double y1) {
  return (x1 > x0 && y1 > y0) ? (x1 - x0) * (y1 - y0) : 0.0;
}

static double inter_area(const mnode *a, const mnode *b) {
  return area(fmax(a->x0, b->x0), fmax(a->y0, b->y0), fmin(a->x1, b->x1), fmin(a->y1, b->y1));
}

static double iou(const mnode *a, const mnode *b) {
  double i = inter_area(a, b);
  if (i <= 0) return 0;
  double u = area(a->x0, a->y0, a->x1, a->y1) + area(b->x0, b->y0, b->x1, b->y1) - i;
  return u > 0 ? i / u : 0;
}

/* Intersection over the smaller box, inside the shared tile area when seam-aware. */
static double ios(const asd_merger *m, const mnode *a, const mnode *b) {
  double ax0 = a->x0, ay0 = a->y0, ax1 = a->x1, ay1 = a->y1;
  double bx0 = b->x0, by0 = b->y0, bx1 = b->x1, by1 = b->y1;
  if (m->opt.seam_aware && a->tile != b->tile) {
    const mtile *ta = &m->tiles[a->tile], *tb = &m->tiles[b->tile];
    double wx0 = fmax(ta->x0, tb->x0), wy0 = fmax(ta->y0, tb->y0);
    double wx1 = fmin(ta->x1, tb->x1), wy1 = fmin(ta->y1, tb->y1);
    ax0 = fmax(ax0, wx0); ay0 = fmax(ay0, wy0); ax1 = fmin(ax1, wx1); ay1 = fmin(ay1, wy1);
    bx0 = fmax(bx0, wx0); by0 = fmax(by0, wy0); bx1 = fmin(bx1, wx1); by1 = fmin(by1, wy1);
  }
  double aa = area(ax0, ay0, ax1, ay1), ab = area(bx0, by0, bx1, by1);
  if (aa <= 0 || ab <= 0) return 0;
  double i = area(fmax(ax0, bx0), fmax(ay0, by0), fmin(ax1, bx1), fmin(ay1, by1));
  return i / fmin(aa, ab);
}

static const char *cls(const mnode *n) { return n->d.class_iri ? n->d.class_iri : ""; }

static int same_class(const asd_merger *m, const mnode *a, const mnode *b) {
  return m->opt.class_agnostic || strcmp(cls(a), cls(b)) == 0;
}

/* The link relation: can the mode make one of a, b affect the other? */
static int linked(const asd_merger *m, const mnode *a, const mnode *b) {
  if (!same_class(m, a, b)) return 0;
  switch (m->opt.mode) {
  case ASD_MERGE_NMS: return iou(a, b) > m->opt.iou_threshold;
  case ASD_MERGE_SOFT_NMS:
    return m->opt.soft_min_iou > 0 ? iou(a, b) > m->opt.soft_min_iou : inter_area(a, b) > 0;
  case ASD_MERGE_NMM: return ios(m, a, b) > m->opt.ios_threshold;
  case ASD_MERGE_NONE: break;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Union-find over nodes                                                    */
/* ------------------------------------------------------------------------ */

static int find_root(asd_merger *m, int i) {
  while (m->nodes[i].parent != i) {
    m->nodes[i].parent = m->nodes[m->nodes[i].parent].parent;
    i = m->nodes[i].parent;
  }
  return i;
}

static void unite(asd_merger *m, int a, int b) {
  int ra = find_root(m, a), rb = find_root(m, b);
  if (ra == rb) return;
  if (m->nodes[ra].size < m->nodes[rb].size) {
    int t = ra; ra = rb; rb = t;
  }
  mnode *A = &m->nodes[ra], *B = &m->nodes[rb];
  B->parent = ra;
  A->size += B->size;
  A->sum += B->sum;
  int t = A->next; /* splice the two circular member lists */
  A->next = B->next;
  B->next = t;
}

static int alloc_node(asd_merger *m) {
  if (m->free_node < 0) {
    if (m->nodes_cap >= INT32_MAX / 2) return -1;
    int cap = m->nodes_cap ? m->nodes_cap * 2 : 1024;
    mnode *n = realloc(m->nodes, (size_t)cap * sizeof(mnode));
    if (!n) return -1;
    m->nodes = n;
    for (int i = cap - 1; i >= m->nodes_cap; i--) {
      memset(&m->nodes[i], 0, sizeof(mnode));
      m->nodes[i].parent = m->free_node;
      m->free_node = i;
    }
    m->nodes_cap = cap;
  }
  int i = m->free_node;
  m->free_node = m->nodes[i].parent;
  uint64_t stamp = m->nodes[i].stamp; /* stamps stay monotonic per slot */
  memset(&m->nodes[i], 0, sizeof(mnode));
  m->nodes[i].stamp = stamp;
  m->nodes[i].in_use = 1;
  m->nodes[i].parent = i;
  m->nodes[i].next = i;
  m->nodes[i].size = 1;
  return i;
}

static void release_node(asd_merger *m, int i) {
  mnode *n = &m->nodes[i];
  asd_sgrid_remove(m->node_grid, i, n->x0, n->y0, n->x1, n->y1);
  asd_detection_clear(&n->d);
  n->in_use = 0;
  n->parent = m->free_node;
  m->free_node = i;
  m->st.pending--;
}

/* ------------------------------------------------------------------------ */
/* Running a mode on a final group                                          */
/* ------------------------------------------------------------------------ */

static int cmp_dbl(double a, double b) { return (a > b) - (a < b); }

/* Best first: score desc, then position, class, tile, place in the document. */
static int cmp_rank(const void *pa, const void *pb) {
  const mnode *a = *(const mnode *const *)pa, *b = *(const mnode *const *)pb;
  int c;
  if ((c = cmp_dbl(b->d.score, a->d.score))) return c;
  if ((c = cmp_dbl(a->d.minx, b->d.minx))) return c;
  if ((c = cmp_dbl(a->d.miny, b->d.miny))) return c;
  if ((c = cmp_dbl(a->d.maxx, b->d.maxx))) return c;
  if ((c = cmp_dbl(a->d.maxy, b->d.maxy))) return c;
  if ((c = strcmp(cls(a), cls(b)))) return c;
  if ((c = (a->d.tile_index > b->d.tile_index) - (a->d.tile_index < b->d.tile_index))) return c;
  return (a->d.seq > b->d.seq) - (a->d.seq < b->d.seq);
}

/* Moves the detection of node n to the ready queue. */
static int emit(asd_merger *m, mnode *n) {
  if (asd_detections_push(&m->ready, &n->d)) return -1;
  m->st.emitted++;
  return 0;
}

/* A member's outline as an OGR polygon: its ring, or its box. */
static OGRGeometryH node_polygon(const mnode *n) {
  OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
  OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
  if (!poly || !ring) {
    OGR_G_DestroyGeometry(poly);
    OGR_G_DestroyGeometry(ring);
    return NULL;
  }
  const asd_detection *d = &n->d;
  if (d->kind == ASD_GEOM_POLYGON && d->ring_len >= 4) {
    /* One bulk copy rather than a call (and a possible reallocation) per vertex. */
    OGR_G_SetPoints(ring, (int)d->ring_len, &d->ring[0].x, (int)sizeof(asd_point), &d->ring[0].y,
                    (int)sizeof(asd_point), NULL, 0);
  } else {
    double xs[5] = {d->minx, d->maxx, d->maxx, d->minx, d->minx};
    double ys[5] = {d->miny, d->miny, d->maxy, d->maxy, d->miny};
    OGR_G_SetPoints(ring, 5, xs, (int)sizeof(double), ys, (int)sizeof(double), NULL, 0);
  }
  OGR_G_AddGeometryDirectly(poly, ring);
  return poly;
}

/*
 * The outline of a merged group: the union of the members' outlines when
 * it is one polygon (GEOS through OGR), else the union box.  Returns 0 and
 * fills ring/len, or -1 to fall back to the box.
 *
 * All members are united in one call on a MultiPolygon of them (GEOS's
 * cascaded union: a tree of unions of neighbours), converted to GEOS once
 * and back once.  Uniting them pairwise instead (the accumulated outline
 * with each member in turn) converted the growing outline to GEOS and back
 * k-1 times and overlaid it with every member: quadratic in the group, and
 * NMM over whole chains makes groups of hundreds on dense scenes (bench/
 * RESULTS.md, "NMM outlines").  The point set is the same; the ring may
 * start at another vertex, run the other way round or differ in the last
 * bits of computed crossing points, which is why the tests compare shapes.
 */
static int union_outline(mnode **members, size_t k, asd_point **ring, size_t *len) {
  OGRGeometryH all = OGR_G_CreateGeometry(wkbMultiPolygon), acc = NULL;
  int ok = all != NULL;
  for (size_t i = 0; i < k && ok; i++) {
    OGRGeometryH p = node_polygon(members[i]);
    if (!p || OGR_G_AddGeometryDirectly(all, p) != OGRERR_NONE) ok = 0;
  }
  if (ok) {
    CPLPushErrorHandler(CPLQuietErrorHandler);
    acc = OGR_G_UnionCascaded(all);
    CPLPopErrorHandler();
  }
  OGR_G_DestroyGeometry(all);
  if (!acc || wkbFlatten(OGR_G_GetGeometryType(acc)) != wkbPolygon) {
    OGR_G_DestroyGeometry(acc);
    return -1;
  }
  OGRGeometryH ext = OGR_G_GetGeometryRef(acc, 0);
  int n = ext ? OGR_G_GetPointCount(ext) : 0;
  asd_point *r = n >= 4 ? malloc((size_t)n * sizeof(asd_point)) : NULL;
  if (r)
    OGR_G_GetPoints(ext, &r[0].x, (int)sizeof(asd_point), &r[0].y, (int)sizeof(asd_point), NULL, 0);
  OGR_G_DestroyGeometry(acc);
  if (!r) return -1;
  *ring = r;
  *len = (size_t)n;
  return 0;
}

/* NMM: the leader absorbs its members; its box becomes their union. */
static void absorb(asd_merger *m, mnode **members, size_t k) {
  mnode *lead = members[0];
  if (k == 1) return;
  double x0 = lead->d.minx, y0 = lead->d.miny, x1 = lead->d.maxx, y1 = lead->d.maxy;
  int count = lead->d.merged_count > 0 ? lead->d.merged_count : 1;
  for (size_t i = 1; i < k; i++) {
    const asd_detection *d = &members[i]->d;
    count += d->merged_count > 0 ? d->merged_count : 1;
    if (lead->d.kind == ASD_GEOM_POINT || d->kind == ASD_GEOM_POINT) continue;
    x0 = fmin(x0, d->minx); y0 = fmin(y0, d->miny);
    x1 = fmax(x1, d->maxx); y1 = fmax(y1, d->maxy);
  }
  m->st.merged += k - 1;
  lead->d.merged_count = count;
  if (x0 == lead->d.minx && y0 == lead->d.miny && x1 == lead->d.maxx && y1 == lead->d.maxy)
    return; /* the leader already covers the rest: keep its own outline */
  asd_point *ring = NULL;
  size_t len = 0;
  if (lead->d.kind == ASD_GEOM_POLYGON && union_outline(members, k, &ring, &len) == 0) {
    free(lead->d.ring);
    lead->d.ring = ring;
    lead->d.ring_len = len;
  } else {
    free(lead->d.ring);
    lead->d.ring = NULL;
    lead->d.ring_len = 0;
    lead->d.kind = ASD_GEOM_BOX;
  }
  lead->d.minx = x0; lead->d.miny = y0; lead->d.maxx = x1; lead->d.maxy = y1;
}

/*
 * Groups up to this size run the modes with plain double loops; larger ones
 * (crowds, or soft-NMS chains) find each member's neighbours through the
 * grid and pick soft-NMS maxima from a heap, so a group of k members costs
 * O(k log k) instead of O(k^2).  Both paths give identical results.
 */
#define SMALL_GROUP 24

/* Fills m->found with the positions (in the group being finalised) of the members overlapping g[i]. */
static int group_neighbours(asd_merger *m, mnode *n) {
  if (query(m, 0, n->x0, n->y0, n->x1, n->y1)) return -1;
  size_t w = 0;
  for (size_t i = 0; i < m->found.n; i++) {
    mnode *o = &m->nodes[m->found.v[i]];
    if (o->gid == m->gid) m->found.v[w++] = o->gpos;
  }
  m->found.n = w;
  return 0;
}

/* Soft-NMS heap entry: the best (highest score, then lowest rank) on top. */
typedef struct hent {
  double s;
  int pos;
} hent;

static int hent_better(hent a, hent b) { return a.s > b.s || (a.s == b.s && a.pos < b.pos); }

static void heap_push(hent *h, size_t *n, hent e) {
  size_t i = (*n)++;
  while (i > 0 && hent_better(e, h[(i - 1) / 2])) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = e;
}

static hent heap_pop(hent *h, size_t *n) {
  hent top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && hent_better(h[c + 1], h[c])) c++;
    if (!hent_better(h[c], last)) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = last;
  return top;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Soft-NMS decay of g[j] by the selected g[best]; 1 when it was dropped. */
static int soft_decay(asd_merger *m, mnode **g, double *s, unsigned char *state, size_t best,
                      size_t j) {
  if (state[j] || !same_class(m, g[best], g[j])) return 0;
  double v = iou(g[best], g[j]);
  if (v <= m->opt.soft_min_iou || v <= 0) return 0;
  s[j] *= exp(-(v * v) / m->opt.sigma);
  if (s[j] < m->opt.score_threshold) {
    state[j] = 2;
    m->st.suppressed++;
    return 1;
  }
  return 0;
}

static int finalize_group(asd_merger *m, int root) {
  size_t k = (size_t)m->nodes[root].size;
  mnode **g = malloc(k * sizeof(mnode *));
  unsigned char *state = calloc(k, 1); /* 0 open, 1 kept, 2 gone */
  double *s = malloc(k * sizeof(double));
  int *ids = malloc(k * sizeof(int));
  int *mem = malloc(k * sizeof(int));
  mnode **members = malloc(k * sizeof(mnode *));
  hent *heap = NULL;
  size_t gathered = 0;
  int rc = 0;
  if (!g || !state || !s || !ids || !mem || !members) {
    rc = -1;
    goto out;
  }
  {
    size_t i = 0;
    int x = root;
    do {
      ids[i] = x;
      g[i++] = &m->nodes[x];
      x = m->nodes[x].next;
    } while (x != root && i < k);
    k = gathered = i;
  }
  qsort(g, k, sizeof(mnode *), cmp_rank);
  m->gid++;
  for (size_t i = 0; i < k; i++) {
    g[i]->gid = m->gid;
    g[i]->gpos = (int)i;
  }
  m->st.groups++;
  if (k > m->st.largest_group) m->st.largest_group = k;
  int small = k <= SMALL_GROUP;

  switch (m->opt.mode) {
  case ASD_MERGE_NONE:
    for (size_t i = 0; i < k; i++) state[i] = 1;
    break;
  case ASD_MERGE_NMM:
    if (m->opt.nmm_transitive) {
      /* The group is exactly a chain of matches: the best member absorbs it all. */
      for (size_t i = 0; i < k; i++) members[i] = g[i];
      for (size_t i = 1; i < k; i++) state[i] = 2;
      state[0] = 1;
      absorb(m, members, k);
      break;
    }
    /* fall through */
  case ASD_MERGE_NMS:
    for (size_t i = 0; i < k; i++) {
      if (state[i]) continue;
      state[i] = 1;
      size_t nm = 0;
      if (small) {
        for (size_t j = i + 1; j < k; j++)
          if (!state[j] && linked(m, g[i], g[j])) mem[nm++] = (int)j;
      } else {
        if (group_neighbours(m, g[i])) {
          rc = -1;
          goto out;
        }
        for (size_t f = 0; f < m->found.n; f++) {
          size_t j = (size_t)m->found.v[f];
          if (j > i && !state[j] && linked(m, g[i], g[j])) mem[nm++] = (int)j;
        }
        qsort(mem, nm, sizeof(int), cmp_int); /* the same order as the double loop */
      }
      for (size_t q = 0; q < nm; q++) state[mem[q]] = 2;
      if (m->opt.mode == ASD_MERGE_NMS) {
        m->st.suppressed += nm;
      } else {
        members[0] = g[i];
        for (size_t q = 0; q < nm; q++) members[q + 1] = g[mem[q]];
        absorb(m, members, nm + 1);
      }
    }
    break;
  case ASD_MERGE_SOFT_NMS:
    for (size_t i = 0; i < k; i++) s[i] = g[i]->d.score;
    if (small) {
      for (;;) {
        /* The best open detection under the decayed scores; ties keep rank order. */
        size_t best = k;
        for (size_t i = 0; i < k; i++)
          if (!state[i] && (best == k || s[i] > s[best])) best = i;
        if (best == k) break;
        state[best] = 1;
        g[best]->d.score = s[best];
        for (size_t j = 0; j < k; j++) soft_decay(m, g, s, state, best, j);
      }
    } else {
      /* Scores only decrease, so stale heap entries are recognised and skipped. */
      size_t hn = 0, hcap = 2 * k + 16;
      heap = malloc(hcap * sizeof(hent));
      if (!heap) {
        rc = -1;
        goto out;
      }
      for (size_t i = 0; i < k; i++) heap_push(heap, &hn, (hent){s[i], (int)i});
      while (hn) {
        hent e = heap_pop(heap, &hn);
        size_t best = (size_t)e.pos;
        if (state[best] || e.s != s[best]) continue;
        state[best] = 1;
        g[best]->d.score = s[best];
        if (group_neighbours(m, g[best])) {
          rc = -1;
          goto out;
        }
        for (size_t f = 0; f < m->found.n; f++) {
          size_t j = (size_t)m->found.v[f];
          double before = s[j];
          if (soft_decay(m, g, s, state, best, j) == 0 && !state[j] && s[j] != before) {
            if (hn == hcap) {
              hent *nh = realloc(heap, 2 * hcap * sizeof(hent));
              if (!nh) {
                rc = -1;
                goto out;
              }
              heap = nh;
              hcap *= 2;
            }
            heap_push(heap, &hn, (hent){s[j], (int)j});
          }
        }
      }
    }
    break;
  }
  for (size_t i = 0; i < k; i++)
    if (state[i] == 1 && emit(m, g[i])) rc = -1;
out:
  /* Whatever happened, the group is released: a failure loses it rather than leaking it. */
  for (size_t i = 0; i < gathered; i++) release_node(m, ids[i]);
  free(g);
  free(state);
  free(s);
  free(ids);
  free(mem);
  free(members);
  free(heap);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                */
/* ------------------------------------------------------------------------ */

/* Adds one detection of tile position tp; takes *d. */
static int add_detection(asd_merger *m, int tp, asd_detection *d) {
  const mtile *t = &m->tiles[tp];
  m->st.added++;
  if (!(d->score >= m->opt.min_score)) {
    m->st.below_min++;
    asd_detection_clear(d);
    return 0;
  }
  if (m->opt.mode == ASD_MERGE_NONE) {
    if (asd_detections_push(&m->ready, d)) return -1;
    m->st.emitted++;
    return 0;
  }
  /* The merge box: degenerate sides widened by the point radius, clipped to the tile. */
  double r = m->opt.point_radius;
  double x0 = d->minx, y0 = d->miny, x1 = d->maxx, y1 = d->maxy;
  if (!(x1 > x0)) { double c = 0.5 * (x0 + x1); x0 = c - r; x1 = c + r; }
  if (!(y1 > y0)) { double c = 0.5 * (y0 + y1); y0 = c - r; y1 = c + r; }
  x0 = fmax(x0, t->x0); y0 = fmax(y0, t->y0);
  x1 = fmin(x1, t->x1); y1 = fmin(y1, t->y1);
  if (!(x1 > x0 && y1 > y0)) {
    /* Outside its own tile: it cannot be a duplicate of anything the tiles saw. */
    if (asd_detections_push(&m->ready, d)) return -1;
    m->st.emitted++;
    return 0;
  }
  int id = alloc_node(m);
  if (id < 0) return -1;
  mnode *n = &m->nodes[id];
  n->d = *d;
  memset(d, 0, sizeof(*d));
  n->x0 = x0; n->y0 = y0; n->x1 = x1; n->y1 = y1;
  n->tile = tp;
  m->st.pending++;
  if (m->st.pending > m->st.peak_pending) m->st.peak_pending = m->st.pending;
  if (query(m, 1, x0, y0, x1, y1)) goto oom;
  int pending = 0;
  for (size_t i = 0; i < m->found.n; i++) pending += !m->tiles[m->found.v[i]].done;
  n->pending = pending;
  n->sum = pending;
  if (query(m, 0, x0, y0, x1, y1)) goto oom;
  if (asd_sgrid_insert(m->node_grid, id, x0, y0, x1, y1)) goto oom;
  for (size_t i = 0; i < m->found.n; i++) {
    int o = m->found.v[i];
    if (linked(m, &m->nodes[id], &m->nodes[o])) unite(m, id, o);
  }
  return 0;
oom:
  /* Not linked to anything yet, so it can be undone alone; the detection is lost. */
  asd_sgrid_remove(m->node_grid, id, x0, y0, x1, y1);
  asd_detection_clear(&m->nodes[id].d);
  m->nodes[id].in_use = 0;
  m->nodes[id].parent = m->free_node;
  m->free_node = id;
  m->st.pending--;
  return -1;
}

/* Marks tile position tp done and finalises the groups that became complete. */
static int complete_tile(asd_merger *m, int tp) {
  mtile *t = &m->tiles[tp];
  t->done = 1;
  m->st.tiles_done++;
  if (query(m, 0, t->x0, t->y0, t->x1, t->y1)) return -1;
  m->roots.n = 0;
  for (size_t i = 0; i < m->found.n; i++) {
    int root = find_root(m, m->found.v[i]);
    m->nodes[m->found.v[i]].pending--;
    if (--m->nodes[root].sum == 0)
      if (ivec_push(&m->roots, root)) return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < m->roots.n; i++)
    if (finalize_group(m, m->roots.v[i])) rc = -1;
  return rc;
}

int asd_merger_add_tile(asd_merger *m, int tile_index, asd_detections *dets, char *err,
                        size_t errlen) {
  pthread_mutex_lock(&m->lock);
  int rc = 0;
  int tp = find_tile(m, tile_index);
  if (tp < 0 || m->tiles[tp].done) {
    if (err && errlen)
      snprintf(err, errlen, tp < 0 ? "merge: tile %d is not in the plan" : "merge: tile %d is already done",
               tile_index);
    if (dets) asd_detections_reset(dets);
    pthread_mutex_unlock(&m->lock);
    return -1;
  }
  size_t n = dets ? dets->count : 0;
  for (size_t i = 0; i < n; i++) {
    dets->items[i].tile_index = tile_index;
    if (rc == 0 && add_detection(m, tp, &dets->items[i])) rc = -1;
    asd_detection_clear(&dets->items[i]);
  }
  if (dets) dets->count = 0;
  if (complete_tile(m, tp)) rc = -1;
  if (rc && err && errlen) snprintf(err, errlen, "merge: out of memory");
  pthread_mutex_unlock(&m->lock);
  return rc;
}

void asd_merger_finish(asd_merger *m) {
  pthread_mutex_lock(&m->lock);
  for (size_t i = 0; i < m->ntiles; i++)
    if (!m->tiles[i].done) complete_tile(m, (int)i);
  pthread_mutex_unlock(&m->lock);
}

size_t asd_merger_pop(asd_merger *m, asd_detections *out) {
  pthread_mutex_lock(&m->lock);
  size_t n = m->ready.count;
  if (asd_detections_move_all(out, &m->ready)) n = (size_t)-1;
  pthread_mutex_unlock(&m->lock);
  return n;
}

void asd_merger_get_stats(asd_merger *m, asd_merge_stats *s) {
  pthread_mutex_lock(&m->lock);
  *s = m->st;
  pthread_mutex_unlock(&m->lock);
}

int asd_merge_batch(const asd_merge_options *opt, const asd_merge_tile *tiles, size_t ntiles,
                    asd_detections *dets, char *err, size_t errlen) {
  asd_merger *m = asd_merger_new(opt, tiles, ntiles, err, errlen);
  if (!m) return -1;
  /* Bucket the detections by tile, keeping their order within each tile. */
  asd_detections *per = calloc(ntiles ? ntiles : 1, sizeof(asd_detections));
  int rc = per ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < dets->count; i++) {
    int tp = find_tile(m, dets->items[i].tile_index);
    if (tp < 0) {
      if (err && errlen)
        snprintf(err, errlen, "merge: detection %zu names tile %d, which is not in the plan", i,
                 dets->items[i].tile_index);
      rc = -1;
    } else if (asd_detections_push(&per[tp], &dets->items[i])) {
      rc = -1;
    }
  }
  if (rc == 0) {
    dets->count = 0;
    for (size_t i = 0; rc == 0 && i < ntiles; i++)
      rc = asd_merger_add_tile(m, m->tiles[i].index, &per[i], err, errlen);
    asd_merger_finish(m);
    if (rc == 0 && asd_merger_pop(m, dets) == (size_t)-1) rc = -1;
  } else {
    asd_detections_reset(dets);
  }
  for (size_t i = 0; per && i < ntiles; i++) asd_detections_free(&per[i]);
  free(per);
  asd_merger_free(m);
  return rc;
}
