"""Goldens for eval/src/autoaugment.rs: torchvision's AutoAugment ops on uint8 CHW tensors.

Run from the repository root with the project's venv (torch 2.11, torchvision 0.26):

    .venv/bin/python eval/tests/goldens/make_autoaugment_goldens.py

Writes eval/tests/goldens/autoaugment/: each input and output as raw uint8 bytes in HWC order
(interleaved RGB, as the Rust code holds images), and cases.json naming op, magnitude, input,
shape and output of every case, plus the ImageNet policy and torchvision's magnitude tables, so
the Rust distribution test checks against torchvision's own numbers. Every op goes through
torchvision's internal `_apply_op`, so the semantics are exactly those of the transform.
Deterministic: running it twice gives identical bytes. It needs torch's vectorised CPU kernels
(AVX2 or AVX-512, torch's choice on any recent x86-64): with ATEN_CPU_CAPABILITY=default torch's
grid_sample rounds two ShearX goldens of wide_8x97 differently (no fused multiply-add there).
"""

import json
import os

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import AutoAugment, AutoAugmentPolicy, _apply_op

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autoaugment")
torch.set_num_threads(1)


def make_inputs():
    """name -> uint8 array [3, H, W]."""
    rng = np.random.default_rng(20240607)
    noise = rng.integers(0, 256, size=(3, 17, 23), dtype=np.uint8)

    # Smooth gradients over a part of the range: autocontrast stretches them, equalize spreads them.
    h, w = 20, 20
    y, x = np.mgrid[0:h, 0:w]
    gradient = np.stack(
        [
            30 + 6 * x + y // 3,
            200 - 5 * y + x % 3,
            60 + 3 * (x + y) + rng.integers(0, 4, size=(h, w)),
        ]
    ).astype(np.uint8)

    # Degenerate: R constant (autocontrast max == min), G almost constant (equalize step == 0).
    flat = np.empty((3, 9, 8), dtype=np.uint8)
    flat[0] = 100
    flat[1] = 50
    flat[1, 2, 3] = flat[1, 7, 1] = flat[1, 4, 6] = 200
    flat[2] = 120 + (np.arange(72).reshape(9, 8) % 4)

    # Two rows: sharpness returns the image unchanged.
    tiny = rng.integers(0, 256, size=(3, 2, 5), dtype=np.uint8)

    # At this shape ShearX by -0.2 and -0.0666 puts a source x where torch's fused multiply-add in
    # grid_sample's unnormalisation decides the rounding (unfused f32 lands exactly on .5); no
    # image of 40x40 or less has such a point.
    wide = rng.integers(0, 256, size=(3, 8, 97), dtype=np.uint8)
    return {"noise_17x23": noise, "gradient_20x20": gradient, "flat_9x8": flat, "tiny_2x5": tiny,
            "wide_8x97": wide}


def f32(v):
    """A Python float holding exactly the float32 value, as AutoAugment's `.item()` hands it on."""
    return float(np.float32(v))


def signed(values):
    out = []
    for v in values:
        out.append(f32(v))
        if v != 0:
            out.append(-f32(v))
    return out


def magnitudes(name, space):
    """op -> magnitudes to test: a sweep of bins on the small inputs, fewer on the larger ones."""
    def table(op):
        return [float(v) for v in space[op][0].tolist()]

    if name == "wide_8x97":
        return {"ShearX": signed([table("ShearX")[i] for i in (2, 6)])}

    enhance = table("Color")
    if name != "gradient_20x20":
        return {
            "Posterize": [1.0, 4.0, 5.0, 6.0, 8.0],
            "Rotate": signed([table("Rotate")[i] for i in (0, 1, 3, 8, 9)]),
            "ShearX": signed([table("ShearX")[i] for i in (0, 1, 5, 9)]),
            "Solarize": [f32(table("Solarize")[i]) for i in (0, 3, 4, 5, 7, 8, 9)],
            "AutoContrast": [0.0],
            "Equalize": [0.0],
            "Invert": [0.0],
            "Color": signed([enhance[i] for i in (0, 2, 8, 9)]),
            "Contrast": signed([enhance[i] for i in (0, 2, 8, 9)]),
            "Sharpness": signed([enhance[i] for i in (0, 2, 8, 9)]),
        }
    return {
        "Posterize": [4.0, 6.0],
        "Rotate": signed([table("Rotate")[i] for i in (3, 9)]),
        "ShearX": signed([table("ShearX")[9]]),
        "Solarize": [f32(table("Solarize")[i]) for i in (0, 5, 9)],
        "AutoContrast": [0.0],
        "Equalize": [0.0],
        "Invert": [0.0],
        "Color": signed([enhance[9]]) + [f32(enhance[4])],
        "Contrast": signed([enhance[9]]) + [f32(enhance[4])],
        "Sharpness": signed([enhance[9]]) + [f32(enhance[4])],
    }


def hwc_bytes(chw):
    return np.ascontiguousarray(np.transpose(chw, (1, 2, 0))).tobytes()


def main():
    capability = torch.backends.cpu.get_cpu_capability()
    if capability == "DEFAULT":
        raise SystemExit("torch runs its non-vectorised CPU kernels; see the docstring")
    os.makedirs(OUT, exist_ok=True)
    aa = AutoAugment(AutoAugmentPolicy.IMAGENET)
    policies = aa.policies
    cases = []
    for name, chw in make_inputs().items():
        _, h, w = chw.shape
        space = aa._augmentation_space(10, (h, w))
        with open(os.path.join(OUT, f"{name}.in.u8"), "wb") as f:
            f.write(hwc_bytes(chw))
        for op, mags in magnitudes(name, space).items():
            for k, mag in enumerate(mags):
                img = torch.from_numpy(chw.copy())
                out = _apply_op(img, op, mag, interpolation=InterpolationMode.NEAREST, fill=None)
                assert out.dtype == torch.uint8 and out.shape == img.shape
                out_name = f"{name}.{op}.{k}.u8"
                with open(os.path.join(OUT, out_name), "wb") as f:
                    f.write(hwc_bytes(out.numpy()))
                cases.append(
                    {"op": op, "magnitude": mag, "input": f"{name}.in.u8", "height": h, "width": w,
                     "output": out_name}
                )

    # The policy and tables as torchvision holds them (image size does not matter for the ops
    # the ImageNet policy uses; only TranslateX/Y, which it does not use, depend on it).
    space = aa._augmentation_space(10, (224, 224))
    used = sorted({op for sub in policies for (op, _, _) in sub})
    meta = {
        "torchvision": __import__("torchvision").__version__,
        "policy": [[{"op": op, "p": p, "bin": b} for (op, p, b) in sub] for sub in policies],
        "signed": {op: space[op][1] for op in used},
        "tables": {op: [float(v) for v in space[op][0].reshape(-1).tolist()] for op in used},
        "cases": cases,
    }
    # One case per line: small, and diffs of a regeneration stay readable.
    compact = dict(separators=(",", ":"), sort_keys=True)
    lines = [f" {json.dumps(k)}:{json.dumps(v, **compact)}," for k, v in meta.items() if k != "cases"]
    lines.append(' "cases":[')
    lines.append(",\n".join("  " + json.dumps(c, **compact) for c in cases))
    lines.append(" ]")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        f.write("{\n" + "\n".join(lines) + "\n}\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(cases)} cases, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
