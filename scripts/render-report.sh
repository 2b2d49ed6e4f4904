#!/usr/bin/env bash
# Renders ringfence's HTML report headless with Chromium to a PNG, and
# fails if the picture is blank (nearly every pixel one colour).
#
#   scripts/render-report.sh PAGE.html OUT.png   # a page already written
#   scripts/render-report.sh --demo OUT.png      # `ringfence demo --html` first
#
# Environment: RENDER_WIDTH and RENDER_HEIGHT (the window, in CSS pixels;
# default 1100 x 2600: the page's top, charts and first evidence graphs),
# RENDER_COLOURS (quantise the PNG to this many colours with ImageMagick,
# where installed, to keep it small; default: as Chromium wrote it), and
# CHROMIUM (the browser's command). Chromium is installed with apt-get
# (the Debian package `chromium`, through sudo when not root) if missing.
# The page loads nothing from the network, and Chromium is told not to
# either.
set -euo pipefail

usage() {
    echo "usage: $0 PAGE.html OUT.png | $0 --demo OUT.png" >&2
    exit 2
}
[ $# -eq 2 ] || usage
page=$1
out=$2
width=${RENDER_WIDTH:-1100}
height=${RENDER_HEIGHT:-2600}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$page" = "--demo" ]; then
    page=$work/report.html
    echo "render-report: running \`ringfence demo --html\`" >&2
    (cd "$root" && cargo run --quiet --release -p ringfence-lab --bin ringfence -- \
        demo --html "$page" >/dev/null)
fi
[ -f "$page" ] || { echo "render-report: no such page: $page" >&2; exit 1; }

find_chromium() {
    for c in "${CHROMIUM:-}" chromium chromium-browser google-chrome google-chrome-stable; do
        if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if ! browser=$(find_chromium); then
    echo "render-report: Chromium not found; installing the Debian package chromium" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "render-report: not root and no sudo: install chromium yourself" >&2
            exit 1
        }
        sudo="sudo"
    fi
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        $sudo apt-get install -y -qq chromium >/dev/null; }; then
        echo "render-report: apt-get could not install chromium" >&2
        exit 1
    fi
    browser=$(find_chromium) || {
        echo "render-report: chromium installed but not on PATH" >&2
        exit 1
    }
fi

flags=(
    --headless=new --disable-gpu --hide-scrollbars --force-device-scale-factor=1
    --no-first-run --no-default-browser-check --disable-extensions --disable-sync
    --disable-background-networking --disable-component-update --disable-default-apps
    --user-data-dir="$work/profile" --window-size="$width,$height"
)
# Chromium's sandbox refuses root; as root (containers, CI) run without it.
[ "$(id -u)" -ne 0 ] || flags+=(--no-sandbox)

abs_page=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
shot=$work/shot.png
if ! timeout 180 "$browser" "${flags[@]}" --screenshot="$shot" "file://$abs_page" \
    >"$work/chromium.log" 2>&1 || [ ! -s "$shot" ]; then
    echo "render-report: Chromium wrote no picture; its output:" >&2
    tail -20 "$work/chromium.log" >&2
    exit 1
fi

# A real ImageMagick (`magick`, or a `convert` on the PATH that is one).
find_magick() {
    local c
    for c in $(type -ap magick convert 2>/dev/null); do
        if "$c" -version 2>/dev/null | grep -q ImageMagick; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

if [ -n "${RENDER_COLOURS:-}" ]; then
    if magick=$(find_magick) &&
        "$magick" "$shot" -dither None -colors "$RENDER_COLOURS" -strip "PNG8:$work/small.png"; then
        mv "$work/small.png" "$shot"
    else
        echo "render-report: no working ImageMagick: RENDER_COLOURS ignored" >&2
    fi
fi

# Blank or not: decode the PNG with the standard library (zlib, the five
# row filters) and count the pixels of the commonest colour.
python3 - "$shot" <<'EOF'
import struct, sys, zlib
from collections import Counter

path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("render-report: not a PNG")
pos, idat, palette = 8, [], None
while pos < len(data):
    (n,) = struct.unpack(">I", data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"PLTE":
        palette = body
    elif kind == b"IDAT":
        idat.append(body)
    pos += 12 + n
if depth != 8 or interlace != 0 or ctype not in (0, 2, 3, 4, 6):
    sys.exit(f"render-report: unsupported PNG (depth {depth}, type {ctype}, interlace {interlace})")
bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
raw = zlib.decompress(b"".join(idat))
stride = w * bpp
prev = bytearray(stride)
colours = Counter()
for y in range(h):
    f = raw[y * (stride + 1)]
    row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride):
            row[i] = (row[i] + row[i - bpp]) & 255
    elif f == 2:
        row = bytearray((a + b) & 255 for a, b in zip(row, prev))
    elif f == 3:
        for i in range(stride):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + prev[i]) >> 1)) & 255
    elif f == 4:
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    elif f != 0:
        sys.exit(f"render-report: bad PNG filter {f} on row {y}")
    # Every fourth row and column is plenty to tell a picture from a blank.
    if y % 4 == 0:
        colours.update(bytes(row[x:x + bpp]) for x in range(0, stride, 4 * bpp))
    prev = row
total = sum(colours.values())
top, top_n = colours.most_common(1)[0]
share = top_n / total
if palette is not None and ctype == 3:
    top = palette[top[0] * 3:top[0] * 3 + 3]
print(f"render-report: {w} x {h} pixels, {len(colours)} colours sampled; the commonest, "
      f"#{top[:3].hex()}, covers {100 * share:.1f} %", file=sys.stderr)
if share > 0.97 or len(colours) < 8:
    sys.exit("render-report: the picture is blank (nearly every pixel one colour)")
EOF

mkdir -p "$(dirname "$out")"
cp "$shot" "$out"
echo "render-report: wrote $out ($(($(wc -c <"$out") / 1024)) KiB)" >&2
