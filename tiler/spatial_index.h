/*
 * spatial_index.h: a uniform grid over a known extent, holding integer ids
 * by bounding box (library-internal; see spatial_index.c).
 */
#ifndef ASD_SPATIAL_INDEX_H
#define ASD_SPATIAL_INDEX_H

#include <stddef.h>

typedef struct asd_sgrid asd_sgrid;

/* Called for each candidate id; an id spanning several cells is reported once per cell. */
typedef void (*asd_sgrid_visit_fn)(void *ud, int id);

/*
 * A grid over [x0,x1) x [y0,y1) with square cells of side cell, enlarged
 * (doubled) until there are at most max_cells cells.  Boxes outside the
 * extent are clamped into the border cells.  NULL when out of memory.
 */
asd_sgrid *asd_sgrid_new(double x0, double y0, double x1, double y1, double cell,
                         size_t max_cells);
void asd_sgrid_free(asd_sgrid *g);
/* Cell side actually used. */
double asd_sgrid_cell_size(const asd_sgrid *g);
/* Adds id under every cell the box touches.  0, or -1 out of memory (nothing added). */
int asd_sgrid_insert(asd_sgrid *g, int id, double bx0, double by0, double bx1, double by1);
/* Removes id from the cells of the same box it was inserted with. */
void asd_sgrid_remove(asd_sgrid *g, int id, double bx0, double by0, double bx1, double by1);
/* Visits the ids of every cell the box touches (candidates: the caller tests the boxes). */
void asd_sgrid_query(const asd_sgrid *g, double bx0, double by0, double bx1, double by1,
                     asd_sgrid_visit_fn fn, void *ud);
/* Entries held (an id counts once per cell it spans). */
size_t asd_sgrid_entries(const asd_sgrid *g);

#endif /* ASD_SPATIAL_INDEX_H */
