/*
 * styles.c: default map styles for the detections and the tile-status layer.
 *
 * Why the utility styles its own output.  A GIS draws a new polygon layer
 * with one solid random fill.  With the tile-status layer on top, a user
 * opening the output for the first time sees a checkerboard hiding both the
 * raster and the detections, and a partial run looks exactly like a complete
 * one.  The output itself therefore says how it wants to be drawn, in the
 * places QGIS reads when it loads a layer:
 *
 *   - a GeoPackage: rows of its `layer_styles` table, the table QGIS (and
 *     the OGR provider of every QGIS since 2.x) reads and writes, with the
 *     same schema QGIS creates (styleQML for QGIS, styleSLD for SLD clients
 *     such as GeoServer), marked useAsDefault so the style applies as the
 *     layer is opened;
 *   - a one-layer file (GeoJSON, Shapefile, FlatGeobuf, CSV...): a QGIS style
 *     file beside it with the data file's base name (ships.geojson ->
 *     ships.qml), which QGIS loads as the layer's default style.
 *
 * What the styles say.  Detections are outlines (no fill: the image under
 * them stays visible), one colour per class, in a categorized renderer so
 * the legend lists the classes.  The colours are bright and saturated
 * (detections are mostly drawn over imagery); a class gets its colour from
 * its rank among the layer's classes sorted by name, so the same classes get
 * the same colours in every output and in the quicklook (the table is
 * shared through asd_styles_class_color).  Tiles are outlines categorized
 * by status: succeeded thin grey, skipped fainter and dotted, failed a thick
 * red outline over a translucent red fill, so that a gap in the detections
 * is visibly a failure, not an empty area.  The layer order (tiles below
 * detections) is the loader's business: a style cannot carry it.
 *
 * Never over a user's choice.  A style is only replaced when it is ours: in
 * layer_styles our rows carry styleName "asyncdetect" and are the layer's
 * default only when no other default row exists for it; a style file beside
 * a one-layer output is replaced only when it carries our marker comment.
 * `--config ASD_WRITE_STYLES NO` writes nothing.  A style that cannot be
 * written is a warning, never a failed run: the data is what matters.
 *
 * The classes are read back from the layer when it is complete (SELECT
 * DISTINCT on the class column), so appended and resumed outputs get a
 * legend covering everything in the layer, not only this run's classes.
 */
#include "styles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include "asyncdetect/asd_common.h"

#define STYLE_NAME "asyncdetect"
#define QML_MARKER "<!-- asyncdetect default style -->"
/* More categories than this make an unreadable legend; the rest of the
 * classes are drawn by no category (QGIS leaves them out) and a warning says so. */
#define MAX_CLASSES 256

/* Bright colours that read over dark and light imagery; no pure red, which
 * the tile style keeps for failures. */
static const unsigned char CLASS_COLORS[][3] = {
    {0, 229, 255},   /* cyan */
    {255, 214, 0},   /* yellow */
    {255, 64, 255},  /* magenta */
    {0, 230, 118},   /* green */
    {255, 145, 0},   /* orange */
    {41, 121, 255},  /* blue */
    {255, 128, 171}, /* pink */
    {198, 255, 0},   /* lime */
    {170, 0, 255},   /* purple */
    {255, 255, 255}, /* white */
    {0, 191, 165},   /* teal */
    {141, 110, 99},  /* brown */
};
#define N_CLASS_COLORS ((int)(sizeof(CLASS_COLORS) / sizeof(CLASS_COLORS[0])))

void asd_styles_class_color(int i, unsigned char rgb[3]) {
  if (i < 0) i = 0;
  memcpy(rgb, CLASS_COLORS[i % N_CLASS_COLORS], 3);
}

/* ------------------------------------------------------------------ QML */

/* One outline-and-fill symbol as QGIS 3 writes it (Option map and the older
 * prop list, so that QGIS 3.0 to today read it). */
typedef struct fill_def {
  const char *fill;          /* "r,g,b,a" */
  const char *fill_style;    /* "no", "solid"... */
  const char *outline;       /* "r,g,b,a" */
  const char *outline_style; /* "solid", "dot", "dash" */
  double width_mm;
} fill_def;

static void qml_symbol(asd_buf *b, int index, const fill_def *f) {
  const char *keys[] = {"color", "joinstyle", "outline_color", "outline_style", "outline_width", "outline_width_unit",
                        "style"};
  char width[32];
  snprintf(width, sizeof width, "%g", f->width_mm);
  const char *values[] = {f->fill, "miter", f->outline, f->outline_style, width, "MM", f->fill_style};
  asd_buf_appendf(b,
                  "      <symbol type=\"fill\" name=\"%d\" alpha=\"1\" clip_to_extent=\"1\" force_rhr=\"0\">\n"
                  "        <layer class=\"SimpleFill\" enabled=\"1\" locked=\"0\" pass=\"0\">\n"
                  "          <Option type=\"Map\">\n",
                  index);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    asd_buf_appendf(b, "            <Option name=\"%s\" type=\"QString\" value=\"%s\"/>\n", keys[i], values[i]);
  asd_buf_append_str(b, "          </Option>\n");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    asd_buf_appendf(b, "          <prop k=\"%s\" v=\"%s\"/>\n", keys[i], values[i]);
  asd_buf_append_str(b, "        </layer>\n      </symbol>\n");
}

static char *xml_escape(const char *s) { return CPLEscapeString(s ? s : "", -1, CPLES_XML); }

static void qml_begin(asd_buf *b, const char *attr) {
  asd_buf_appendf(b,
                  "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" QML_MARKER "\n"
                  "<qgis version=\"3.22.0\" styleCategories=\"Symbology\">\n"
                  "  <renderer-v2 type=\"categorizedSymbol\" attr=\"%s\" symbollevels=\"0\" enableorderby=\"0\" "
                  "forceraster=\"0\">\n",
                  attr);
}

static char *buf_take(asd_buf *b) {
  char *out = CPLStrdup(b->data ? (const char *)b->data : "");
  asd_buf_free(b);
  return out;
}

char *asd_styles_detections_qml(const char *const *classes, int n) {
  asd_buf b;
  asd_buf_init(&b);
  qml_begin(&b, "class");
  asd_buf_append_str(&b, "    <categories>\n");
  for (int i = 0; i < n; i++) {
    char *v = xml_escape(classes[i]);
    asd_buf_appendf(&b, "      <category render=\"true\" symbol=\"%d\" value=\"%s\" label=\"%s\"/>\n", i, v, v);
    CPLFree(v);
  }
  asd_buf_append_str(&b, "    </categories>\n    <symbols>\n");
  for (int i = 0; i < n; i++) {
    unsigned char c[3];
    asd_styles_class_color(i, c);
    char outline[32];
    snprintf(outline, sizeof outline, "%d,%d,%d,255", c[0], c[1], c[2]);
    const fill_def f = {"0,0,0,0", "no", outline, "solid", 0.5};
    qml_symbol(&b, i, &f);
  }
  asd_buf_append_str(&b, "    </symbols>\n  </renderer-v2>\n  <layerGeometryType>2</layerGeometryType>\n</qgis>\n");
  return buf_take(&b);
}

/* The tile statuses (asd_tile_state_name) and how each is drawn. */
typedef struct status_style {
  const char *status;
  const char *label;
  fill_def fill;
  const char *sld_stroke; /* #rrggbb */
  double sld_opacity;
  const char *sld_fill;   /* NULL: no fill */
  double sld_fill_opacity;
  const char *sld_dash;   /* NULL: solid */
} status_style;

static const status_style STATUS_STYLES[] = {
    {"failed", "failed", {"227,26,28,70", "solid", "227,26,28,255", "solid", 0.8}, "#e31a1c", 1.0, "#e31a1c", 0.27,
     NULL},
    {"succeeded", "succeeded", {"0,0,0,0", "no", "160,160,160,180", "solid", 0.2}, "#a0a0a0", 0.7, NULL, 0, NULL},
    {"skipped", "skipped", {"0,0,0,0", "no", "200,200,200,90", "dot", 0.15}, "#c8c8c8", 0.35, NULL, 0, "1 3"},
};
#define N_STATUS ((int)(sizeof(STATUS_STYLES) / sizeof(STATUS_STYLES[0])))

char *asd_styles_tiles_qml(void) {
  asd_buf b;
  asd_buf_init(&b);
  qml_begin(&b, "status");
  asd_buf_append_str(&b, "    <categories>\n");
  for (int i = 0; i < N_STATUS; i++)
    asd_buf_appendf(&b, "      <category render=\"true\" symbol=\"%d\" value=\"%s\" label=\"%s\"/>\n", i,
                    STATUS_STYLES[i].status, STATUS_STYLES[i].label);
  asd_buf_append_str(&b, "    </categories>\n    <symbols>\n");
  for (int i = 0; i < N_STATUS; i++) qml_symbol(&b, i, &STATUS_STYLES[i].fill);
  asd_buf_append_str(&b, "    </symbols>\n  </renderer-v2>\n  <layerGeometryType>2</layerGeometryType>\n</qgis>\n");
  return buf_take(&b);
}

/* ------------------------------------------------------------------ SLD */

static void sld_begin(asd_buf *b, const char *layer) {
  char *name = xml_escape(layer);
  asd_buf_appendf(b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<StyledLayerDescriptor xmlns=\"http://www.opengis.net/sld\" "
                  "xmlns:ogc=\"http://www.opengis.net/ogc\" xmlns:se=\"http://www.opengis.net/se\" "
                  "xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
                  "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" version=\"1.1.0\" "
                  "xsi:schemaLocation=\"http://www.opengis.net/sld "
                  "http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd\">\n"
                  "  <NamedLayer>\n    <se:Name>%s</se:Name>\n    <UserStyle>\n      <se:Name>" STYLE_NAME
                  "</se:Name>\n      <se:FeatureTypeStyle>\n",
                  name);
  CPLFree(name);
}

static void sld_rule(asd_buf *b, const char *field, const char *value, const char *stroke, double opacity,
                     double width_px, const char *dash, const char *fill, double fill_opacity) {
  char *v = xml_escape(value);
  asd_buf_appendf(b,
                  "        <se:Rule>\n          <se:Name>%s</se:Name>\n"
                  "          <se:Description><se:Title>%s</se:Title></se:Description>\n"
                  "          <ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>%s</ogc:PropertyName>"
                  "<ogc:Literal>%s</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>\n"
                  "          <se:PolygonSymbolizer>\n",
                  v, v, field, v);
  CPLFree(v);
  if (fill)
    asd_buf_appendf(b,
                    "            <se:Fill><se:SvgParameter name=\"fill\">%s</se:SvgParameter>"
                    "<se:SvgParameter name=\"fill-opacity\">%.2f</se:SvgParameter></se:Fill>\n",
                    fill, fill_opacity);
  asd_buf_appendf(b,
                  "            <se:Stroke>\n"
                  "              <se:SvgParameter name=\"stroke\">%s</se:SvgParameter>\n"
                  "              <se:SvgParameter name=\"stroke-opacity\">%.2f</se:SvgParameter>\n"
                  "              <se:SvgParameter name=\"stroke-width\">%g</se:SvgParameter>\n",
                  stroke, opacity, width_px);
  if (dash) asd_buf_appendf(b, "              <se:SvgParameter name=\"stroke-dasharray\">%s</se:SvgParameter>\n", dash);
  asd_buf_append_str(b, "            </se:Stroke>\n          </se:PolygonSymbolizer>\n        </se:Rule>\n");
}

static const char SLD_END[] = "      </se:FeatureTypeStyle>\n    </UserStyle>\n  </NamedLayer>\n</StyledLayerDescriptor>\n";

char *asd_styles_detections_sld(const char *layer, const char *const *classes, int n) {
  asd_buf b;
  asd_buf_init(&b);
  sld_begin(&b, layer);
  for (int i = 0; i < n; i++) {
    unsigned char c[3];
    asd_styles_class_color(i, c);
    char hex[8];
    snprintf(hex, sizeof hex, "#%02x%02x%02x", c[0], c[1], c[2]);
    sld_rule(&b, "class", classes[i], hex, 1.0, 2, NULL, NULL, 0);
  }
  asd_buf_append_str(&b, SLD_END);
  return buf_take(&b);
}

char *asd_styles_tiles_sld(const char *layer) {
  asd_buf b;
  asd_buf_init(&b);
  sld_begin(&b, layer);
  for (int i = 0; i < N_STATUS; i++) {
    const status_style *s = &STATUS_STYLES[i];
    /* QGIS's SLD export: 1 mm = 3.78 px (96 dpi). */
    sld_rule(&b, "status", s->status, s->sld_stroke, s->sld_opacity, s->fill.width_mm * 3.78, s->sld_dash, s->sld_fill,
             s->sld_fill_opacity);
  }
  asd_buf_append_str(&b, SLD_END);
  return buf_take(&b);
}

/* ------------------------------------------------------------------ classes */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **asd_styles_layer_classes(GDALDatasetH ds, OGRLayerH lyr, int *n) {
  *n = 0;
  OGRFeatureDefnH defn = OGR_L_GetLayerDefn(lyr);
  if (OGR_FD_GetFieldIndex(defn, "class") < 0) return NULL;
  char *name = CPLEscapeString(OGR_L_GetName(lyr), -1, CPLES_SQLI);
  char *sql = CPLStrdup(CPLSPrintf("SELECT DISTINCT \"class\" FROM \"%s\"", name));
  CPLFree(name);
  OGRLayerH res = GDALDatasetExecuteSQL(ds, sql, NULL, NULL);
  CPLFree(sql);
  if (!res) return NULL;
  char **list = NULL;
  int count = 0, dropped = 0;
  OGRFeatureH f;
  while ((f = OGR_L_GetNextFeature(res)) != NULL) {
    if (OGR_F_IsFieldSetAndNotNull(f, 0) && OGR_F_GetFieldAsString(f, 0)[0]) {
      if (count < MAX_CLASSES) {
        list = CSLAddString(list, OGR_F_GetFieldAsString(f, 0));
        count++;
      } else {
        dropped++;
      }
    }
    OGR_F_Destroy(f);
  }
  GDALDatasetReleaseResultSet(ds, res);
  if (dropped)
    CPLError(CE_Warning, CPLE_AppDefined,
             "styles: the detections have more than %d classes; the default style colours the first %d (by name) only",
             MAX_CLASSES, MAX_CLASSES);
  if (count > 1) qsort(list, (size_t)count, sizeof(char *), cmp_str);
  *n = count;
  return list;
}

/* ------------------------------------------------------------------ GeoPackage layer_styles */

static int is_gpkg(GDALDatasetH ds) {
  GDALDriverH d = ds ? GDALGetDatasetDriver(ds) : NULL;
  return d && EQUAL(GDALGetDriverShortName(d), "GPKG");
}

/* The layer_styles table, created with QGIS's schema (qgsogrprovider.cpp,
 * saveStyle) when missing. */
static OGRLayerH styles_table(GDALDatasetH ds) {
  OGRLayerH t = GDALDatasetGetLayerByName(ds, "layer_styles");
  if (t) return t;
  char **opts = CSLSetNameValue(NULL, "FID", "id");
  t = GDALDatasetCreateLayer(ds, "layer_styles", NULL, wkbNone, opts);
  CSLDestroy(opts);
  if (!t) return NULL;
  static const struct {
    const char *name;
    OGRFieldType type;
    int width;
  } fields[] = {{"f_table_catalog", OFTString, 256},
                {"f_table_schema", OFTString, 256},
                {"f_table_name", OFTString, 256},
                {"f_geometry_column", OFTString, 256},
                {"styleName", OFTString, 30},
                {"styleQML", OFTString, 0},
                {"styleSLD", OFTString, 0},
                {"useAsDefault", OFTInteger, 0},
                {"description", OFTString, 0},
                {"owner", OFTString, 30},
                {"ui", OFTString, 30},
                {"update_time", OFTDateTime, 0}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    OGRFieldDefnH fd = OGR_Fld_Create(fields[i].name, fields[i].type);
    if (fields[i].width) OGR_Fld_SetWidth(fd, fields[i].width);
    if (fields[i].type == OFTInteger) OGR_Fld_SetSubType(fd, OFSTBoolean);
    if (fields[i].type == OFTDateTime) OGR_Fld_SetDefault(fd, "CURRENT_TIMESTAMP");
    OGRErr err = OGR_L_CreateField(t, fd, TRUE);
    OGR_Fld_Destroy(fd);
    if (err != OGRERR_NONE) return NULL;
  }
  return t;
}

/* Whether a default style row that is not ours exists for the layer. */
static int user_default_exists(OGRLayerH t, const char *table, const char *geom) {
  char *tq = CPLEscapeString(table, -1, CPLES_SQL);
  char *gq = CPLEscapeString(geom, -1, CPLES_SQL);
  char *filter = CPLStrdup(CPLSPrintf("f_table_name = '%s' AND f_geometry_column = '%s' AND useAsDefault = 1 "
                                      "AND styleName <> '" STYLE_NAME "'",
                                      tq, gq));
  CPLFree(tq);
  CPLFree(gq);
  OGR_L_SetAttributeFilter(t, filter);
  CPLFree(filter);
  OGR_L_ResetReading(t);
  OGRFeatureH f = OGR_L_GetNextFeature(t);
  int found = f != NULL;
  if (f) OGR_F_Destroy(f);
  OGR_L_SetAttributeFilter(t, NULL);
  return found;
}

/* Inserts or replaces our style row of one layer. */
static int gpkg_put_style(GDALDatasetH ds, OGRLayerH lyr, const char *qml, const char *sld, const char *description) {
  OGRLayerH t = styles_table(ds);
  if (!t) return -1;
  const char *table = OGR_L_GetName(lyr);
  const char *geom = OGR_L_GetGeometryColumn(lyr);
  if (!geom) geom = "";
  const int as_default = !user_default_exists(t, table, geom);

  char *tq = CPLEscapeString(table, -1, CPLES_SQL);
  char *gq = CPLEscapeString(geom, -1, CPLES_SQL);
  char *filter = CPLStrdup(
      CPLSPrintf("f_table_name = '%s' AND f_geometry_column = '%s' AND styleName = '" STYLE_NAME "'", tq, gq));
  CPLFree(tq);
  CPLFree(gq);
  OGR_L_SetAttributeFilter(t, filter);
  CPLFree(filter);
  OGR_L_ResetReading(t);
  OGRFeatureH f = OGR_L_GetNextFeature(t);
  OGR_L_SetAttributeFilter(t, NULL);
  const int is_new = f == NULL;
  OGRFeatureDefnH defn = OGR_L_GetLayerDefn(t);
  if (is_new) {
    f = OGR_F_Create(defn);
    OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "f_table_catalog"), "");
    OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "f_table_schema"), "");
    OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "f_table_name"), table);
    OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "f_geometry_column"), geom);
    OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "styleName"), STYLE_NAME);
    OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "owner"), "");
  }
  OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "styleQML"), qml);
  OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "styleSLD"), sld);
  OGR_F_SetFieldInteger(f, OGR_FD_GetFieldIndex(defn, "useAsDefault"), as_default);
  OGR_F_SetFieldString(f, OGR_FD_GetFieldIndex(defn, "description"), description);
  /* QGIS orders non-default styles by update_time; an explicit value keeps
   * the row current when it is updated, not only when it is created. */
  int ti = OGR_FD_GetFieldIndex(defn, "update_time");
  if (ti >= 0) {
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    OGR_F_SetFieldDateTime(f, ti, tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min,
                           tmv.tm_sec, 100);
  }
  OGRErr err = is_new ? OGR_L_CreateFeature(t, f) : OGR_L_SetFeature(t, f);
  OGR_F_Destroy(f);
  return err == OGRERR_NONE ? 0 : -1;
}

/* ------------------------------------------------------------------ style files */

/* ships.geojson -> ships.qml, as QGIS's QgsMapLayer::styleURI names it. */
static char *qml_path_for(const char *data_path) {
  return CPLStrdup(CPLResetExtension(data_path, "qml"));
}

/* Writes text to path unless path exists and is not ours. */
static int write_qml_file(const char *path, const char *qml) {
  VSIStatBufL st;
  if (VSIStatL(path, &st) == 0) {
    VSILFILE *in = VSIFOpenL(path, "rb");
    char head[256] = {0};
    if (in) {
      VSIFReadL(head, 1, sizeof head - 1, in);
      VSIFCloseL(in);
    }
    if (!strstr(head, QML_MARKER)) return 0; /* the user's own style stays */
  }
  VSILFILE *out = VSIFOpenL(path, "wb");
  if (!out) {
    CPLError(CE_Warning, CPLE_FileIO, "styles: cannot write the style file '%s'", path);
    return -1;
  }
  size_t len = strlen(qml);
  int ok = VSIFWriteL(qml, 1, len, out) == len;
  if (VSIFCloseL(out) != 0) ok = 0;
  if (!ok) CPLError(CE_Warning, CPLE_FileIO, "styles: cannot write the style file '%s'", path);
  return ok ? 0 : -1;
}

/* Whether a dataset is one layer in one file (a style file beside it is
 * where QGIS looks); a directory of shapefiles or a database is not.  The
 * file may not exist yet: FlatGeobuf writes it when it is closed. */
static int one_layer_regular_file(GDALDatasetH ds) {
  if (!ds || GDALDatasetGetLayerCount(ds) != 1) return 0;
  const char *path = GDALGetDescription(ds);
  VSIStatBufL st;
  if (!path || !path[0] || STARTS_WITH(path, "/vsi") || (VSIStatL(path, &st) == 0 && !VSI_ISREG(st.st_mode)))
    return 0;
  GDALDriverH d = GDALGetDatasetDriver(ds);
  const char *drv = d ? GDALGetDriverShortName(d) : "";
  return EQUAL(drv, "GeoJSON") || EQUAL(drv, "GeoJSONSeq") || EQUAL(drv, "ESRI Shapefile") || EQUAL(drv, "FlatGeobuf") ||
         EQUAL(drv, "CSV");
}

/* ------------------------------------------------------------------ job */

struct asd_styles_job {
  char *det_path;   /* one-layer detections file to style after close, or NULL */
  char *det_layer;
  char *tiles_path; /* one-layer tiles file, or NULL */
};

static int styles_enabled(void) { return CPLTestBool(CPLGetConfigOption("ASD_WRITE_STYLES", "YES")); }

static void style_gpkg_detections(GDALDatasetH ds, OGRLayerH det) {
  int n = 0;
  char **classes = asd_styles_layer_classes(ds, det, &n);
  char *qml = asd_styles_detections_qml((const char *const *)classes, n);
  char *sld = asd_styles_detections_sld(OGR_L_GetName(det), (const char *const *)classes, n);
  if (gpkg_put_style(ds, det, qml, sld, "gdal_asyncdetect: detections, outlines coloured by class") != 0)
    CPLError(CE_Warning, CPLE_AppDefined, "styles: cannot write the default style of layer '%s' (%s)",
             OGR_L_GetName(det), CPLGetLastErrorMsg());
  CPLFree(qml);
  CPLFree(sld);
  CSLDestroy(classes);
}

static void style_gpkg_tiles(GDALDatasetH ds, OGRLayerH tiles) {
  char *qml = asd_styles_tiles_qml();
  char *sld = asd_styles_tiles_sld(OGR_L_GetName(tiles));
  if (gpkg_put_style(ds, tiles, qml, sld, "gdal_asyncdetect: tiles by status (failed red, skipped faint)") != 0)
    CPLError(CE_Warning, CPLE_AppDefined, "styles: cannot write the default style of layer '%s' (%s)",
             OGR_L_GetName(tiles), CPLGetLastErrorMsg());
  CPLFree(qml);
  CPLFree(sld);
}

asd_styles_job *asd_styles_begin(GDALDatasetH det_ds, OGRLayerH det, GDALDatasetH tiles_ds, OGRLayerH tiles) {
  if (!styles_enabled()) return NULL;
  asd_styles_job *job = CPLCalloc(1, sizeof(*job));
  if (det_ds && det) {
    if (is_gpkg(det_ds))
      style_gpkg_detections(det_ds, det);
    else if (one_layer_regular_file(det_ds)) {
      job->det_path = CPLStrdup(GDALGetDescription(det_ds));
      job->det_layer = CPLStrdup(OGR_L_GetName(det));
    }
  }
  if (tiles_ds && tiles) {
    if (is_gpkg(tiles_ds))
      style_gpkg_tiles(tiles_ds, tiles);
    else if (one_layer_regular_file(tiles_ds))
      job->tiles_path = CPLStrdup(GDALGetDescription(tiles_ds));
  }
  if (!job->det_path && !job->tiles_path) {
    CPLFree(job);
    return NULL;
  }
  return job;
}

/* The classes of a closed one-layer file, read through a fresh handle. */
static char **file_classes(const char *path, const char *layer, int *n) {
  *n = 0;
  GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
  if (!ds) return NULL;
  OGRLayerH lyr = GDALDatasetGetLayerByName(ds, layer);
  if (!lyr) lyr = GDALDatasetGetLayer(ds, 0);
  char **classes = lyr ? asd_styles_layer_classes(ds, lyr, n) : NULL;
  GDALClose(ds);
  return classes;
}

void asd_styles_finish(asd_styles_job *job, int ok) {
  if (!job) return;
  VSIStatBufL st;
  if (job->det_path && VSIStatL(job->det_path, &st) != 0) ok = 0;
  if (ok && job->det_path) {
    int n = 0;
    char **classes = file_classes(job->det_path, job->det_layer, &n);
    char *qml = asd_styles_detections_qml((const char *const *)classes, n);
    char *path = qml_path_for(job->det_path);
    write_qml_file(path, qml);
    CPLFree(path);
    CPLFree(qml);
    CSLDestroy(classes);
  }
  if (ok && job->tiles_path) {
    char *qml = asd_styles_tiles_qml();
    char *path = qml_path_for(job->tiles_path);
    write_qml_file(path, qml);
    CPLFree(path);
    CPLFree(qml);
  }
  CPLFree(job->det_path);
  CPLFree(job->det_layer);
  CPLFree(job->tiles_path);
  CPLFree(job);
}
