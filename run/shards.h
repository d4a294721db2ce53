/*
 * shards.h: -merge-shards, the outputs of -shard K/N runs put back together
 * (shards.c).  Internal (not installed).
 */
#ifndef ASD_RUN_SHARDS_H
#define ASD_RUN_SHARDS_H

#include "asyncdetect/asd_journal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One shard output: its journal and the identity it was bound to. */
typedef struct asd_run_shard {
  char *path;          /* the shard output as given */
  char *journal_path;  /* the output itself (GeoPackage) or its sidecar journal */
  asd_journal *journal;
  char **meta;         /* identity keys (KEY=VALUE), notes left out */
  char *skipped;       /* note "skipped": the tiles the shard skipped, "TILE:REASON,..." */
  int k;               /* note "shard" K/N: its K, the order of the union */
} asd_run_shard;

/* One image of the union, and where each shard keeps its tiles. */
typedef struct asd_run_shard_image {
  char *label;
  char *raster_size;   /* WxHxB */
  char *window;        /* x,y,w,h */
  int ntiles;
  int *offset;         /* per shard: the journal number of its tile 0 there, or -1 */
} asd_run_shard_image;

typedef struct asd_run_shards {
  asd_run_shard *shard;
  int n;
  asd_run_shard_image *image;
  int nimages;
  char **common;       /* identity keys every shard shares (tile_size, overlap, bands, ...) */
} asd_run_shards;

void asd_run_shards_free(asd_run_shards *s);

#ifdef __cplusplus
}
#endif

#endif /* ASD_RUN_SHARDS_H */
