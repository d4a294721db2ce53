/*
 * blockread.c: serving tile windows from the source's native blocks.
 *
 * Why.  Tiles overlap, and tile edges fall anywhere inside the file's
 * blocks (tiles of a tiled GeoTIFF, strips of a striped one).  Reading each
 * tile with one RasterIO of its window leaves it to GDAL's block cache to
 * notice that a neighbour already decoded a block; with a small cache
 * (GDAL_CACHEMAX) and a wide image, the blocks of one row of tiles are gone
 * by the time the next row needs them, so compressed blocks are fetched and
 * decoded two, three or four times.  Here the encoder reads whole native
 * blocks itself, once each, keeps them exactly as long as a tile still needs
 * them, and cuts tiles out of them in memory.
 *
 * What a block is.  The native block of the first selected band
 * (GDALGetBlockSize): a tile of a tiled file, a strip of a striped one (a
 * whole-width band of rows).  A block is read with one GDALDatasetRasterIO
 * of exactly its window over all the selected bands, in the source's own
 * data type, so GDAL decodes it once for every band (pixel-interleaved
 * files hold all bands in one compressed block) and nothing is converted
 * twice.  Runs of blocks side by side are announced to the driver first
 * with GDALDatasetAdviseRead (for /vsicurl/ and /vsis3/ GeoTIFFs that lets
 * GDAL fetch them in one multi-range request).  GDAL's own block cache
 * would then hold a second copy of what was just read, which nobody will
 * ask for again: the borrowed handle's cache is flushed after each read so
 * that memory holds one copy of each block, ours.  Short blocks (strips of
 * a few rows; GDAL's default for a compressed striped GeoTIFF is one row)
 * are read and held in groups of whole strips, at least 64 rows high (at
 * most 8 MB): a 20,000-pixel-wide RGB image has 60 kB strips, and holding
 * them one by one costs a RasterIO, a hash entry and a small allocation
 * each, which fragment the heap as rows come and go.  A group is still
 * whole native blocks, each read once; the counters count native blocks.
 * (With -srcwin, a group may reach up to 63 rows above or below the
 * region; tiled files are never grouped, so nothing outside the tiles'
 * blocks is read.)
 *
 * Which blocks, and for how long.  A request pins the blocks under its
 * window: blocks present are reused, missing ones are created QUEUED.  Any
 * request that needs a QUEUED block may claim it and read it, outside the
 * lock, a run of blocks side by side at a time; a request with nothing left
 * to claim waits for the blocks others are reading.  So when the first
 * tiles of a new row of tiles arrive together, the encoder threads share
 * the reading of the new row of blocks instead of one reading it while the
 * others wait, and no block is read twice.
 * The tile is cut from the pinned blocks, converted to the caller's type
 * with GDALCopyWords (the very conversion RasterIO applies, so the pixels
 * are byte-identical to a window read), and the pins are dropped.  Blocks
 * are then freed on two rules:
 *   - rows behind: tiles come in the plan's row-major order, so once a
 *     tile of a new row of tiles is asked for, blocks lying entirely above
 *     the current row of tiles will not be needed again, provided every
 *     tile of the previous row has been asked for.  With several encoder
 *     threads one may still hold a tile of the previous row it has taken
 *     but not yet asked for; so the reader counts the tiles asked for per
 *     row (the longest finished row gives the plan's columns) and, until
 *     the previous row is complete, keeps its blocks too.  The blocks held
 *     are therefore those spanned by one row of tiles, two at the turn of
 *     a row, overlap included: never the image size.
 *   - the cap: when the blocks held exceed cache_max, unpinned blocks are
 *     freed least recently used first.  Pinned blocks are never freed, so
 *     the cap may be exceeded by the blocks of the tiles being cut at that
 *     moment (bounded by the tiles in flight).
 * The value buffers of freed full-size blocks are kept for the next blocks
 * read (at most a quarter of the cap): rows of
 * blocks come and go in step, and recycling spares the system an munmap
 * and a page fault per 4 kB for every block (large buffers are mmap'd).
 * Another order (say column-major) is served correctly, only with blocks
 * read again; blocks_reread counts them (one bit per native block records
 * which blocks were ever read: 2 MB for a 1,000,000-pixel-square image in
 * 256 x 256 blocks; beyond 64 Mi blocks the bitmap is not kept and the
 * counter reads -1).
 *
 * The fallback.  If the blocks under one window alone exceed the cap (a
 * file stored as a single strip, or huge blocks on a very wide image),
 * holding them would break the memory bound, so the request answers 1 and
 * the encoder reads that tile's window with one RasterIO, as before: GDAL
 * then does what it can (GeoTIFF splits an uncompressed single strip into
 * virtual strips; a compressed one is decoded per request).  A window that
 * is not inside the image also answers 1, so that GDAL reports the error.
 *
 * Masks.  Validity planes are built exactly as asd_read_window builds
 * them: nothing for an all-valid band, a comparison with the nodata value
 * on the values (asd_nodata_validity, shared with it), and for a mask band,
 * alpha band or per-dataset mask the mask band's block, read with the
 * values and kept as 0/1 (one plane for a per-dataset mask).
 */
#include "blockread.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_hash_set.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

/* A block is created QUEUED by the request that found it missing; any
 * request that needs it may claim it (LOADING) and read it. */
enum { BLK_QUEUED = 0, BLK_LOADING = 1, BLK_READY = 2, BLK_FAILED = 3 };

/* Native blocks shorter than this are grouped (see "What a block is"). */
#define ASD_BLOCK_MIN_ROWS 64
/* ... as long as a group stays under this size. */
#define ASD_BLOCK_GROUP_MAX_BYTES ((size_t)8 << 20)

typedef struct blk {
  int bx, by;         /* block column, and row of groups of ky native block rows */
  int x0, y0, w, h;   /* its window in image pixels (clipped at the edges) */
  int state;
  int pins;           /* requests using it now */
  int in_set;         /* reachable through the hash set and the LRU list */
  size_t bytes;
  unsigned char *values; /* nbands planes of w*h values of store_dt */
  unsigned char *masks;  /* nmask planes of w*h 0/1 bytes, or NULL */
  char *why;             /* FAILED: the reading thread's message, for every request that waits on it */
  struct blk *prev, *next; /* LRU list: least recently used first */
} blk;

struct asd_block_reader {
  asd_handle_hooks hooks;
  int bands[ASD_ENCODE_MAX_BANDS];
  int nbands;
  GDALDataType store_dt, read_dt;
  int ssz, rsz;
  int xsize, ysize, bw, bh; /* image size, native block size */
  int ky, uh;               /* native block rows per held block, and its height (bh * ky) */
  int nbx, nby;             /* held blocks across and down */
  /* Validity, decided once as asd_read_window decides it per read. */
  int flags[ASD_ENCODE_MAX_BANDS];
  int has_nd[ASD_ENCODE_MAX_BANDS];
  double nd[ASD_ENCODE_MAX_BANDS];
  int mask_plane[ASD_ENCODE_MAX_BANDS]; /* plane index, or -1 */
  int mask_band[ASD_ENCODE_MAX_BANDS];  /* band (1-based) whose mask fills plane k */
  int nmask;
  size_t cache_max;

  pthread_mutex_t lock;
  pthread_cond_t cond;
  CPLHashSet *set;
  blk *head, *tail;
  size_t cache_bytes, cache_peak;
  int top_last, top_prev; /* tops of the two lowest rows of tiles asked for so far */
  int n_last, n_prev;     /* tiles asked for in each of those rows */
  int row_tiles;          /* most tiles asked for in one finished row: the plan's columns */
  unsigned char *ever;    /* one bit per native block: read at least once */
  /* Value buffers of freed full-size blocks, for the next blocks read. */
  void **pool;
  int npool, pool_cap;
  size_t pool_size;       /* bytes of a full-size block's values */
  long long tiles, blocks_read, blocks_reread, bytes_read;
};

/* ------------------------------------------------------------------------
 * The set of blocks held.
 * ---------------------------------------------------------------------- */

static unsigned long blk_hash(const void *p) {
  const blk *b = p;
  return (unsigned long)((uint64_t)(unsigned)b->by * 2654435761u ^ (uint64_t)(unsigned)b->bx * 40503u);
}

static int blk_equal(const void *a, const void *b) {
  const blk *x = a, *y = b;
  return x->bx == y->bx && x->by == y->by;
}

static void lru_unlink(asd_block_reader *r, blk *b) {
  if (b->prev)
    b->prev->next = b->next;
  else
    r->head = b->next;
  if (b->next)
    b->next->prev = b->prev;
  else
    r->tail = b->prev;
  b->prev = b->next = NULL;
}

static void lru_append(asd_block_reader *r, blk *b) {
  b->prev = r->tail;
  b->next = NULL;
  if (r->tail)
    r->tail->next = b;
  else
    r->head = b;
  r->tail = b;
}

/* Frees b; a full-size value buffer goes back to the pool (lock held). */
static void blk_destroy(asd_block_reader *r, blk *b) {
  if (b->values && b->w == r->bw && b->h == r->uh && r->npool < r->pool_cap)
    r->pool[r->npool++] = b->values;
  else
    VSIFree(b->values);
  VSIFree(b->masks);
  CPLFree(b->why);
  CPLFree(b);
}

/* Takes b out of the set (lock held); frees it unless a request still
 * holds a pin, in which case the last unpin frees it. */
static void blk_drop(asd_block_reader *r, blk *b) {
  if (b->in_set) {
    CPLHashSetRemove(r->set, b);
    lru_unlink(r, b);
    r->cache_bytes -= b->bytes;
    b->in_set = 0;
  }
  if (b->pins == 0) blk_destroy(r, b);
}

/* Frees unpinned blocks, least recently used first, until the blocks held
 * fit in the cap (lock held). */
static void enforce_cap(asd_block_reader *r) {
  blk *b = r->head;
  while (b && r->cache_bytes > r->cache_max) {
    blk *next = b->next;
    if (b->pins == 0 && (b->state == BLK_READY || b->state == BLK_QUEUED)) blk_drop(r, b);
    b = next;
  }
}

static size_t blk_bytes(const asd_block_reader *r, int w, int h) {
  return (size_t)w * (size_t)h * ((size_t)r->nbands * (size_t)r->ssz + (size_t)r->nmask);
}

/* The window of block (bx, by), clipped to the image. */
static void blk_window(const asd_block_reader *r, int bx, int by, int *x0, int *y0, int *w, int *h) {
  *x0 = bx * r->bw;
  *y0 = by * r->uh;
  *w = *x0 + r->bw > r->xsize ? r->xsize - *x0 : r->bw;
  *h = *y0 + r->uh > r->ysize ? r->ysize - *y0 : r->uh;
}

/* ------------------------------------------------------------------------
 * Construction.
 * ---------------------------------------------------------------------- */

asd_block_reader *asd_block_reader_new(GDALDatasetH ds, const int *bands, int nbands, GDALDataType read_dt,
                                       size_t cache_max, const asd_handle_hooks *hooks) {
  if (nbands <= 0 || nbands > ASD_ENCODE_MAX_BANDS || !hooks || !hooks->borrow || !hooks->give_back) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_block_reader: invalid arguments");
    return NULL;
  }
  asd_block_reader *r = CPLCalloc(1, sizeof(*r));
  r->hooks = *hooks;
  r->nbands = nbands;
  memcpy(r->bands, bands, sizeof(int) * (size_t)nbands);
  r->read_dt = read_dt;
  r->xsize = GDALGetRasterXSize(ds);
  r->ysize = GDALGetRasterYSize(ds);
  GDALRasterBandH b1 = GDALGetRasterBand(ds, bands[0]);
  GDALGetBlockSize(b1, &r->bw, &r->bh);
  if (r->bw <= 0 || r->bh <= 0) {
    r->bw = r->xsize;
    r->bh = 1;
  }
  r->nbx = (r->xsize + r->bw - 1) / r->bw;
  /* Blocks are kept in the source's type (a UInt16 image scaled to Byte
   * holds 2 bytes per value, not the 8 of the Float64 it is converted
   * through); bands of mixed types share the widest exact one. */
  r->store_dt = GDALGetRasterDataType(b1);
  for (int i = 1; i < nbands; i++)
    if (GDALGetRasterDataType(GDALGetRasterBand(ds, bands[i])) != r->store_dt) r->store_dt = GDT_Float64;
  if (read_dt == GDT_Byte && r->store_dt != GDT_Byte) r->store_dt = GDT_Byte;
  r->ssz = GDALGetDataTypeSizeBytes(r->store_dt);
  r->rsz = GDALGetDataTypeSizeBytes(read_dt);
  int per_dataset_plane = -1;
  for (int i = 0; i < nbands; i++) {
    GDALRasterBandH band = GDALGetRasterBand(ds, bands[i]);
    r->flags[i] = GDALGetMaskFlags(band);
    r->nd[i] = GDALGetRasterNoDataValue(band, &r->has_nd[i]);
    r->mask_plane[i] = -1;
    if ((r->flags[i] & GMF_ALL_VALID) || r->flags[i] == GMF_NODATA) continue;
    if ((r->flags[i] & GMF_PER_DATASET) && per_dataset_plane >= 0) {
      r->mask_plane[i] = per_dataset_plane;
      continue;
    }
    r->mask_plane[i] = r->nmask;
    r->mask_band[r->nmask] = bands[i];
    if (r->flags[i] & GMF_PER_DATASET) per_dataset_plane = r->nmask;
    r->nmask++;
  }
  /* Short strips are held in groups of ky strips: see the essay.  Tiled
   * files are not grouped, so that nothing outside the tiles is read. */
  r->ky = 1;
  while (r->bw >= r->xsize && r->ky * r->bh < ASD_BLOCK_MIN_ROWS && r->ky * r->bh < r->ysize &&
         blk_bytes(r, r->bw, (r->ky + 1) * r->bh) <= ASD_BLOCK_GROUP_MAX_BYTES)
    r->ky++;
  r->uh = r->ky * r->bh;
  r->nby = (r->ysize + r->uh - 1) / r->uh;
  r->cache_max = cache_max;
  /* Recycling: blocks come and go a row of tiles at a time, so a pool of
   * full-size buffers (a quarter of the cap at most) lets the next row
   * reuse the memory of the row just freed instead of returning it to the
   * system and faulting fresh pages in (large buffers are mmap'd).  The
   * pool rarely holds more than the blocks freed at one turn of a row:
   * they are taken again before more are freed. */
  r->pool_size = (size_t)r->bw * (size_t)r->uh * (size_t)r->nbands * (size_t)r->ssz;
  r->pool_cap = 1;
  if (r->pool_size > 0 && cache_max / 4 / r->pool_size > 1)
    r->pool_cap = cache_max / 4 / r->pool_size > 4096 ? 4096 : (int)(cache_max / 4 / r->pool_size);
  r->pool = CPLCalloc((size_t)(r->pool_cap > 0 ? r->pool_cap : 1), sizeof(void *));
  r->top_last = r->top_prev = INT_MIN;
  const uint64_t nblocks = (uint64_t)r->nbx * (uint64_t)r->nby;
  if (nblocks <= ((uint64_t)64 << 20)) r->ever = CPLCalloc((size_t)((nblocks + 7) / 8), 1);
  r->set = CPLHashSetNew(blk_hash, blk_equal, NULL);
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->cond, NULL);
  CPLDebug("ASD", "block reader: blocks %d x %d read %d rows at a time (%d x %d reads), %s, cap %lu MB", r->bw,
           r->bh, r->uh, r->nbx, r->nby, GDALGetDataTypeName(r->store_dt), (unsigned long)(cache_max >> 20));
  return r;
}

void asd_block_reader_free(asd_block_reader *r) {
  if (!r) return;
  blk *b = r->head;
  while (b) {
    blk *next = b->next;
    blk_destroy(r, b);
    b = next;
  }
  CPLHashSetDestroy(r->set);
  CPLFree(r->ever);
  for (int i = 0; i < r->npool; i++) VSIFree(r->pool[i]);
  CPLFree(r->pool);
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->cond);
  CPLFree(r);
}

size_t asd_block_reader_pixel_bytes(const asd_block_reader *r) { return blk_bytes(r, 1, 1); }

int asd_block_reader_short_strips(const asd_block_reader *r) { return r->ky > 1; }

size_t asd_block_reader_window_bytes(const asd_block_reader *r, int x, int y, int w, int h) {
  if (w <= 0 || h <= 0) return 0;
  /* Whole blocks on every side of the window, clipped at the image edge. */
  int x0 = (x / r->bw) * r->bw, y0 = (y / r->uh) * r->uh;
  int x1 = ((x + w + r->bw - 1) / r->bw) * r->bw, y1 = ((y + h + r->uh - 1) / r->uh) * r->uh;
  if (x1 > r->xsize) x1 = r->xsize;
  if (y1 > r->ysize) y1 = r->ysize;
  return blk_bytes(r, x1 - x0, y1 - y0);
}

void asd_block_reader_stats(asd_block_reader *r, asd_encoder_read_stats *s) {
  pthread_mutex_lock(&r->lock);
  s->block_width = r->bw;
  s->block_height = r->bh;
  s->tiles_from_blocks = r->tiles;
  s->blocks_read = r->blocks_read;
  s->blocks_reread = r->ever ? r->blocks_reread : -1;
  s->block_bytes_read = r->bytes_read;
  s->cache_bytes = (long long)r->cache_bytes;
  s->cache_peak_bytes = (long long)r->cache_peak;
  s->cache_max_bytes = (long long)r->cache_max;
  pthread_mutex_unlock(&r->lock);
}

/* ------------------------------------------------------------------------
 * Reading blocks.
 * ---------------------------------------------------------------------- */

/* Reads block b (its buffers are allocated here) through handle h.
 * Returns 0, or -1 after CPLError. */
static int load_block(asd_block_reader *r, GDALDatasetH h, blk *b) {
  const size_t npix = (size_t)b->w * (size_t)b->h;
  b->values = NULL;
  if (b->w == r->bw && b->h == r->uh) {
    pthread_mutex_lock(&r->lock);
    if (r->npool > 0) b->values = r->pool[--r->npool];
    pthread_mutex_unlock(&r->lock);
  }
  if (!b->values) b->values = VSI_MALLOC3_VERBOSE(npix, (size_t)r->nbands, (size_t)r->ssz);
  if (!b->values) return -1;
  if (GDALDatasetRasterIO(h, GF_Read, b->x0, b->y0, b->w, b->h, b->values, b->w, b->h, r->store_dt, r->nbands,
                          r->bands, 0, 0, 0) != CE_None) {
    /* GDAL's own cause (TIFFFillTile: Read error...) goes in the message:
     * it ends up in the tile's reason. */
    char why[512];
    snprintf(why, sizeof(why), "%s", CPLGetLastErrorMsg());
    CPLError(CE_Failure, CPLE_FileIO, "cannot read block %d,%d (window %d,%d %dx%d) of '%s': %s", b->bx, b->by,
             b->x0, b->y0, b->w, b->h, GDALGetDescription(h), why[0] ? why : "unknown error");
    return -1;
  }
  if (r->nmask > 0) {
    b->masks = VSI_MALLOC2_VERBOSE(npix, (size_t)r->nmask);
    if (!b->masks) return -1;
    for (int k = 0; k < r->nmask; k++) {
      unsigned char *m = b->masks + (size_t)k * npix;
      GDALRasterBandH mask = GDALGetMaskBand(GDALGetRasterBand(h, r->mask_band[k]));
      if (GDALRasterIO(mask, GF_Read, b->x0, b->y0, b->w, b->h, m, b->w, b->h, GDT_Byte, 0, 0) != CE_None) {
        char why[512];
        snprintf(why, sizeof(why), "%s", CPLGetLastErrorMsg());
        CPLError(CE_Failure, CPLE_FileIO, "cannot read the mask of band %d, block %d,%d of '%s': %s",
                 r->mask_band[k], b->bx, b->by, GDALGetDescription(h), why[0] ? why : "unknown error");
        return -1;
      }
      for (size_t i = 0; i < npix; i++) m[i] = m[i] != 0;
    }
  }
  return 0;
}

/* Marks b read (ok) or failed, and wakes the requests waiting for it
 * (lock held). */
static void blk_loaded(asd_block_reader *r, blk *b, int ok) {
  if (ok) {
    b->state = BLK_READY;
    const long long native = (b->h + r->bh - 1) / r->bh; /* native blocks in it */
    const size_t bit = (size_t)b->by * (size_t)r->nbx + (size_t)b->bx;
    if (r->ever) {
      if (r->ever[bit >> 3] & (1u << (bit & 7))) r->blocks_reread += native;
      r->ever[bit >> 3] |= (unsigned char)(1u << (bit & 7));
    }
    r->blocks_read += native;
    r->bytes_read += (long long)b->bytes;
  } else {
    b->state = BLK_FAILED;
    blk_drop(r, b); /* pinned: stays allocated until unpinned */
  }
  pthread_cond_broadcast(&r->cond);
}

/* Reads the queued blocks of list, cooperating with the other requests:
 * claims a run of QUEUED blocks side by side in one row (any request's,
 * since several tiles need the same blocks), reads it with a borrowed
 * handle, and repeats; when none is left, waits for the ones others are
 * reading.  The handle is given back before waiting, so that a request
 * never sleeps on a handle another one needs to finish a block.  Returns
 * 0, or -1 when a block could not be read. */
static int load_blocks(asd_block_reader *r, blk **list, int n) {
  int rc = 0;
  pthread_mutex_lock(&r->lock);
  for (;;) {
    int first = -1, loading = 0;
    for (int k = 0; k < n && rc == 0; k++) {
      if (list[k]->state == BLK_QUEUED && first < 0) first = k;
      if (list[k]->state == BLK_LOADING) loading = 1;
      if (list[k]->state == BLK_FAILED) {
        /* Whichever thread read the block, this request's tile fails with
         * the same cause (GDAL's own words), not a generic message that
         * depends on which encoder thread got there first. */
        CPLError(CE_Failure, CPLE_FileIO, "%s", list[k]->why ? list[k]->why : "cannot read a block of the input");
        rc = -1;
      }
    }
    if (rc != 0) break;
    if (first < 0) {
      if (!loading) break;
      pthread_cond_wait(&r->cond, &r->lock);
      continue;
    }
    int last = first;
    while (last + 1 < n && list[last + 1]->state == BLK_QUEUED && list[last + 1]->by == list[first]->by) last++;
    for (int k = first; k <= last; k++) list[k]->state = BLK_LOADING;
    pthread_mutex_unlock(&r->lock);

    GDALDatasetH h = r->hooks.borrow(r->hooks.ctx);
    if (h) {
      const blk *a = list[first], *z = list[last];
      const int rw = z->x0 + z->w - a->x0;
      GDALDatasetAdviseRead(h, a->x0, a->y0, rw, a->h, rw, a->h, r->store_dt, r->nbands, r->bands, NULL);
    }
    for (int k = first; k <= last; k++) {
      const int ok = h != NULL && load_block(r, h, list[k]) == 0;
      if (!ok) list[k]->why = CPLStrdup(CPLGetLastErrorMsg());
      pthread_mutex_lock(&r->lock);
      blk_loaded(r, list[k], ok);
      pthread_mutex_unlock(&r->lock);
    }
    if (h) {
      /* Drop the decoded copies GDAL kept in its block cache for this
       * handle: ours are the ones that will be used. */
      GDALFlushCache(h);
      r->hooks.give_back(r->hooks.ctx, h);
    }
    pthread_mutex_lock(&r->lock);
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}

/* ------------------------------------------------------------------------
 * Cutting a window out of blocks.
 * ---------------------------------------------------------------------- */

/* Copies plane k (values when is_mask is 0, else mask plane k) of every
 * block into the window buffer dst (w*h elements of dst_size bytes). */
static void cut_plane(const asd_block_reader *r, blk **list, int n, int x, int y, int w, int h, int k,
                      int is_mask, unsigned char *dst) {
  for (int i = 0; i < n; i++) {
    const blk *b = list[i];
    int ix0 = x > b->x0 ? x : b->x0, ix1 = x + w < b->x0 + b->w ? x + w : b->x0 + b->w;
    int iy0 = y > b->y0 ? y : b->y0, iy1 = y + h < b->y0 + b->h ? y + h : b->y0 + b->h;
    if (ix1 <= ix0 || iy1 <= iy0) continue;
    const size_t bplane = (size_t)b->w * (size_t)b->h;
    for (int yy = iy0; yy < iy1; yy++) {
      const size_t so = bplane * (size_t)k + (size_t)(yy - b->y0) * (size_t)b->w + (size_t)(ix0 - b->x0);
      const size_t dof = (size_t)(yy - y) * (size_t)w + (size_t)(ix0 - x);
      if (is_mask) {
        memcpy(dst + dof, b->masks + so, (size_t)(ix1 - ix0));
      } else {
        GDALCopyWords(b->values + so * (size_t)r->ssz, r->store_dt, r->ssz, dst + dof * (size_t)r->rsz, r->read_dt,
                      r->rsz, ix1 - ix0);
      }
    }
  }
}

/* Builds px from the pinned blocks, as asd_read_window would from ds. */
static int cut_window(const asd_block_reader *r, blk **list, int n, int x, int y, int w, int h,
                      asd_window_pixels *px) {
  const size_t npix = (size_t)w * (size_t)h;
  px->dt = r->read_dt;
  px->nbands = r->nbands;
  px->npix = npix;
  px->values = VSI_MALLOC3_VERBOSE(npix, (size_t)r->nbands, (size_t)r->rsz);
  if (!px->values) return -1;
  for (int b = 0; b < r->nbands; b++)
    cut_plane(r, list, n, x, y, w, h, b, 0, (unsigned char *)px->values + (size_t)b * npix * (size_t)r->rsz);
  int per_dataset_done = -1;
  for (int b = 0; b < r->nbands; b++) {
    if (r->flags[b] & GMF_ALL_VALID) {
      if (px->valid) memset(px->valid + (size_t)b * npix, 1, npix);
      continue;
    }
    if (!px->valid) {
      px->valid = VSI_MALLOC2_VERBOSE(npix, (size_t)r->nbands);
      if (!px->valid) {
        asd_window_pixels_free(px);
        return -1;
      }
      for (int k = 0; k < b; k++) memset(px->valid + (size_t)k * npix, 1, npix);
    }
    unsigned char *v = px->valid + (size_t)b * npix;
    if (r->flags[b] == GMF_NODATA) {
      asd_nodata_validity(r->has_nd[b], r->nd[b], r->read_dt,
                          (const unsigned char *)px->values + (size_t)b * npix * (size_t)r->rsz, npix, v);
      continue;
    }
    if ((r->flags[b] & GMF_PER_DATASET) && per_dataset_done >= 0) {
      memcpy(v, px->valid + (size_t)per_dataset_done * npix, npix);
      continue;
    }
    cut_plane(r, list, n, x, y, w, h, r->mask_plane[b], 1, v);
    if (r->flags[b] & GMF_PER_DATASET) per_dataset_done = b;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * A request.
 * ---------------------------------------------------------------------- */

int asd_block_reader_read(asd_block_reader *r, int x, int y, int w, int h, asd_window_pixels *px) {
  memset(px, 0, sizeof(*px));
  if (w <= 0 || h <= 0 || x < 0 || y < 0 || x > r->xsize - w || y > r->ysize - h) return 1;
  if (asd_block_reader_window_bytes(r, x, y, w, h) > r->cache_max) return 1;
  const int c0 = x / r->bw, c1 = (x + w - 1) / r->bw, r0 = y / r->uh, r1 = (y + h - 1) / r->uh;
  const int n = (c1 - c0 + 1) * (r1 - r0 + 1);
  blk **list = VSI_MALLOC2_VERBOSE((size_t)n, sizeof(blk *));
  if (!list) return -1;

  /* Pin the blocks under the window, creating the missing ones. */
  pthread_mutex_lock(&r->lock);
  int i = 0;
  for (int by = r0; by <= r1; by++) {
    for (int bx = c0; bx <= c1; bx++, i++) {
      blk key;
      key.bx = bx;
      key.by = by;
      blk *b = CPLHashSetLookup(r->set, &key);
      if (b) {
        lru_unlink(r, b);
        lru_append(r, b);
      } else {
        b = CPLCalloc(1, sizeof(*b));
        b->bx = bx;
        b->by = by;
        blk_window(r, bx, by, &b->x0, &b->y0, &b->w, &b->h);
        b->bytes = blk_bytes(r, b->w, b->h);
        b->state = BLK_QUEUED;
        b->in_set = 1;
        CPLHashSetInsert(r->set, b);
        lru_append(r, b);
        r->cache_bytes += b->bytes;
      }
      b->pins++;
      list[i] = b;
    }
  }
  /* Rows behind: see the essay.  Blocks above keep are freed: the top of
   * the current row of tiles once every tile of the previous row has been
   * asked for, else the top of the previous row (or of this tile, if it is
   * earlier still). */
  if (y > r->top_last) {
    if (r->n_last > r->row_tiles) r->row_tiles = r->n_last;
    r->top_prev = r->top_last;
    r->n_prev = r->n_last;
    r->top_last = y;
    r->n_last = 1;
  } else if (y == r->top_last) {
    r->n_last++;
  } else if (y == r->top_prev) {
    r->n_prev++;
  }
  int keep = (r->row_tiles > 0 && r->n_prev >= r->row_tiles) ? r->top_last : r->top_prev;
  if (keep > y) keep = y;
  if (keep != INT_MIN) {
    blk *b = r->head;
    while (b) {
      blk *next = b->next;
      if (b->pins == 0 && (b->state == BLK_READY || b->state == BLK_QUEUED) && b->y0 + b->h <= keep)
        blk_drop(r, b);
      b = next;
    }
  }
  enforce_cap(r);
  if (r->cache_bytes > r->cache_peak) r->cache_peak = r->cache_bytes;
  pthread_mutex_unlock(&r->lock);

  int rc = load_blocks(r, list, n);

  /* READY blocks are immutable and pinned: cut without the lock. */
  if (rc == 0 && cut_window(r, list, n, x, y, w, h, px) != 0) rc = -1;
  if (rc != 0) {
    asd_window_pixels_free(px);
    if (CPLGetLastErrorType() != CE_Failure)
      CPLError(CE_Failure, CPLE_FileIO, "cannot read window %d,%d %dx%d from its blocks", x, y, w, h);
  }

  pthread_mutex_lock(&r->lock);
  for (int k = 0; k < n; k++) {
    blk *b = list[k];
    b->pins--;
    if (b->pins == 0 && !b->in_set) blk_destroy(r, b);
  }
  enforce_cap(r);
  if (rc == 0) r->tiles++;
  pthread_mutex_unlock(&r->lock);
  VSIFree(list);
  return rc;
}
