/*
 * spatial_index.c: a uniform grid of cells holding ids by bounding box.
 *
 * The merger asks two questions over and over: "which pending detections
 * touch this box?" (to link a new detection to its neighbours) and "which
 * pending detections touch this tile window?" (when the tile completes).
 * Detections are small next to a tile and spread over an image whose
 * extent is known from the tile plan, which is the case a uniform grid
 * serves best: insertion, removal and a query cost O(cells touched + ids
 * found), with no rebalancing, no per-node allocation and a memory use
 * proportional to what is stored.  An R-tree would only pay off for
 * wildly varying box sizes, which detections of one model do not have.
 *
 * Each cell is a singly linked list of entries drawn from one pool (two
 * parallel int arrays plus a free list), so millions of insertions and
 * removals make no malloc calls once the pool has grown.  An id that spans
 * several cells has one entry in each; queries report it once per cell and
 * the caller removes repeats (the merger uses visit stamps).  Removal scans
 * the cell's list, which holds a handful of entries when the cell size is
 * near the size of a detection.
 *
 * The grid's cell count is capped (max_cells): for huge extents the cells
 * grow instead, which keeps the head array at a few megabytes whatever the
 * image size.
 */
#include "spatial_index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct asd_sgrid {
  double x0, y0, cell;
  int nx, ny;
  int *head;    /* nx*ny list heads, -1 when empty */
  int *e_id;    /* entry pool: id */
  int *e_next;  /* entry pool: next entry in the cell list, or the free list */
  int e_cap;
  int e_free;   /* head of the free list, -1 when empty */
  size_t e_used;
};

asd_sgrid *asd_sgrid_new(double x0, double y0, double x1, double y1, double cell,
                         size_t max_cells) {
  if (!(cell > 0) || !isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) return NULL;
  if (max_cells < 1) max_cells = 1;
  double w = fmax(x1 - x0, 1.0), h = fmax(y1 - y0, 1.0);
  double nx, ny;
  for (;;) {
    nx = ceil(w / cell);
    ny = ceil(h / cell);
    if (nx * ny <= (double)max_cells) break;
    cell *= 2;
  }
  asd_sgrid *g = calloc(1, sizeof(*g));
  if (!g) return NULL;
  g->x0 = x0;
  g->y0 = y0;
  g->cell = cell;
  g->nx = (int)nx;
  g->ny = (int)ny;
  g->head = malloc((size_t)g->nx * (size_t)g->ny * sizeof(int));
  if (!g->head) {
    free(g);
    return NULL;
  }
  memset(g->head, 0xff, (size_t)g->nx * (size_t)g->ny * sizeof(int)); /* all -1 */
  g->e_free = -1;
  return g;
}

void asd_sgrid_free(asd_sgrid *g) {
  if (!g) return;
  free(g->head);
  free(g->e_id);
  free(g->e_next);
  free(g);
}

double asd_sgrid_cell_size(const asd_sgrid *g) { return g->cell; }
size_t asd_sgrid_entries(const asd_sgrid *g) { return g->e_used; }

/* Cell range of a box, clamped into the grid. */
static void cell_range(const asd_sgrid *g, double bx0, double by0, double bx1, double by1,
                       int *cx0, int *cy0, int *cx1, int *cy1) {
  double fx0 = floor((bx0 - g->x0) / g->cell), fy0 = floor((by0 - g->y0) / g->cell);
  double fx1 = floor((bx1 - g->x0) / g->cell), fy1 = floor((by1 - g->y0) / g->cell);
  *cx0 = (int)fmin(fmax(fx0, 0), g->nx - 1);
  *cy0 = (int)fmin(fmax(fy0, 0), g->ny - 1);
  *cx1 = (int)fmin(fmax(fx1, 0), g->nx - 1);
  *cy1 = (int)fmin(fmax(fy1, 0), g->ny - 1);
}

static int pool_grow(asd_sgrid *g, int need) {
  if (g->e_free >= 0 && need <= 1) return 0;
  /* Count free entries only when a multi-cell insert needs several. */
  int avail = 0;
  for (int e = g->e_free; e >= 0 && avail < need; e = g->e_next[e]) avail++;
  if (avail >= need) return 0;
  int cap = g->e_cap ? g->e_cap : 1024;
  while (cap - g->e_cap < need - avail) {
    if (cap > (1 << 29)) return -1;
    cap *= 2;
  }
  int *ids = realloc(g->e_id, (size_t)cap * sizeof(int));
  if (!ids) return -1;
  g->e_id = ids;
  int *nx = realloc(g->e_next, (size_t)cap * sizeof(int));
  if (!nx) return -1;
  g->e_next = nx;
  for (int e = cap - 1; e >= g->e_cap; e--) {
    g->e_next[e] = g->e_free;
    g->e_free = e;
  }
  g->e_cap = cap;
  return 0;
}

int asd_sgrid_insert(asd_sgrid *g, int id, double bx0, double by0, double bx1, double by1) {
  int cx0, cy0, cx1, cy1;
  cell_range(g, bx0, by0, bx1, by1, &cx0, &cy0, &cx1, &cy1);
  int need = (cx1 - cx0 + 1) * (cy1 - cy0 + 1);
  if (pool_grow(g, need)) return -1;
  for (int cy = cy0; cy <= cy1; cy++)
    for (int cx = cx0; cx <= cx1; cx++) {
      int e = g->e_free;
      g->e_free = g->e_next[e];
      int *h = &g->head[(size_t)cy * (size_t)g->nx + (size_t)cx];
      g->e_id[e] = id;
      g->e_next[e] = *h;
      *h = e;
      g->e_used++;
    }
  return 0;
}

void asd_sgrid_remove(asd_sgrid *g, int id, double bx0, double by0, double bx1, double by1) {
  int cx0, cy0, cx1, cy1;
  cell_range(g, bx0, by0, bx1, by1, &cx0, &cy0, &cx1, &cy1);
  for (int cy = cy0; cy <= cy1; cy++)
    for (int cx = cx0; cx <= cx1; cx++) {
      int *link = &g->head[(size_t)cy * (size_t)g->nx + (size_t)cx];
      while (*link >= 0) {
        int e = *link;
        if (g->e_id[e] == id) {
          *link = g->e_next[e];
          g->e_next[e] = g->e_free;
          g->e_free = e;
          g->e_used--;
          break;
        }
        link = &g->e_next[e];
      }
    }
}

void asd_sgrid_query(const asd_sgrid *g, double bx0, double by0, double bx1, double by1,
                     asd_sgrid_visit_fn fn, void *ud) {
  int cx0, cy0, cx1, cy1;
  cell_range(g, bx0, by0, bx1, by1, &cx0, &cy0, &cx1, &cy1);
  for (int cy = cy0; cy <= cy1; cy++)
    for (int cx = cx0; cx <= cx1; cx++)
      for (int e = g->head[(size_t)cy * (size_t)g->nx + (size_t)cx]; e >= 0; e = g->e_next[e])
        fn(ud, g->e_id[e]);
}
