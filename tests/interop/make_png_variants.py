"""Writes PNG files that probe Pillow's rules on chunks, around and after the image data.

Usage: make_png_variants.py OUTDIR
Each file is a small RGB (or grey) PNG with one change: a short or empty known chunk before
or after the image data, a chunk cut after the image data, a chunk name that is not a chunk
type, an ICC profile or text chunk that inflates past Pillow's 1 MiB bound or names an unknown
compression method, the end cut at every byte. Made with zlib and struct only.
"""
import os
import struct
import sys
import zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    sig = b"\x89PNG\r\n\x1a\n"
    w, h = 11, 7
    rows = b"".join(b"\x00" + bytes((x * 37 + y * 11) % 256 for x in range(w * 3)) for y in range(h))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    grey_ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    grey_rows = b"".join(b"\x00" + bytes(range(y, y + w)) for y in range(h))
    idat = chunk(b"IDAT", zlib.compress(rows))
    iend = chunk(b"IEND", b"")
    bomb = zlib.compress(b"\0" * ((1 << 20) + 1))
    just_under = zlib.compress(b"a" * (1 << 20))
    files = {
        "whole": sig + ihdr + idat + iend,
        "no-iend": sig + ihdr + idat,
        "junk-after-iend": sig + ihdr + idat + iend + b"trailing",
        "text-after-image": sig + ihdr + idat + chunk(b"tEXt", b"k\0v") + iend,
        "text-cut-after-image": sig + ihdr + idat + chunk(b"tEXt", b"key\0value")[:12],
        "text-data-missing-after-image": sig + ihdr + idat + chunk(b"tEXt", b"key\0value")[:8],
        "unknown-cut-after-image": sig + ihdr + idat + chunk(b"abCd", b"x" * 40)[:20],
        "idat-cut-after-image": sig + ihdr + idat + chunk(b"IDAT", b"x" * 40)[:20],
        "bad-name-after-image": sig + ihdr + idat + chunk(b"a b!", b"xx") + iend,
        "bad-name-before-image": sig + ihdr + chunk(b"\x89ab\x01", b"xx") + idat + iend,
        "unknown-chunk-before-image": sig + ihdr + chunk(b"abCd", b"x") + idat + iend,
        "grey-trns-short": sig + grey_ihdr + chunk(b"tRNS", b"\0") + chunk(b"IDAT", zlib.compress(grey_rows)) + iend,
        "rgb-trns-short": sig + ihdr + chunk(b"tRNS", b"\0\0\0\0") + idat + iend,
        "rgb-trns-whole": sig + ihdr + chunk(b"tRNS", b"\0\1\0\2\0\3") + idat + iend,
        "iccp-bomb": sig + ihdr + chunk(b"iCCP", b"icc\0\0" + bomb) + idat + iend,
        "iccp-1mib": sig + ihdr + chunk(b"iCCP", b"icc\0\0" + just_under) + idat + iend,
        "iccp-method-1": sig + ihdr + chunk(b"iCCP", b"icc\0\1" + just_under) + idat + iend,
        "iccp-broken-zlib": sig + ihdr + chunk(b"iCCP", b"icc\0\0garbage") + idat + iend,
        "iccp-empty": sig + ihdr + chunk(b"iCCP", b"") + idat + iend,
        "iccp-no-method": sig + ihdr + chunk(b"iCCP", b"icc\0") + idat + iend,
        "ztxt-bomb-after-image": sig + ihdr + idat + chunk(b"zTXt", b"k\0\0" + bomb) + iend,
        "ztxt-method-2": sig + ihdr + chunk(b"zTXt", b"k\0\2abc") + idat + iend,
        "itxt-bomb": sig + ihdr + chunk(b"iTXt", b"k\0\1\0en\0\0" + bomb) + idat + iend,
        "itxt-method-3": sig + ihdr + chunk(b"iTXt", b"k\0\1\3en\0\0" + bomb) + idat + iend,
        "ihdr-short": sig + chunk(b"IHDR", struct.pack(">IIBBBB", w, h, 8, 2, 0, 0)) + idat + iend,
    }
    long_ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0) + b"\0")
    files["chunk-before-ihdr"] = sig + chunk(b"tEXt", b"k\0v") + ihdr + idat + iend
    files["two-ihdrs"] = sig + ihdr + ihdr + idat + iend
    files["ihdr-of-14-bytes"] = sig + long_ihdr + idat + iend
    files["ihdr-compression-1"] = sig + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 1, 0, 0)) + idat + iend
    files["ihdr-filter-1"] = sig + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 1, 0)) + idat + iend
    files["unknown-critical-chunk"] = sig + ihdr + chunk(b"ABCD", b"xyz") + idat + iend
    files["exif-before-ihdr"] = sig + chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\0") + ihdr + idat + iend
    files["rgb-trns-long"] = sig + ihdr + chunk(b"tRNS", b"\0\1\0\2\0\3\0\4") + idat + iend
    actl = chunk(b"acTL", struct.pack(">II", 2, 0))
    fctl = lambda seq: chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, 1, 10, 0, 0))
    frame2 = chunk(b"fdAT", struct.pack(">I", 2) + zlib.compress(rows))
    files["apng"] = sig + ihdr + actl + fctl(0) + idat + fctl(1) + frame2 + iend
    files["apng-second-frame-cut"] = sig + ihdr + actl + fctl(0) + idat + fctl(1) + frame2[:30]
    files["apng-empty-gama-after-frame"] = sig + ihdr + actl + fctl(0) + idat + fctl(1) + chunk(b"gAMA", b"") + iend
    for kind, need in [(b"gAMA", 4), (b"cHRM", 32), (b"sRGB", 1), (b"pHYs", 9)]:
        name = kind.decode()
        files[f"{name}-empty"] = sig + ihdr + chunk(kind, b"") + idat + iend
        files[f"{name}-short"] = sig + ihdr + chunk(kind, b"\0" * (need - 1)) + idat + iend
        files[f"{name}-whole"] = sig + ihdr + chunk(kind, b"\0" * need) + idat + iend
        files[f"{name}-empty-after-image"] = sig + ihdr + idat + chunk(kind, b"") + iend
    whole = sig + ihdr + idat + chunk(b"tEXt", b"note\0text") + iend
    for cut in range(len(sig + ihdr) + 1, len(whole)):
        files[f"cut-at-{cut:04d}"] = whole[:cut]
    for name, data in files.items():
        with open(os.path.join(out, name + ".png"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
