/*
 * styles.h: default map styles of the utility's two layers (internal, not
 * part of the public API).
 *
 * The writer calls asd_styles_begin() just before it closes its datasets and
 * asd_styles_finish() just after: a GeoPackage gets its styles as rows of its
 * layer_styles table (in the writer's last transaction), a one-layer file
 * (GeoJSON, Shapefile, FlatGeobuf...) a QGIS style file beside it
 * (ships.geojson -> ships.qml), written once the data file is complete.
 * styles.c explains the choices (colours, what is never overwritten).
 *
 * The colour table is shared with the quicklook, so that a class has the
 * same colour in the PNG and in QGIS.
 */
#ifndef ASD_TILER_STYLES_H
#define ASD_TILER_STYLES_H

#include <gdal.h>
#include <ogr_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_styles_job asd_styles_job;

/* Styles the detections layer det of det_ds and the tile-status layer tiles
 * of tiles_ds (either may be NULL).  GeoPackage rows are written at once
 * through the open datasets; what has to wait for the files to be closed is
 * remembered.  Never fails the caller: a style that cannot be written is a
 * CE_Warning.  Returns NULL when nothing is left for asd_styles_finish(). */
asd_styles_job *asd_styles_begin(GDALDatasetH det_ds, OGRLayerH det, GDALDatasetH tiles_ds, OGRLayerH tiles);

/* After the datasets are closed: writes the style files beside one-layer
 * outputs (when ok is non-zero), then frees the job.  NULL is a no-op. */
void asd_styles_finish(asd_styles_job *job, int ok);

/* The i-th class colour (i >= 0, cycling), as 0-255 red, green, blue.
 * Classes are numbered in their sorted order (strcmp). */
void asd_styles_class_color(int i, unsigned char rgb[3]);

/* The distinct non-empty values of the layer's "class" column, sorted (the
 * order that gives each class its colour); NULL and *n = 0 when there is
 * none.  CSLDestroy the list. */
char **asd_styles_layer_classes(GDALDatasetH ds, OGRLayerH lyr, int *n);

/* The QGIS style (QML) and SLD of the detections layer for the given
 * classes (sorted, n >= 0), and of the tile-status layer; CPLFree them. */
char *asd_styles_detections_qml(const char *const *classes, int n);
char *asd_styles_detections_sld(const char *layer, const char *const *classes, int n);
char *asd_styles_tiles_qml(void);
char *asd_styles_tiles_sld(const char *layer);

#ifdef __cplusplus
}
#endif

#endif
