/*
 * asd_merge.h: streaming merge of detections across tile overlaps.
 *
 * Neighbouring tiles overlap, so an object in an overlap is detected twice
 * (exact duplicates) and an object cut by a tile edge is detected as a piece
 * in one tile and whole, or as another piece, in its neighbour.  The merger
 * removes those duplicates with one of four modes:
 *
 *   none      every detection passes (only the minimum score applies);
 *   nms       greedy non-maximum suppression: a detection whose IoU with a
 *             kept, better one exceeds iou_threshold is dropped;
 *   soft-nms  gaussian soft-NMS: instead of dropping, each detection
 *             overlapping a better one (IoU > soft_min_iou) has its score
 *             multiplied by exp(-IoU^2 / sigma); a detection whose decayed
 *             score falls below score_threshold is dropped (one that nothing
 *             decayed keeps its score, however low: min_score is for those).
 *             An exact duplicate is decayed to 0.135 x its score (sigma 0.5),
 *             so with the default threshold it goes.  raw_score keeps the
 *             model's score;
 *   nmm       greedy non-maximum *merging* (as SAHI): the best detection
 *             absorbs every other whose IoS (intersection over the smaller
 *             box) exceeds ios_threshold, and becomes the union of their
 *             boxes (polygons are united too).  With seam_aware (default)
 *             the IoS of two detections from different tiles is measured on
 *             the boxes clipped to the part the two tile windows share, so
 *             two pieces of an object wider than the overlap still match.
 *
 * Class-aware by default: only detections of the same class interact
 * (class_agnostic = 1 lets every class interact).  Detections below
 * min_score are dropped on arrival.
 *
 * Streaming.  The merger is given the tile windows up front.  Each tile's
 * detections are added when that tile completes, in any order; tiles that
 * failed or were skipped are marked done without detections.  Detections
 * that could interact are kept in groups (connected components of the
 * "may interact" relation, found through a spatial grid index).  A group
 * is final once every tile whose window overlaps any of its members is
 * done: no later tile can add a detection touching it.  The merge mode then
 * runs on the group alone, its results become available to
 * asd_merger_pop(), and its memory is released.  Memory is therefore bounded
 * by the detections near tiles still in flight, not by the image.  Results
 * do not depend on the order tiles complete in: within a group candidates
 * are ranked by score, then position, then tile and position in the tile.
 *
 * A merger is thread-safe (one mutex): pool callbacks may add tiles from
 * several threads.
 */
#ifndef ASD_MERGE_H
#define ASD_MERGE_H

#include "asyncdetect/asd_export.h"

#include <stddef.h>

#include "asyncdetect/asd_features.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum asd_merge_mode {
  ASD_MERGE_NONE = 0,
  ASD_MERGE_NMS = 1,
  ASD_MERGE_SOFT_NMS = 2,
  ASD_MERGE_NMM = 3
} asd_merge_mode;

/* "none", "nms", "soft-nms", "nmm". */
ASD_API const char *asd_merge_mode_name(asd_merge_mode m);
/* Parses the names above (case-insensitive; "softnms", "soft_nms" too).  0 or -1. */
ASD_API int asd_merge_mode_parse(const char *s, asd_merge_mode *m);

typedef struct asd_merge_options {
  asd_merge_mode mode;    /* default ASD_MERGE_NMM */
  double iou_threshold;   /* nms: suppress when IoU > this (default 0.5) */
  double ios_threshold;   /* nmm: merge when IoS > this (default 0.5) */
  double sigma;           /* soft-nms gaussian sigma (default 0.5) */
  double score_threshold; /* soft-nms: drop when the decayed score falls below this (default 0.25) */
  double soft_min_iou;    /* soft-nms: overlaps with IoU <= this do not decay (default 0.1;
                             0 = the textbook algorithm, where any overlap decays, which
                             links crowded scenes into huge groups that stream poorly) */
  double min_score;       /* drop detections scoring below this on arrival (default 0) */
  int class_agnostic;     /* 0: only same-class detections interact (default) */
  int seam_aware;         /* nmm: measure IoS inside the shared tile area (default 1) */
  int nmm_transitive;     /* nmm: merge whole chains (A~B, B~C -> one), not only what the
                             best detection matches (default 0, as SAHI).  Needed for objects
                             spanning three tiles in a row, whose end pieces share no tile area */
  double point_radius;    /* points merge as boxes of this half-size (default 1 pixel) */
} asd_merge_options;

ASD_API void asd_merge_options_init(asd_merge_options *o);
/* 0 if usable, else -1 with one line in err (thresholds in [0,1], sigma > 0, ...). */
ASD_API int asd_merge_options_validate(const asd_merge_options *o, char *err, size_t errlen);

/* A tile window in full-image pixels, identified by the plan's tile index. */
typedef struct asd_merge_tile {
  int index;
  double x, y, w, h;
} asd_merge_tile;

typedef struct asd_merger asd_merger;

/*
 * Creates a merger for the given tiles (indexes must be distinct; w, h > 0).
 * Include every tile that may produce detections; skipped tiles may be left
 * out or marked done.  NULL with one line in err when the options or tiles
 * are invalid or memory runs out.
 */
ASD_API asd_merger *asd_merger_new(const asd_merge_options *opt, const asd_merge_tile *tiles,
                           size_t ntiles, char *err, size_t errlen);
ASD_API void asd_merger_free(asd_merger *m);

/*
 * Hands over the detections of tile tile_index and marks the tile done.
 * The detections are moved out of dets (left empty; dets may be NULL for a
 * tile without detections, e.g. failed or skipped).  Each detection's
 * tile_index is set to tile_index.  Returns 0, or -1 with err (unknown
 * tile, tile already done, out of memory; dets is then emptied too).
 */
ASD_API int asd_merger_add_tile(asd_merger *m, int tile_index, asd_detections *dets, char *err,
                        size_t errlen);
/* Marks every tile not yet done as done (end of run, or cancellation). */
ASD_API void asd_merger_finish(asd_merger *m);

/*
 * Moves every final detection into out (appended).  Returns how many were
 * moved, or (size_t)-1 out of memory (they stay in the merger).
 */
ASD_API size_t asd_merger_pop(asd_merger *m, asd_detections *out);

typedef struct asd_merge_stats {
  size_t tiles_total, tiles_done;
  size_t added;        /* detections handed in */
  size_t below_min;    /* dropped by min_score */
  size_t suppressed;   /* dropped by nms or soft-nms */
  size_t merged;       /* absorbed into another by nmm */
  size_t emitted;      /* final detections produced so far */
  size_t pending;      /* detections waiting for neighbouring tiles now */
  size_t peak_pending; /* the largest pending seen */
  size_t groups;       /* groups finalised */
  size_t largest_group;
} asd_merge_stats;

ASD_API void asd_merger_get_stats(asd_merger *m, asd_merge_stats *s);

/*
 * Batch helper: merges dets (detections of all tiles, each with tile_index
 * set) in place with the given tiles, as a streaming merger fed every tile
 * would.  0, or -1 with err (dets is then emptied).
 */
ASD_API int asd_merge_batch(const asd_merge_options *opt, const asd_merge_tile *tiles, size_t ntiles,
                    asd_detections *dets, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* ASD_MERGE_H */
