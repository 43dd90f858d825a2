#!/usr/bin/env python3
"""Arranges the emoji of the npm package emoji-datasource-google (MIT) as a folder of images
with one sub-folder per category, which `vae train --dataset` reads with labels.

    npm pack emoji-datasource-google@16.0.0 && tar xzf emoji-datasource-google-16.0.0.tgz
    scripts/emoji-folder.py package emoji

makes emoji/Smileys & Emotion/1f600.png, ... (links to the package's 64x64 PNGs; skin-tone
variations go with their emoji's category). Prints the count per category.
"""
import collections
import json
import os
import sys


def main(package, out):
    images = os.path.join(package, "img", "google", "64")
    with open(os.path.join(package, "emoji.json"), encoding="utf-8") as f:
        emoji = json.load(f)
    counts = collections.Counter()
    for e in emoji:
        names = [e["image"]] + [v["image"] for v in e.get("skin_variations", {}).values()]
        folder = os.path.join(out, e["category"])
        os.makedirs(folder, exist_ok=True)
        for name in names:
            source = os.path.abspath(os.path.join(images, name))
            if not os.path.exists(source):
                continue
            target = os.path.join(folder, name)
            if not os.path.lexists(target):
                os.symlink(source, target)
            counts[e["category"]] += 1
    for category, n in sorted(counts.items()):
        print(f"{n:5}  {category}")
    print(f"{sum(counts.values()):5}  in all")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: emoji-folder.py PACKAGE_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
