"""Reads a sipl dataset with pyarrow alone (no sipl code) and, optionally, compares every
stored image with an independent decoder (Pillow, with torchvision's Resize/CenterCrop
semantics when the set was pre-processed).

Usage: check_dataset.py DIR [--root SRC_ROOT] [--max-mad 1.5] [--max-diff N] [--per-image]
Prints one JSON object; exits 1 when a check fails.
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from PIL import Image

SHARD_COLUMNS = ["id", "path", "label", "height", "width", "pixels", "checksum"]
MANIFEST_COLUMNS = ["path", "kept", "reason_code", "reason", "label", "width", "height",
                    "shard", "row", "source_bytes", "orientation"]
# Stored paths are reversible UTF-8: a byte that is not UTF-8 is written \xHH, a backslash \\.
ESCAPE = re.compile(rb"\\(\\|x([0-9a-f]{2}))")


def source_name(path):
    """The bytes of the source file's name relative to the ingest root."""
    return ESCAPE.sub(lambda m: b"\\" if m[1] == b"\\" else bytes([int(m[2], 16)]), path.encode())


def torchvision_like(img, resize, crop):
    """torchvision Resize(resize) + CenterCrop(crop) on a PIL image."""
    if resize is not None:
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = resize, int(resize * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
        if size != img.size:
            img = img.resize(size, Image.BILINEAR)
    if crop is not None:
        w, h = img.size
        top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
        img = img.crop((left, top, left + crop, top + crop))
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--root", help="source root to compare pixels with Pillow")
    ap.add_argument("--max-mad", type=float, default=1.5)
    ap.add_argument("--max-diff", type=int, default=None,
                    help="fail when any sample differs from Pillow's by more than this")
    ap.add_argument("--per-image", action="store_true", help="report each image's MAD")
    args = ap.parse_args()
    meta = json.load(open(os.path.join(args.dir, "dataset.json")))
    codec = pa.Codec("zstd")
    settings = meta["settings"]
    problems, rows, abs_sum, n_px, worst = [], 0, np.zeros(3), 0, (0.0, None)
    per_image, differing, max_diff = {}, 0, 0
    for info in meta["shards"]:
        with pa.memory_map(os.path.join(args.dir, info["file"])) as source:
            table = ipc.open_file(source).read_all()
        if table.column_names != SHARD_COLUMNS:
            problems.append(f"{info['file']}: columns {table.column_names}")
        if table.num_rows != info["rows"]:
            problems.append(f"{info['file']}: {table.num_rows} rows, dataset.json {info['rows']}")
        rows += table.num_rows
        if not args.root:
            continue
        cols = table.to_pydict()
        for path, h, w, blob in zip(cols["path"], cols["height"], cols["width"], cols["pixels"]):
            ours = np.frombuffer(codec.decompress(blob, decompressed_size=h * w * 3),
                                 dtype=np.uint8).reshape(h, w, 3).astype(np.int32)
            ref = Image.open(os.path.join(os.fsencode(args.root), source_name(path)))
            if ref.mode == "P":  # palette PNGs are kept as their RGB expansion
                ref = ref.convert("RGB")
            ref = np.asarray(torchvision_like(ref, settings["resize"], settings["crop"]),
                             dtype=np.int32)
            if ref.shape != ours.shape:
                problems.append(f"{path}: shape {ours.shape} vs Pillow {ref.shape}")
                continue
            diff = np.abs(ours - ref)
            image_max = int(diff.max()) if diff.size else 0
            differing += image_max > 0
            max_diff = max(max_diff, image_max)
            abs_sum += diff.reshape(-1, 3).sum(axis=0)
            n_px += h * w
            mad = diff.mean()
            per_image[path] = float(mad)
            if mad > worst[0]:
                worst = (float(mad), path)
    manifest = pq.read_table(os.path.join(args.dir, "manifest.parquet"))
    if manifest.column_names != MANIFEST_COLUMNS:
        problems.append(f"manifest columns {manifest.column_names}")
    kept = sum(manifest.column("kept").to_pylist())
    counts = meta["counts"]
    if (manifest.num_rows, kept, rows) != (counts["seen"], counts["kept"], counts["kept"]):
        problems.append(f"manifest {manifest.num_rows} rows / {kept} kept, shards {rows} rows, "
                        f"dataset.json {counts}")
    out = {"rows": rows, "manifest_rows": manifest.num_rows, "kept": kept, "problems": problems}
    if n_px:
        mad = (abs_sum / n_px).tolist()
        out.update(mad_per_channel=mad, worst_image=worst, images_differing=differing,
                   max_abs_diff=max_diff)
        if args.per_image:
            out.update(per_image_mad=per_image)
        if args.max_diff is not None and max_diff > args.max_diff:
            problems.append(f"{differing} images differ from Pillow's, by up to {max_diff}")
        if max(mad) >= args.max_mad:
            problems.append(f"mean absolute difference per channel {mad} >= {args.max_mad}")
    print(json.dumps(out))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
