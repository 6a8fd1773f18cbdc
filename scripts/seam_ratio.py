#!/usr/bin/env python3
"""scripts/seam_ratio.py GRID.png TILE PATCH [ROWS]: how visible the patch grid is in an eval-tokenizer --grid PNG.

For every tile of the given rows (default: all) it compares the mean absolute step between neighbouring pixels
that straddle a patch edge (x % PATCH == PATCH - 1 -> x + 1, and the same vertically) with the mean step between
the other neighbouring pairs: 1 means the edges are as smooth as the rest of the image, above 1 a visible grid.
Tiles are TILE px with 2-px separators (the eval-tokenizer grid layout). Pure Python (zlib), no numpy."""
import struct
import sys
import zlib


def read_png_gray(path):
    d = open(path, 'rb').read()
    if d[:8] != b'\x89PNG\r\n\x1a\n':
        sys.exit(f"{path}: not a PNG")
    i, idat = 8, b''
    while i < len(d):
        n, = struct.unpack('>I', d[i:i + 4])
        t, c = d[i + 4:i + 8], d[i + 8:i + 8 + n]
        i += 12 + n
        if t == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', c[:10])
            if depth != 8 or ctype != 0:
                sys.exit(f"{path}: expected 8-bit grayscale, got depth {depth} colour type {ctype}")
        elif t == b'IDAT':
            idat += c
    raw, rows, prev, p = zlib.decompress(idat), [], bytearray(w), 0
    for _ in range(h):
        f, line = raw[p], bytearray(raw[p + 1:p + 1 + w])
        p += 1 + w
        for x in range(w):
            a, b, c = (line[x - 1] if x else 0), prev[x], (prev[x - 1] if x else 0)
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                q = a + b - c
                pr = a if abs(q - a) <= abs(q - b) and abs(q - a) <= abs(q - c) else (b if abs(q - b) <= abs(q - c) else c)
                line[x] = (line[x] + pr) & 255
        rows.append(line)
        prev = line
    return w, h, rows


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, tile, patch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    w, h, img = read_png_gray(path)
    nr, nc = (h - 2) // (tile + 2), (w - 2) // (tile + 2)
    rows = [int(r) for r in sys.argv[4].split(',')] if len(sys.argv) > 4 else list(range(nr))
    for r in rows:
        edge = inner = 0.0
        ne = ni = 0
        for c in range(nc):
            oy, ox = 2 + r * (tile + 2), 2 + c * (tile + 2)
            for y in range(tile):
                for x in range(tile):
                    v = img[oy + y][ox + x]
                    for dy, dx, k in ((0, 1, x), (1, 0, y)):
                        if k + 1 >= tile:
                            continue
                        s = abs(img[oy + y + dy][ox + x + dx] - v)
                        if k % patch == patch - 1:
                            edge += s
                            ne += 1
                        else:
                            inner += s
                            ni += 1
        print(f"row {r}: mean step across patch edges {edge / ne:.3f}, elsewhere {inner / ni:.3f}, "
              f"ratio {edge / ne / (inner / ni):.2f}")


if __name__ == '__main__':
    main()
