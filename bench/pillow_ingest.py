#!/usr/bin/env python3
"""The reference for ``sipl ingest``'s speed: the same photos decoded by Pillow and, for the
pretext set, resized and centre-cropped by torchvision (``Resize(256)`` then
``CenterCrop(224)`` on PIL images), each kept image turned into an RGB8 array, as the shards
store it. No compression and no writing: the pixel work only.

Usage: python3 bench/pillow_ingest.py ROOT [--resize 256 --crop 224] [--workers N]
Prints one JSON line: images seen and kept, seconds, images/s, per worker.
"""
import argparse
import json
import os
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image
from torchvision.transforms import CenterCrop, InterpolationMode, Resize

EXTENSIONS = (".jpg", ".jpeg", ".png")


def files(root):
    out = []
    for dirpath, _, names in os.walk(root):
        out += [os.path.join(dirpath, n) for n in names if n.lower().endswith(EXTENSIONS)]
    return sorted(out)


def work(args):
    path, resize, crop = args
    try:
        with Image.open(path) as im:
            if im.mode != "RGB":
                return 0
            im.load()
            if resize:
                im = Resize(resize, interpolation=InterpolationMode.BILINEAR, antialias=True)(im)
            if crop:
                im = CenterCrop(crop)(im)
            np.asarray(im, dtype=np.uint8)
            return 1
    except OSError:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--resize", type=int, default=None)
    ap.add_argument("--crop", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    todo = [(f, args.resize, args.crop) for f in files(args.root)]
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        kept = sum(pool.imap(work, todo, chunksize=16))
    seconds = time.perf_counter() - start
    print(json.dumps({"reference": "Pillow + torchvision", "seen": len(todo), "kept": kept,
                      "workers": args.workers, "seconds": round(seconds, 2),
                      "images_per_s": round(len(todo) / seconds, 1),
                      "per_worker": round(len(todo) / seconds / args.workers, 1)}))


if __name__ == "__main__":
    main()
