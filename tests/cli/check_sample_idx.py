#!/usr/bin/env python3
"""kinflow-sample --train on IDX files: the training set it uses (train.csv) against the
file's bytes decoded here with the standard library.

    python3 tests/cli/check_sample_idx.py --sample EXE --work DIR [--fashion-mnist]

Without --fashion-mnist: tiny IDX files written here byte by byte, plain and gzip-compressed,
the first N images by --n-train, a CSV file cut by --n-train too, and malformed files (each a
one-line usage error naming --train, exit status 2). With --fashion-mnist: the training
images of Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); exits 77
(skipped) when they are absent.
"""

import argparse
import gzip
import os
import struct
import subprocess
import sys

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def idx(shape, payload, type_code=0x08):
    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape) + payload


def run(exe, work, name, *args):
    out = os.path.join(work, name)
    p = subprocess.run([exe, *args, "--samples", "3", "--steps", "2", "--quiet", "--out", out],
                       capture_output=True, text=True, timeout=240)
    return p, out


def train_rows(out):
    with open(os.path.join(out, "train.csv")) as f:
        lines = f.read().splitlines()
    return [[float(v) for v in line.split(",")] for line in lines[1:]]  # after the header


def expect_points(exe, work, name, path, expected, *args):
    """Runs kinflow-sample on `path` and checks train.csv holds exactly `expected` (rows)."""
    p, out = run(exe, work, name, "--train", path, *args)
    check(p.returncode == 0, f"{name}: exit {p.returncode}: {p.stderr.strip()}")
    if p.returncode == 0:
        check(train_rows(out) == expected, f"{name}: train.csv differs from the file's values")


def expect_usage_error(exe, work, name, path, text, *args):
    p, _ = run(exe, work, name, "--train", path, *args)
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 2, f"{name}: exit {p.returncode}, expected 2 ({p.stderr.strip()})")
    check(len(lines) == 1 and "--train" in lines[0] and text in lines[0],
          f"{name}: expected one line naming --train and '{text}', got {p.stderr!r}")


def synthetic(exe, work):
    # 5 images of 3 x 2 bytes: pixel values / 255, one row of train.csv per image.
    pixels = bytes((37 * i + 11) % 256 for i in range(30))
    images = idx([5, 3, 2], pixels)
    rows = [[b / 255 for b in pixels[6 * k:6 * k + 6]] for k in range(5)]
    plain, packed = os.path.join(work, "tiny.idx"), os.path.join(work, "tiny.idx.gz")
    with open(plain, "wb") as f:
        f.write(images)
    with open(packed, "wb") as f:
        f.write(gzip.compress(images, mtime=0))
    expect_points(exe, work, "plain", plain, rows)
    expect_points(exe, work, "gzip", packed, rows)
    expect_points(exe, work, "first3", packed, rows[:3], "--n-train", "3")
    expect_usage_error(exe, work, "too_many", plain, "asked for 6 items, the file holds 5", "--n-train", "6")
    # Other element types keep their values.
    floats = idx([2, 2], struct.pack(">4f", 0.5, -2.0, 1e3, 0.25), 0x0D)
    path = os.path.join(work, "floats.idx")
    with open(path, "wb") as f:
        f.write(floats)
    expect_points(exe, work, "floats", path, [[0.5, -2.0], [1e3, 0.25]])
    # CSV: --n-train takes the first rows too.
    csv = os.path.join(work, "points.csv")
    with open(csv, "w") as f:
        f.write("1,2\n3,4\n5,6\n")
    expect_points(exe, work, "csv_first2", csv, [[1, 2], [3, 4]], "--n-train", "2")
    expect_points(exe, work, "csv_all", csv, [[1, 2], [3, 4], [5, 6]])
    expect_usage_error(exe, work, "csv_too_many", csv, "asked for 4 points", "--n-train", "4")
    # Malformed files.
    for name, content, text in [
        ("truncated", images[:-1], "truncated"),
        ("oversized", images + b"\0", "oversized"),
        ("magic", b"\0\0\x07\x03" + images[4:], "not an IDX file"),
        ("gzip_truncated", gzip.compress(images, mtime=0)[:-3], "gzip data: truncated"),
    ]:
        path = os.path.join(work, name + ".idx")
        with open(path, "wb") as f:
            f.write(content)
        expect_usage_error(exe, work, name, path, text)


def fashion_mnist(exe, work):
    if not os.path.exists(FASHION):
        print(f"skipped: {FASHION} is absent (install dataset-fashion-mnist: "
              "bash scripts/install-deps.sh --datasets)")
        return 77
    with gzip.open(FASHION) as f:
        head = f.read(16 + 20 * 784)
    check(struct.unpack(">4I", head[:16]) == (0x803, 60000, 28, 28), "Fashion-MNIST header")
    rows = [[b / 255 for b in head[16 + 784 * k:16 + 784 * (k + 1)]] for k in range(20)]
    expect_points(exe, work, "fashion_mnist", FASHION, rows, "--n-train", "20")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--fashion-mnist", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if a.fashion_mnist:
        if fashion_mnist(a.sample, a.work) == 77:
            return 77
    else:
        synthetic(a.sample, a.work)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
