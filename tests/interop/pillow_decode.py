"""Decodes every file of a folder as Pillow's default loader does and says what became of it.

Usage: pillow_decode.py DIR
For each file (sorted by name) prints one JSON line: {"file", "mode", "size", "error"}; the
pixels of each image that opens as RGB are written beside it as FILE.rgb (HWC, RGB8), for the
caller to compare byte for byte.
"""
import json
import os
import sys

from PIL import Image


def main():
    folder = sys.argv[1]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".rgb"):
            continue
        path = os.path.join(folder, name)
        out = {"file": name, "mode": None, "size": None, "error": None}
        try:
            with Image.open(path) as im:
                out["mode"], out["size"] = im.mode, list(im.size)
                im.load()
                if im.mode == "RGB":
                    with open(path + ".rgb", "wb") as f:
                        f.write(im.tobytes())
        except Exception as e:  # every refusal is an answer here, named by its message
            out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))


if __name__ == "__main__":
    main()
