/*
 * asd_georef.h: image pixels -> coordinates in the output SRS.
 *
 * A georeferencer wraps GDALCreateGenImgProjTransformer2 over the source
 * image, so the numbers are the ones GDAL's own tools (gdaltransform,
 * gdalwarp) produce: geotransform, GCPs (polynomial, or thin plate spline),
 * RPCs (with RPC_HEIGHT or an RPC_DEM) and geolocation arrays are all
 * handled by GDAL.  The method is chosen as follows unless the caller
 * forces one with METHOD=... in transformer_options:
 *   RPC metadata present      -> METHOD=RPC (the sensor model is the
 *                                accurate one; a NITF's IGEOLO corners are not)
 *   GEOLOCATION metadata      -> METHOD=GEOLOC_ARRAY
 *   a real geotransform       -> METHOD=GEOTRANSFORM
 *   GCPs                      -> METHOD=GCP_POLYNOMIAL (also when the only
 *                                geotransform is the default (0,1,0,0,0,1) or
 *                                (0,1,0,0,0,-1), which is no georeferencing)
 * The output SRS is EPSG:4326 with longitude first (traditional GIS order,
 * OAMS_TRADITIONAL_GIS_ORDER) unless t_srs says otherwise.
 *
 * An image without any georeferencing gives pixel-space output: geometries
 * stay in image pixels (x right, y down), with a CPLError warning saying so,
 * and asd_georef_is_pixel_space() returns 1 so writers can leave the SRS
 * unset.
 *
 * Boxes and polygons: when the transform is not affine (RPC, GCP TPS,
 * geolocation arrays, or a reprojection), straight edges in the image are
 * curves on the ground, so polygon edges are densified (a vertex every
 * densify_pixels along each edge) before transforming.
 *
 * Limited domains: a shape whose pixels do not all transform (the corners of
 * a geostationary full disk, a diverging polynomial) is trimmed to its
 * transformable part (asd_georef_ring_ex: ASD_GEOREF_TRIMMED); only a shape
 * with no transformable vertex gives no geometry (ASD_GEOREF_FAILED).
 *
 * A georeferencer is safe to use from several threads (calls are
 * serialised with a mutex; GDAL transformers keep caches).
 */
#ifndef ASD_GEOREF_H
#define ASD_GEOREF_H

#include <stddef.h>

#include "asyncdetect/asd_export.h"

#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_georef_options {
  const char *t_srs;          /* output SRS (any OSRSetFromUserInput string); NULL = EPSG:4326 */
  char **transformer_options; /* extra GDALCreateGenImgProjTransformer2 options (CSL):
                                 METHOD=, RPC_HEIGHT=, RPC_DEM=, MAX_GCP_ORDER=, ... */
  double densify_pixels;      /* vertex spacing on non-affine edges (default 8, <= 0: no densification) */
  int max_points_per_edge;    /* cap on vertices added per edge (default 64) */
} asd_georef_options;

ASD_API void asd_georef_options_init(asd_georef_options *o);

typedef struct asd_georef asd_georef;

/* Builds the transformer for ds (which must stay open while the georef is
 * in use).  NULL after CPLError if the transformer cannot be built from the
 * georeferencing the image has (or t_srs is invalid).  An image without any
 * georeferencing is not an error: see asd_georef_is_pixel_space. */
ASD_API asd_georef *asd_georef_new(GDALDatasetH ds, const asd_georef_options *o);
ASD_API void asd_georef_free(asd_georef *g);

ASD_API int asd_georef_is_pixel_space(const asd_georef *g);
/* 1 if image pixels map to the output SRS by an affine transform (no densification needed). */
ASD_API int asd_georef_is_affine(const asd_georef *g);
/* "GEOTRANSFORM", "GCP_POLYNOMIAL", "GCP_TPS", "RPC", "GEOLOC_ARRAY" or "PIXEL". */
ASD_API const char *asd_georef_method(const asd_georef *g);
/* The output SRS (owned by g; NULL in pixel space).  Axis mapping is
 * traditional GIS order. */
ASD_API OGRSpatialReferenceH asd_georef_srs(const asd_georef *g);

/* One line naming the method and the output SRS, e.g. "GCP_POLYNOMIAL ->
 * EPSG:4326 (12 GCPs; the default geotransform next to them ignored)" or
 * "none (image pixel coordinates)". */
ASD_API void asd_georef_describe(const asd_georef *g, char *out, size_t size);
/* Why a shape could not be georeferenced (a sentence fragment). */
ASD_API const char *asd_georef_why(const asd_georef *g);

/* Transforms n image-pixel points (x = column, y = row, pixel corners at
 * integers, as GDAL) in place to the output SRS.  Returns the number of
 * points that failed (0 = all good); a failed point is left unchanged. */
ASD_API int asd_georef_transform(asd_georef *g, int n, double *x, double *y);

/* Builds an output-SRS geometry from an image-pixel ring (n points, closed
 * or not): a densified polygon.  n == 1 gives a point, n == 2 a line.  NULL
 * if the transform fails.  The caller owns the result (OGR_G_DestroyGeometry). */
ASD_API OGRGeometryH asd_georef_ring(asd_georef *g, const double *xy, int n);
/* Same for the box [minx, miny, maxx, maxy] in image pixels. */
ASD_API OGRGeometryH asd_georef_box(asd_georef *g, double minx, double miny, double maxx, double maxy);

typedef enum asd_georef_status {
  ASD_GEOREF_OK = 0,      /* every vertex transformed */
  ASD_GEOREF_TRIMMED = 1, /* part of the shape is outside the transform's domain: the rest is returned */
  ASD_GEOREF_FAILED = 2   /* nothing transformable: NULL */
} asd_georef_status;

/* asd_georef_ring / asd_georef_box that repair instead of failing: a
 * polygon with some vertices outside the transform's domain is trimmed to
 * the transformable part (the crossings found by bisection, joined by the
 * straight pixel segment between them, densified).  *status (may be NULL)
 * says which case it was. */
ASD_API OGRGeometryH asd_georef_ring_ex(asd_georef *g, const double *xy, int n, asd_georef_status *status);
ASD_API OGRGeometryH asd_georef_box_ex(asd_georef *g, double minx, double miny, double maxx, double maxy,
                               asd_georef_status *status);

#ifdef __cplusplus
}
#endif

#endif /* ASD_GEOREF_H */
