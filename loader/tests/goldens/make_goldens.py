"""Generate golden test data for sipl's Rust image-augmentation ops from torchvision.

The Rust crate re-implements a subset of ``torchvision.transforms.functional``
(colour jitter, grayscale, gaussian blur, solarize, resized crop / resize,
centre crop + crop, a colour projection + normalize) on float32 CHW images.
This script runs the reference torchvision calls on small deterministic inputs
and writes, next to itself:

* ``cases.json`` -- ``{"torch": ver, "torchvision": ver, "cases": [...]}``
  where every case is ``{"name", "op", "params", "input", "input_shape",
  "output", "output_shape", "tol"}``.  ``input``/``output`` are file names
  relative to this folder; ``tol`` is the max absolute error the Rust side
  should accept.
* ``*.f32`` -- raw little-endian float32, C-contiguous (CHW), no header.
  Input files are shared between cases.

Run it from the repository root with the project venv (torch 2.11 /
torchvision 0.26 at the time of writing)::

    .venv/bin/python loader/tests/goldens/make_goldens.py

The output is deterministic: running the script twice produces identical
bytes.  After writing, the script re-reads every ``.f32`` file referenced by
``cases.json`` and checks its size against the recorded shape.
"""

import json
import math
import os

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

OUT_DIR = os.path.dirname(os.path.abspath(__file__))

# Colour jitter op ids, as used by torchvision.transforms.ColorJitter
# (fn_idx from torch.randperm(4)).
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def write_f32(name, tensor):
    """Write ``tensor`` as raw little-endian float32 (C order) to OUT_DIR/name."""
    arr = np.ascontiguousarray(tensor.detach().to(torch.float32).cpu().numpy(), dtype="<f4")
    assert np.all(np.isfinite(arr)), f"{name}: non-finite values"
    with open(os.path.join(OUT_DIR, name), "wb") as fh:
        fh.write(arr.tobytes(order="C"))
    return list(arr.shape)


def read_f32(name, shape):
    """Read a raw float32 file and check it holds exactly prod(shape) values."""
    path = os.path.join(OUT_DIR, name)
    n_bytes = os.path.getsize(path)
    expected = 4 * math.prod(shape)
    if n_bytes != expected:
        raise AssertionError(f"{name}: {n_bytes} bytes, expected {expected} for shape {shape}")
    with open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype="<f4").reshape(shape)


def make_inputs():
    """Deterministic inputs in [0, 1].  Returns {file_name: tensor}."""
    torch.manual_seed(0)
    img = torch.rand(3, 24, 32)
    img32 = torch.rand(3, 32, 32)
    img14 = torch.rand(3, 14, 14)
    img8 = torch.rand(3, 8, 8)

    # Second 3x24x32 input exercising edge branches:
    #  - gray pixels (r == g == b) -> hue's maxc == minc branch (h = s = 0)
    #  - exact 0.5 values -> solarize threshold edge (0.5 >= 0.5 is inverted)
    #  - ties in the max channel -> rgb2hsv branch priority (r, then g, then b)
    #  - exact 0 / 1 values -> maxc == 0 (s division guarded) and clamp edges
    edge = img.clone()
    edge[:, 0:4, :] = img[0:1, 0:4, :]  # gray rows from the red channel
    edge[:, 4, :] = 0.5  # gray and exactly at the solarize threshold
    edge[0, 5, 0::2] = 0.5  # single-channel exact thresholds
    edge[1, 5, 1::2] = 0.5
    edge[1, 6, :] = edge[0, 6, :]  # r == g (max tie when r,g > b)
    edge[2, 6, :] = edge[0, 6, :] * 0.5
    edge[2, 7, :] = edge[1, 7, :]  # g == b
    edge[0, 7, :] = edge[1, 7, :] * 0.25
    edge[0, 8, :] = edge[2, 8, :]  # r == b
    edge[1, 8, :] = edge[2, 8, :] * 0.75
    edge[:, 9, 0:16] = 0.0  # black (maxc == 0)
    edge[:, 9, 16:32] = 1.0  # white
    edge[:, 10, 0:8] = 1.0  # fully saturated primaries / secondaries
    edge[:, 10, 0:2] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1)
    edge[:, 10, 2:4] = torch.tensor([0.0, 1.0, 0.0]).view(3, 1)
    edge[:, 10, 4:6] = torch.tensor([0.0, 0.0, 1.0]).view(3, 1)
    edge[:, 10, 6:8] = torch.tensor([1.0, 1.0, 0.0]).view(3, 1)

    return {
        "input_3x24x32.f32": img,
        "input_edge_3x24x32.f32": edge,
        "input_3x32x32.f32": img32,
        "input_3x14x14.f32": img14,
        "input_3x8x8.f32": img8,
    }


def fmt(x):
    """Stable short text for a number in a case name."""
    return repr(x) if isinstance(x, float) else str(x)


def style_pipeline(img, order, gray, solar, b=1.3, c=0.7, s=1.4, h=-0.1, sigma=0.15, thr=0.5):
    out = F.resized_crop(img, 4, 6, 22, 20, [32, 32], interpolation=InterpolationMode.BILINEAR, antialias=True)
    for fn_id in order:
        if fn_id == BRIGHTNESS:
            out = F.adjust_brightness(out, b)
        elif fn_id == CONTRAST:
            out = F.adjust_contrast(out, c)
        elif fn_id == SATURATION:
            out = F.adjust_saturation(out, s)
        elif fn_id == HUE:
            out = F.adjust_hue(out, h)
        else:
            raise ValueError(fn_id)
    if gray:
        out = F.rgb_to_grayscale(out, num_output_channels=3)
    out = F.gaussian_blur(out, kernel_size=[23, 23], sigma=[sigma, sigma])
    if solar:
        out = F.solarize(out, thr)
    return out


def build_cases(inputs):
    """Return a list of (case_dict_without_output_fields, output_tensor)."""
    main = "input_3x24x32.f32"
    edge = "input_edge_3x24x32.f32"
    sq32 = "input_3x32x32.f32"
    cases = []

    def add(name, op, params, input_name, out, tol):
        cases.append(({"name": name, "op": op, "params": params, "input": input_name, "tol": tol}, out))

    img = inputs[main]
    for f in (0.6, 1.5):
        add(f"brightness_{fmt(f)}", "brightness", {"factor": f}, main, F.adjust_brightness(img, f), 1e-4)
    for f in (0.3, 1.7):
        add(f"contrast_{fmt(f)}", "contrast", {"factor": f}, main, F.adjust_contrast(img, f), 1e-4)
    for f in (0.2, 1.8):
        add(f"saturation_{fmt(f)}", "saturation", {"factor": f}, main, F.adjust_saturation(img, f), 1e-4)
    for tag, src in (("", main), ("edge_", edge)):
        for h in (-0.2, 0.13, 0.2):
            add(f"hue_{tag}{fmt(h)}", "hue", {"factor": h}, src, F.adjust_hue(inputs[src], h), 2e-3)
    add("grayscale", "grayscale", {}, main, F.rgb_to_grayscale(img, num_output_channels=3), 1e-4)
    for s in (0.2, 0.05, 1e-10):
        add(
            f"gaussian_blur_k23_s{fmt(s)}",
            "gaussian_blur",
            {"kernel_size": 23, "sigma": s},
            main,
            F.gaussian_blur(img, kernel_size=[23, 23], sigma=[s, s]),
            1e-4,
        )
    add("solarize_0.5", "solarize", {"threshold": 0.5}, edge, F.solarize(inputs[edge], 0.5), 1e-4)

    for top, left, height, width, size in ((0, 0, 32, 32, 32), (3, 5, 20, 14, 32), (10, 2, 18, 25, 32), (7, 7, 8, 8, 32)):
        out = F.resized_crop(
            inputs[sq32], top, left, height, width, [size, size],
            interpolation=InterpolationMode.BILINEAR, antialias=True,
        )
        add(
            f"resized_crop_{top}_{left}_{height}_{width}_to{size}",
            "resized_crop",
            {"top": top, "left": left, "height": height, "width": width, "size": size},
            sq32, out, 2e-3,
        )

    for src, size in (("input_3x14x14.f32", 56), ("input_3x8x8.f32", 32)):
        in_h = inputs[src].shape[-1]
        out = F.resize(inputs[src], [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
        add(f"resize_{in_h}_to{size}", "resize", {"size": size}, src, out, 2e-3)

    gap, top, left, p = 10, 1, 2, 8
    out = F.crop(F.center_crop(img, [gap, gap]), top, left, p, p)
    add(
        "center_crop_then_crop_g10_1_2_8",
        "center_crop_then_crop",
        {"gap": gap, "top": top, "left": left, "size": p},
        main, out, 1e-6,
    )

    a = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float32)
    basis = torch.eye(3, dtype=torch.float32) - a / 6.0
    projected = torch.einsum("ij,jhw->ihw", basis, img)
    out = F.normalize(projected, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    add("project_normalize", "project_normalize", {}, main, out, 1e-4)

    for order, gray, solar in (([3, 0, 2, 1], False, True), ([0, 1, 2, 3], True, False), ([2, 3, 1, 0], False, False)):
        params = {
            "crop": [4, 6, 22, 20],
            "size": 32,
            "order": order,
            "brightness": 1.3,
            "contrast": 0.7,
            "saturation": 1.4,
            "hue": -0.1,
            "grayscale": gray,
            "sigma": 0.15,
            "solarize": solar,
            "threshold": 0.5,
        }
        name = "style_pipeline_" + "".join(str(o) for o in order) + f"_gray{int(gray)}_solar{int(solar)}"
        add(name, "style_pipeline", params, sq32, style_pipeline(inputs[sq32], order, gray, solar), 2e-3)

    return cases


def verify(doc):
    """Re-read every file in cases.json and check sizes, shapes and finiteness."""
    names = set()
    for case in doc["cases"]:
        assert case["name"] not in names, f"duplicate case name {case['name']}"
        names.add(case["name"])
        for key in ("input", "output"):
            arr = read_f32(case[key], case[f"{key}_shape"])
            assert np.all(np.isfinite(arr)), f"{case[key]}: non-finite values"
        inp = read_f32(case["input"], case["input_shape"])
        assert inp.min() >= 0.0 and inp.max() <= 1.0, f"{case['input']}: input outside [0, 1]"
    referenced = {c["input"] for c in doc["cases"]} | {c["output"] for c in doc["cases"]}
    on_disk = {n for n in os.listdir(OUT_DIR) if n.endswith(".f32")}
    stray = on_disk - referenced
    assert not stray, f"unreferenced .f32 files: {sorted(stray)}"


def main():
    torch.set_num_threads(1)  # keep reductions (mean, conv) bit-reproducible

    # Remove stale outputs so renamed cases do not leave orphans behind.
    for name in os.listdir(OUT_DIR):
        if name.endswith(".f32"):
            os.remove(os.path.join(OUT_DIR, name))

    inputs = make_inputs()
    input_shapes = {name: write_f32(name, t) for name, t in inputs.items()}

    cases = []
    for case, out in build_cases(inputs):
        out_name = case["name"] + ".f32"
        case = {
            "name": case["name"],
            "op": case["op"],
            "params": case["params"],
            "input": case["input"],
            "input_shape": input_shapes[case["input"]],
            "output": out_name,
            "output_shape": write_f32(out_name, out),
            "tol": case["tol"],
        }
        cases.append(case)

    doc = {"torch": torch.__version__, "torchvision": torchvision.__version__, "cases": cases}
    with open(os.path.join(OUT_DIR, "cases.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")

    verify(doc)
    total = sum(os.path.getsize(os.path.join(OUT_DIR, n)) for n in os.listdir(OUT_DIR))
    print(f"wrote {len(cases)} cases to {OUT_DIR} ({total} bytes total)")


if __name__ == "__main__":
    main()
