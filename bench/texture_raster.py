#!/usr/bin/python3
# bench/texture_raster.py OUT.tif [SIZE]: a georeferenced RGB texture for the
# uplink benchmark (bench/uplink_tc.sh).
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
ds = gdal.GetDriverByName("GTiff").Create(sys.argv[1], n, n, 3, gdal.GDT_Byte, ["TILED=YES", "COMPRESS=DEFLATE"])
ds.SetGeoTransform([500000, 0.5, 0, 4500000, 0, -0.5])
from osgeo import osr
s = osr.SpatialReference(); s.ImportFromEPSG(32631); ds.SetProjection(s.ExportToWkt())
for b in range(3):
    ds.GetRasterBand(b + 1).WriteArray(img[b])
ds = None
