#!/usr/bin/python3
# bench/texture_raster.py OUT.tif [SIZE [COMPRESS]]: a georeferenced RGB texture
# for the uplink and wire benchmarks (bench/uplink_tc.sh, bench/wire_upload_cpu.sh).
# COMPRESS is the GTiff compression of the file (DEFLATE by default; NONE makes
# a source whose reading costs no decompression).
# A 4096 x 4096 RGB texture with structure at several scales plus sensor-like
# noise: compresses like imagery, not like the flat synthetic sample.
import sys, numpy as np
from osgeo import gdal
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
rng = np.random.default_rng(15)
img = np.zeros((3, n, n), np.float32)
for scale, amp in ((256, 60), (64, 40), (16, 25), (4, 15)):
    m = n // scale
    for b in range(3):
        f = rng.normal(0, 1, (m, m)).astype(np.float32)
        img[b] += amp * np.kron(f, np.ones((scale, scale), np.float32))
img += rng.normal(0, 6, img.shape).astype(np.float32)
img = np.clip(img + 128, 0, 255).astype(np.uint8)
compress = sys.argv[3] if len(sys.argv) > 3 else "DEFLATE"
ds = gdal.GetDriverByName("GTiff").Create(sys.argv[1], n, n, 3, gdal.GDT_Byte, ["TILED=YES", "COMPRESS=" + compress])
ds.SetGeoTransform([500000, 0.5, 0, 4500000, 0, -0.5])
from osgeo import osr
s = osr.SpatialReference(); s.ImportFromEPSG(32631); ds.SetProjection(s.ExportToWkt())
for b in range(3):
    ds.GetRasterBand(b + 1).WriteArray(img[b])
ds = None
