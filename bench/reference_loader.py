#!/usr/bin/env python3
"""Throughput harness for the authors' reference PyTorch data loader.

Purpose
-------
``sipl`` re-implements the patch-localisation data pipelines of
brunnedu/DeepLearning2022 ("SIPL"). To compare our loader with the original
one on the same machine and the same JPEGs, this script drives the *authors'
own* dataset classes through a stock ``torch.utils.data.DataLoader`` and
reports how many samples per second come out of it.

This file holds only our harness code. The authors' code is never copied
into this repository: it is imported at run time from a checkout that you
pass with ``--repo`` (keep it in the git-ignored ``.work/`` folder), e.g.::

    mkdir -p .work/reference
    git -C PATH/TO/CLONE/OF/brunnedu/DeepLearning2022 archive HEAD \\
        src requirements.txt | tar -x -C .work/reference

The checkout must contain ``src/dataset.py`` and ``src/transforms.py``;
they need ``torch``, ``torchvision``, ``numpy`` and ``pandas``.

Schemes and the dataset class each one builds (constructor defaults, as in
the authors' ``run_pretext``/``run_pretext_script.py``, which pass
``cache_images=False`` and an ``aug_transform`` identical to the default
``RELIC_AUG_TRANSFORM``)::

    opl     OriginalPatchLocalizationDataset   (center, neighbor)
    siplv1  OurPatchLocalizationDataset        (center, A1(nb), A2(nb))
    siplv2  OurPatchLocalizationDatasetv2      (A1(c), A1(nb), A2(c), A2(nb))
    siplv3  OurPatchLocalizationDatasetv3      (A1(c), A2(nb), A3(nb))

Usage
-----
::

    .venv/bin/python bench/reference_loader.py \\
        --repo .work/reference \\
        --images .work/data/imagenet-sample-images/imagenet-sample-images \\
        --scheme siplv1 --workers 2 --batch 64 [--waves 2] [--seconds 30] [--warmup-batches 2]

The image list is every ``*.jpg``/``*.jpeg`` file (any case) directly in
``--images``, sorted by name. The loader is
``DataLoader(ds, batch_size=B, shuffle=True, num_workers=N,
persistent_workers=N > 0, drop_last=True)``; epochs are cycled as needed.

Timing in whole waves. Each worker builds a whole batch, and the workers start
together, so batches arrive in waves of N (one per worker) about one
batch-build time apart. A clock stopped at an arbitrary batch would count a
part of a wave, or a whole wave's wait for one batch (30-45% low with 16
workers). So: ``--warmup-batches`` batches first (default N: one wave, which
also absorbs worker start-up), then the clock runs over exactly
``--waves`` × N batches (default 2 waves) and stops when the last of them
arrives. With ``--seconds T`` further whole waves are timed until at least T
seconds have passed. One JSON line goes to stdout, before the workers are
shut down (their shutdown can take a batch-build time)::

    {"scheme", "workers", "batch", "waves", "batches", "samples", "seconds",
     "samples_per_s", "torch", "torchvision"}

Progress notes go to stderr.

Threads: nothing is changed. PyTorch's DataLoader worker loop already calls
``torch.set_num_threads(1)`` in every worker process, which is the default
behaviour the authors ran with, so each worker is one single-threaded
producer, like one of our worker threads. With ``--workers 0`` the samples
are produced in the main process with torch's default intra-op thread
pool; that setting is not comparable to N single-threaded workers.

``--legacy-antialias``: the authors' transforms resize *tensors*. With the
torchvision of their time (<= 0.16), a tensor ``Resize``/``RandomResizedCrop``
without an explicit ``antialias`` did NOT antialias; from torchvision 0.17 on
the default is ``antialias=True``, which costs more when downscaling
(``Resize(256)`` of the full-resolution JPEG, RandomResizedCrop) and gives
different pixels. By default this harness keeps the installed torchvision's
behaviour; ``--legacy-antialias`` sets ``antialias=False`` on every such
transform object the dataset uses, to reproduce what the authors ran.
"""

import argparse
import glob
import importlib
import json
import os
import sys
import time

SCHEMES = {
    "opl": "OriginalPatchLocalizationDataset",
    "siplv1": "OurPatchLocalizationDataset",
    "siplv2": "OurPatchLocalizationDatasetv2",
    "siplv3": "OurPatchLocalizationDatasetv3",
}


def log(msg):
    print(f"[reference_loader] {msg}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repo", required=True,
                   help="checkout of brunnedu/DeepLearning2022 (contains src/dataset.py)")
    p.add_argument("--images", required=True, help="directory of JPEG files")
    p.add_argument("--scheme", required=True, choices=sorted(SCHEMES))
    p.add_argument("--workers", type=int, required=True, help="DataLoader num_workers")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--waves", type=int, default=2,
                   help="timed waves of --workers batches each (default 2)")
    p.add_argument("--seconds", type=float, default=None,
                   help="time further whole waves until at least this many seconds have passed")
    p.add_argument("--warmup-batches", type=int, default=None,
                   help="batches consumed before the clock starts (default: --workers, one wave)")
    p.add_argument("--seed", type=int, default=0,
                   help="torch.manual_seed for shuffling/augmentation (default 0)")
    p.add_argument("--legacy-antialias", action="store_true",
                   help="antialias=False on the dataset's tensor resizes, as torchvision <= 0.16 did")
    p.add_argument("--dry-run", action="store_true",
                   help="check the arguments and stop before importing anything (CPU test of "
                        "bench/gpu_check.sh)")
    a = p.parse_args(argv)
    if a.warmup_batches is None:
        a.warmup_batches = max(a.workers, 1)
    if a.workers < 0 or a.batch < 1 or a.waves < 1 or a.warmup_batches < 0:
        p.error("need --workers >= 0, --batch >= 1, --waves >= 1, --warmup-batches >= 0")
    if a.seconds is not None and not 0 < a.seconds <= 86400:
        p.error(f"--seconds: expected a number in (0, 86400], got {a.seconds}")
    return a


def import_reference(repo):
    """Import the authors' ``src.dataset`` from ``repo`` and check that it
    really came from there (``src`` has no ``__init__.py`` upstream, so it is a
    namespace package and another ``src/`` on sys.path could shadow it)."""
    repo = os.path.realpath(repo)
    if not os.path.isfile(os.path.join(repo, "src", "dataset.py")):
        sys.exit(f"error: {repo}/src/dataset.py not found; is --repo the authors' checkout?")
    # The authors' modules import each other as `src.transforms`, so the repo
    # root itself has to be on sys.path. DataLoader workers are forked (Linux
    # default), and spawned children receive the parent's sys.path as well.
    sys.path.insert(0, repo)
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]
    mod = importlib.import_module("src.dataset")
    got = os.path.realpath(mod.__file__)
    if not got.startswith(repo + os.sep):
        sys.exit(f"error: imported src.dataset from {got}, not from {repo}")
    return mod


def list_images(directory):
    paths = [p for p in glob.glob(os.path.join(directory, "*"))
             if os.path.isfile(p) and p.lower().endswith((".jpg", ".jpeg"))]
    paths.sort()
    if not paths:
        sys.exit(f"error: no .jpg/.jpeg files in {directory}")
    return paths


def disable_antialias(dataset):
    """Set ``antialias=False`` on every transform object reachable from the
    dataset's transform attributes that has an ``antialias`` attribute
    (Resize, RandomResizedCrop), recursing through ``Compose``. The authors'
    RANDOM_JITTER_CROP is a module global used by ``extract_patches``, so it
    is reached through the dataset module. Returns the patched objects."""
    seen, patched = set(), []

    def walk(obj):
        if obj is None or id(obj) in seen:
            return
        seen.add(id(obj))
        if hasattr(obj, "antialias"):
            obj.antialias = False
            patched.append(type(obj).__name__)
        for child in getattr(obj, "transforms", []) or []:
            walk(child)
        crop = getattr(obj, "crop", None)  # RelicAugmentationCreator (v2)
        if crop is not None and not callable(getattr(obj, "forward", None)):
            walk(crop)

    for attr in ("pre_transform", "aug_transform", "post_transform", "aug_transform_creator"):
        walk(getattr(dataset, attr, None))
    mod = sys.modules[type(dataset).__module__]
    walk(getattr(mod, "RANDOM_JITTER_CROP", None))
    return patched


def cycle(loader):
    """Yield batches forever, starting a new epoch when one ends."""
    while True:
        for batch in loader:
            yield batch


def batch_len(batch):
    _features, labels = batch
    return int(labels.shape[0])


def stop_workers(loader):
    """Terminates the loader's worker processes at once (the normal shutdown waits for each
    to finish the batch it is building). Uses the DataLoader's private iterator; where that is
    missing, the normal shutdown runs."""
    for w in getattr(getattr(loader, "_iterator", None), "_workers", None) or []:
        try:
            w.terminate()
        except Exception:  # already gone
            pass


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run:
        print(f"reference_loader: arguments accepted (dry run, nothing measured): {vars(args)}")
        return

    import pandas as pd
    import torch
    import torchvision
    from torch.utils.data import DataLoader

    ref = import_reference(args.repo)
    paths = list_images(args.images)
    cls = getattr(ref, SCHEMES[args.scheme])
    torch.manual_seed(args.seed)

    # The constructors read `imagenet_info['images'].values`.
    dataset = cls(imagenet_info=pd.DataFrame({"images": paths}))
    if args.legacy_antialias:
        log("antialias=False on: " + ", ".join(disable_antialias(dataset)))
    if len(dataset) < args.batch:
        sys.exit(f"error: {len(dataset)} images < batch {args.batch} (drop_last=True)")
    log(f"{cls.__name__} over {len(dataset)} images from {args.images}; "
        f"{len(dataset) // args.batch} batches/epoch")

    loader = DataLoader(
        dataset,
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        drop_last=True,
    )
    stream = cycle(loader)

    t_start = time.perf_counter()
    for _ in range(args.warmup_batches):
        next(stream)
    log(f"warm-up of {args.warmup_batches} batches took {time.perf_counter() - t_start:.2f}s")

    per_wave = max(args.workers, 1)
    samples, waves = 0, 0
    t0 = time.perf_counter()
    while True:
        for _ in range(per_wave):
            samples += batch_len(next(stream))
        waves += 1
        elapsed = time.perf_counter() - t0
        if waves >= args.waves and (args.seconds is None or elapsed >= args.seconds):
            break

    print(json.dumps({
        "scheme": args.scheme,
        "workers": args.workers,
        "batch": args.batch,
        "waves": waves,
        "batches": waves * per_wave,
        "samples": samples,
        "seconds": round(elapsed, 3),
        "samples_per_s": round(samples / elapsed, 2),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }), flush=True)

    stop_workers(loader)
    stream.close()
    del loader  # shuts the persistent workers down


if __name__ == "__main__":
    main()
