/*
 * rpcfit.c: RPC00B coefficients for a north-up UTM image.
 *
 * scene_rpc.ntf must be georeferenced by RPCs alone, yet agree with the
 * GeoTIFF's geotransform to well within a pixel.  The exact mapping is
 * lon/lat -> UTM (PROJ, through the callback) -> pixel (the affine
 * geotransform).  Over a 1.5 km x 1 km footprint that mapping is smooth and
 * nearly affine, so the RPC form with cubic numerators and a denominator
 * fixed at 1 represents it to a tiny fraction of a pixel; with the
 * denominator fixed the fit is *linear* least squares, which needs no
 * iteration and no starting guess.
 *
 * The fit uses the RPC00B normalisation: offsets and scales are first
 * rounded to what the TRE's fixed-width fields can hold (integer line and
 * sample offsets/scales, 4 decimals of degrees, integer metres), then the
 * 20 numerator coefficients of line and of sample are fitted to a 3-D grid
 * of 21 x 21 longitudes/latitudes (5 % beyond the image) x 5 heights, and
 * finally rounded to the TRE's 12-character +d.ddddddE+d form.  The
 * residuals are measured with the *rounded* coefficients, on the fitting
 * grid and on an independent, offset, denser check grid, so the figure
 * reported is the error of the model actually written.  The image is an
 * orthoimage (no terrain displacement), so the exact mapping ignores
 * height and the fitted height terms come out as zero.
 *
 * Pixel convention: GDAL's RPC transformer treats the RPC line/sample as
 * the position of pixel *centres* (line 0, sample 0 is the centre of the
 * first pixel) and adds half a pixel to reach its corner convention, so the
 * fit targets corner-convention coordinates minus 0.5.
 */
#include "samples.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT 20
#define RPC_CENTRE_SHIFT (-0.5)

/* RPC00B term order: 1 L P H LP LH PH L^2 P^2 H^2 PLH L^3 LP^2 LH^2 L^2P P^3 PH^2 L^2H P^2H H^3,
 * with L = normalised longitude, P = latitude, H = height. */
static void terms(double L, double P, double H, double t[NT]) {
  t[0] = 1; t[1] = L; t[2] = P; t[3] = H; t[4] = L * P; t[5] = L * H; t[6] = P * H;
  t[7] = L * L; t[8] = P * P; t[9] = H * H; t[10] = P * L * H; t[11] = L * L * L;
  t[12] = L * P * P; t[13] = L * H * H; t[14] = L * L * P; t[15] = P * P * P;
  t[16] = P * H * H; t[17] = L * L * H; t[18] = P * P * H; t[19] = H * H * H;
}

/* Gaussian elimination with partial pivoting on an n x n system. */
static int solve(int n, double *A, double *b) {
  for (int k = 0; k < n; k++) {
    int p = k;
    for (int i = k + 1; i < n; i++)
      if (fabs(A[i * n + k]) > fabs(A[p * n + k])) p = i;
    if (fabs(A[p * n + k]) < 1e-300) return -1;
    if (p != k) {
      for (int j = 0; j < n; j++) {
        double tmp = A[k * n + j]; A[k * n + j] = A[p * n + j]; A[p * n + j] = tmp;
      }
      double tmp = b[k]; b[k] = b[p]; b[p] = tmp;
    }
    for (int i = k + 1; i < n; i++) {
      double f = A[i * n + k] / A[k * n + k];
      for (int j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
      b[i] -= f * b[k];
    }
  }
  for (int k = n - 1; k >= 0; k--) {
    double sum = b[k];
    for (int j = k + 1; j < n; j++) sum -= A[k * n + j] * b[j];
    b[k] = sum / A[k * n + k];
  }
  return 0;
}

/* The TRE holds a coefficient as exactly 12 characters: sign, one digit,
 * point, six digits, 'E', exponent sign, one exponent digit. */
void rpc_format_coeff(double v, char out[16]) {
  if (v == 0.0 || fabs(v) < 1e-9) {
    snprintf(out, 16, "+0.000000E+0");
    return;
  }
  int e = (int)floor(log10(fabs(v)));
  double m = v / pow(10.0, e);
  /* Rounding the mantissa can carry into a new digit (9.9999997 -> 10). */
  double mr = round(m * 1e6) / 1e6;
  if (fabs(mr) >= 10.0) { e += 1; m = v / pow(10.0, e); mr = round(m * 1e6) / 1e6; }
  if (e > 9) e = 9;     /* cannot happen for normalised coefficients */
  if (e < -9) { snprintf(out, 16, "+0.000000E+0"); return; }
  snprintf(out, 16, "%+.6fE%c%d", mr, e < 0 ? '-' : '+', abs(e));
}

static double round_coeff(double v) {
  char buf[16];
  rpc_format_coeff(v, buf);
  return strtod(buf, NULL);
}

static double eval(const double c[NT], const double t[NT]) {
  double s = 0;
  for (int i = 0; i < NT; i++) s += c[i] * t[i];
  return s;
}

static int residuals(const asd_rpc *rpc, int n, double margin, double h_amp, double lon_min, double lon_max,
                     double lat_min, double lat_max, asd_ll_to_pixel_fn fn, void *ctx, double *max_err,
                     double *rms) {
  double mx = 0, ss = 0;
  long cnt = 0;
  double dlon = lon_max - lon_min, dlat = lat_max - lat_min;
  for (int k = 0; k < 5; k++) {
    double h = h_amp * (k - 2) / 2.0;
    for (int j = 0; j < n; j++) {
      for (int i = 0; i < n; i++) {
        double lon = lon_min - margin * dlon + (1 + 2 * margin) * dlon * (i + 0.5 * (margin == 0)) / (n - 1);
        double lat = lat_min - margin * dlat + (1 + 2 * margin) * dlat * (j + 0.5 * (margin == 0)) / (n - 1);
        double px, py;
        if (fn(ctx, lon, lat, &px, &py) != 0) return -1;
        double t[NT];
        terms((lon - rpc->long_off) / rpc->long_scale, (lat - rpc->lat_off) / rpc->lat_scale,
              (h - rpc->height_off) / rpc->height_scale, t);
        double line = eval(rpc->line_num, t) / eval(rpc->line_den, t) * rpc->line_scale + rpc->line_off;
        double samp = eval(rpc->samp_num, t) / eval(rpc->samp_den, t) * rpc->samp_scale + rpc->samp_off;
        double ex = samp - (px + RPC_CENTRE_SHIFT), ey = line - (py + RPC_CENTRE_SHIFT);
        double e = sqrt(ex * ex + ey * ey);
        if (e > mx) mx = e;
        ss += e * e;
        cnt++;
      }
    }
  }
  *max_err = mx;
  if (rms) *rms = sqrt(ss / (double)cnt);
  return 0;
}

int rpc_fit(asd_rpc *rpc, double lon_min, double lon_max, double lat_min, double lat_max,
            asd_ll_to_pixel_fn fn, void *ctx) {
  enum { NG = 21, NH = 5 };
  const double margin = 0.05;
  memset(rpc, 0, sizeof(*rpc));
  rpc->line_off = SCENE_H / 2;
  rpc->samp_off = SCENE_W / 2;
  rpc->line_scale = SCENE_H / 2;
  rpc->samp_scale = SCENE_W / 2;
  rpc->lat_off = round(0.5 * (lat_min + lat_max) * 1e4) / 1e4;
  rpc->long_off = round(0.5 * (lon_min + lon_max) * 1e4) / 1e4;
  rpc->lat_scale = ceil((0.5 * (lat_max - lat_min) * (1 + 2 * margin) + 1e-4) * 1e4) / 1e4;
  rpc->long_scale = ceil((0.5 * (lon_max - lon_min) * (1 + 2 * margin) + 1e-4) * 1e4) / 1e4;
  rpc->height_off = 0;
  rpc->height_scale = 500;
  rpc->line_den[0] = 1;
  rpc->samp_den[0] = 1;

  double AtA[NT * NT], bl[NT], bs[NT];
  memset(AtA, 0, sizeof(AtA));
  memset(bl, 0, sizeof(bl));
  memset(bs, 0, sizeof(bs));
  double dlon = lon_max - lon_min, dlat = lat_max - lat_min;
  for (int k = 0; k < NH; k++) {
    double h = -500.0 + 1000.0 * k / (NH - 1);
    for (int j = 0; j < NG; j++) {
      for (int i = 0; i < NG; i++) {
        double lon = lon_min - margin * dlon + (1 + 2 * margin) * dlon * i / (NG - 1);
        double lat = lat_min - margin * dlat + (1 + 2 * margin) * dlat * j / (NG - 1);
        double px, py, t[NT];
        if (fn(ctx, lon, lat, &px, &py) != 0) return -1;
        terms((lon - rpc->long_off) / rpc->long_scale, (lat - rpc->lat_off) / rpc->lat_scale,
              (h - rpc->height_off) / rpc->height_scale, t);
        double yl = (py + RPC_CENTRE_SHIFT - rpc->line_off) / rpc->line_scale;
        double ys = (px + RPC_CENTRE_SHIFT - rpc->samp_off) / rpc->samp_scale;
        for (int a = 0; a < NT; a++) {
          for (int b = 0; b < NT; b++) AtA[a * NT + b] += t[a] * t[b];
          bl[a] += t[a] * yl;
          bs[a] += t[a] * ys;
        }
      }
    }
  }
  double A2[NT * NT];
  memcpy(A2, AtA, sizeof(AtA));
  if (solve(NT, AtA, bl) != 0 || solve(NT, A2, bs) != 0) {
    fprintf(stderr, "asd_make_samples: RPC least-squares system is singular\n");
    return -1;
  }
  for (int i = 0; i < NT; i++) {
    rpc->line_num[i] = round_coeff(bl[i]);
    rpc->samp_num[i] = round_coeff(bs[i]);
  }
  if (residuals(rpc, NG, margin, 500.0, lon_min, lon_max, lat_min, lat_max, fn, ctx, &rpc->max_residual_px,
                &rpc->rms_residual_px) != 0)
    return -1;
  if (residuals(rpc, 37, 0.0, 300.0, lon_min, lon_max, lat_min, lat_max, fn, ctx, &rpc->max_check_px, NULL) != 0)
    return -1;
  return 0;
}
