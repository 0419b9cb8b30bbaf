"""Writes one small image per JPEG/PNG feature that Pillow writes (synthetic pixels) into DIR,
plus the variants Pillow still loads (stray bytes before a marker, trailing bytes), and prints
what Pillow's default loader makes of each: {"file": {"mode": ..., "transparency": bool}}.

Usage: make_features.py DIR
The Rust test (tests/pillow_features.rs) ingests DIR and checks every file Pillow opens as RGB
is kept with Pillow's pixels, and every other one is rejected naming why.
"""
import io
import json
import os
import struct
import sys
import zlib

from PIL import Image


def gradient(size=(40, 30)):
    w, h = size
    img = Image.new("RGB", size)
    img.putdata([((x * 255) // (w - 1), (y * 255) // (h - 1), ((x + y) * 7) % 256)
                 for y in range(h) for x in range(w)])
    return img


def encoded(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    g = gradient()
    files = {
        "jpeg-baseline-420.jpg": encoded(g, "JPEG", quality=90),
        "jpeg-444.jpg": encoded(g, "JPEG", quality=90, subsampling=0),
        "jpeg-422.jpg": encoded(g, "JPEG", quality=90, subsampling=1),
        "jpeg-progressive.jpg": encoded(g, "JPEG", quality=90, progressive=True),
        "jpeg-optimized-huffman.jpg": encoded(g, "JPEG", quality=90, optimize=True),
        "jpeg-restart-markers.jpg": encoded(g, "JPEG", quality=90, restart_marker_blocks=1),
        "jpeg-rgb-adobe.jpg": encoded(g, "JPEG", quality=95, keep_rgb=True, subsampling=0),
        "jpeg-quality-100.jpg": encoded(g, "JPEG", quality=100),
        "jpeg-exif-rotated.jpg": encoded(g, "JPEG", quality=90, exif=exif_orientation(6)),
        "jpeg-icc.jpg": encoded(g, "JPEG", quality=90, icc_profile=b"\0" * 128),
        "jpeg-comment.jpg": encoded(g, "JPEG", quality=90, comment=b"made by hand"),
        "jpeg-gray.jpg": encoded(g.convert("L"), "JPEG"),
        "jpeg-cmyk.jpg": encoded(g.convert("CMYK"), "JPEG"),
        "png-rgb.png": encoded(g, "PNG"),
        "png-rgb-optimized.png": encoded(g, "PNG", optimize=True),
        "png-rgb-stored.png": encoded(g, "PNG", compress_level=0),
        "png-rgb-transparent-colour.png": encoded(g, "PNG", transparency=(0, 0, 0)),
        "png-rgb-exif.png": encoded(g, "PNG", exif=exif_orientation(3)),
        "png-rgba.png": encoded(g.convert("RGBA"), "PNG"),
        "png-gray.png": encoded(g.convert("L"), "PNG"),
        "png-gray-alpha.png": encoded(g.convert("LA"), "PNG"),
        "png-1bit.png": encoded(g.convert("1"), "PNG"),
        "png-gray16.png": encoded(g.convert("I;16"), "PNG"),
        "png-palette.png": encoded(g.convert("P"), "PNG"),
        "png-palette-transparent.png": encoded(g.convert("P"), "PNG", transparency=0),
        "png-animated.png": encoded(g, "PNG", save_all=True,
                                    append_images=[g.transpose(Image.FLIP_LEFT_RIGHT)]),
    }
    w, h = g.size
    rows = b"".join(b"\0" + b"".join(struct.pack(">HHH", r * 256 + 7, gg * 256 + 255, b * 256)
                                      for r, gg, b in [g.getpixel((x, y)) for x in range(w)])
                    for y in range(h))
    files["png-rgb16.png"] = (b"\x89PNG\r\n\x1a\n"
                              + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                              + png_chunk(b"IDAT", zlib.compress(rows))
                              + png_chunk(b"IEND", b""))
    base = files["jpeg-baseline-420.jpg"]
    dqt = base.index(b"\xff\xdb")
    files["jpeg-stray-bytes.jpg"] = base[:dqt] + b"\0\0\0\0" + base[dqt:]
    files["jpeg-trailing-bytes.jpg"] = base + bytes(range(256)) * 40 + b"\xff\xd9\xff\xda"
    files["png-trailing-bytes.png"] = files["png-rgb.png"] + b"\xff\xd9 not part of the image"
    verdicts = {}
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        img = Image.open(io.BytesIO(data))
        img.load()
        verdicts[name] = {"mode": img.mode, "transparency": "transparency" in img.info}
    print(json.dumps(verdicts))


if __name__ == "__main__":
    main()
