/*
 * blockread.h: block-aligned reads for the encoder (internal, not part of
 * the public API).
 *
 * A block reader serves tile windows out of the source's native blocks:
 * each block a tile needs is read once from the source (a RasterIO of that
 * block's exact window), kept in memory while tiles still need it, and the
 * tile is cut from the blocks in memory.  blockread.c explains the rules
 * (when blocks are freed, the memory cap, the fallback); encode.c owns the
 * reader and hands it its pool of dataset handles.
 */
#ifndef ASD_TILER_BLOCKREAD_H
#define ASD_TILER_BLOCKREAD_H

#include <stddef.h>

#include <gdal.h>

#include "asyncdetect/asd_encode.h"
#include "tiler_gdal_internal.h"

/* The encoder's handle pool, lent to the reader: borrow() returns a
 * handle for the calling thread's exclusive use (NULL after CPLError),
 * give_back() returns it. */
typedef struct asd_handle_hooks {
  GDALDatasetH (*borrow)(void *ctx);
  void (*give_back)(void *ctx, GDALDatasetH h);
  void *ctx;
} asd_handle_hooks;

typedef struct asd_block_reader asd_block_reader;

/* Makes a reader for the given bands (1-based) of ds, delivering values of
 * type read_dt (GDT_Byte or GDT_Float64, as asd_read_window does), with
 * at most cache_max bytes of blocks held (see blockread.c for when the cap
 * may be exceeded).  ds is only inspected here (sizes, block size, types,
 * masks); reads go through the hooks.  NULL after CPLError. */
asd_block_reader *asd_block_reader_new(GDALDatasetH ds, const int *bands, int nbands, GDALDataType read_dt,
                                       size_t cache_max, const asd_handle_hooks *hooks);
void asd_block_reader_free(asd_block_reader *r);

/* Fills px exactly as asd_read_window(ds, bands, nbands, x, y, w, h,
 * read_dt, px) would, from blocks.  Thread-safe.  Returns 0; 1 when the
 * window is not served from blocks (the blocks under it alone exceed the
 * cap, or it lies outside the image) and the caller must read the window
 * itself; -1 after CPLError on a read error. */
int asd_block_reader_read(asd_block_reader *r, int x, int y, int w, int h, asd_window_pixels *px);

/* Copies the block counters into the block_* / cache fields of s. */
void asd_block_reader_stats(asd_block_reader *r, asd_encoder_read_stats *s);

/* Byte size of the blocks that the window (x, y, w, h) covers: what the
 * reader must hold at once to serve it. */
size_t asd_block_reader_window_bytes(const asd_block_reader *r, int x, int y, int w, int h);

/* Bytes per pixel the reader holds: the selected bands in the source's
 * type plus one byte per mask plane. */
size_t asd_block_reader_pixel_bytes(const asd_block_reader *r);

#endif
