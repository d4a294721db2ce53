#!/usr/bin/python3
# bench/merge_compare.py A.tsv B.tsv: compares two merge outputs written by
# bench/merge_blobs_bench.c (class, score, merged count, box, WKT per line, in
# a canonical order).  Features must match one to one in class, score, merged
# count and box; outlines are compared as point sets: identical text, or the
# same shape (area of the symmetric difference <= 1e-9 of the outline's area,
# i.e. the same ring up to start point, orientation and collinear vertices),
# or different.  Exit status 1 when anything differs.
import sys
from osgeo import ogr

def load(p):
    with open(p) as f:
        return [l.rstrip("\n").split("\t") for l in f]

a, b = load(sys.argv[1]), load(sys.argv[2])
same_text = same_shape = differ = 0
worst = 0.0
if len(a) != len(b):
    print(f"compare: {len(a)} features against {len(b)}: DIFFERENT")
    sys.exit(1)
for x, y in zip(a, b):
    if x[:4] != y[:4]:
        print(f"compare: feature differs: {x[:4]} / {y[:4]}")
        differ += 1
        continue
    if x[4] == y[4]:
        same_text += 1
        continue
    ga, gb = ogr.CreateGeometryFromWkt(x[4]), ogr.CreateGeometryFromWkt(y[4])
    d = ga.SymDifference(gb).GetArea() / max(ga.GetArea(), 1e-300)
    worst = max(worst, d)
    if d <= 1e-9:
        same_shape += 1
    else:
        differ += 1
        if differ <= 5:
            print(f"compare: outline differs ({d:.3g} of its area): {x[3]}")
print(f"compare: features={len(a)} identical={same_text} same_shape_other_ring={same_shape} "
      f"different={differ} worst_relative_symdiff={worst:.3g} -> {'SAME' if differ == 0 else 'DIFFERENT'}")
sys.exit(1 if differ else 0)
