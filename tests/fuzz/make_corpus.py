#!/usr/bin/env python3
"""Writes the seed corpora of kinflow's fuzz targets into tests/fuzz/corpus/ (committed; run
again only to change them). Uses only the standard library: the .npy entries are taken from
the committed model files in examples/models/; the IDX files are small arrays of each element
type, plain and gzip-compressed (stored, fixed and dynamic Huffman blocks, two members)."""

import gzip
import os
import struct
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "..", "examples", "models")
NAMES = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight",
         "layers.2.bias", "activation", "time_embedding", "time_frequencies", "layers.3.weight", "stray"]


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    write("fuzz_csv", "header.csv", b"x_0,x_1\n1.5,-2\n0.25,3e-4\n")
    write("fuzz_csv", "plain.csv", b"1,2,3\n4,5,6\n")
    write("fuzz_csv", "crlf_semicolon.csv", b"a;b\r\n-0.5;1e300\r\n2;3\r\n")
    write("fuzz_csv", "one_column.csv", b"7\n8\n9\n")
    for model in ("fm_mlp_8gaussians.npz", "gelu_raw_time.npz"):
        path = os.path.join(MODELS, model)
        with open(path, "rb") as f:
            write("fuzz_npz", model, f.read())
        records = b""
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                data = z.read(info)
                entry = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                write("fuzz_npy", f"{model[:-4]}.{entry}.npy", data)
                if entry in NAMES and len(data) < 65536:
                    records += bytes([NAMES.index(entry)]) + struct.pack("<H", len(data)) + data
        write("fuzz_mlp", model[:-4] + ".records", records)

    write_idx_corpus()


def idx(type_code, shape, payload):
    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape) + payload


def write_idx_corpus():
    images = idx(0x08, [3, 4, 4], bytes((7 * i * i) % 256 if i % 5 else 0 for i in range(48)))
    labels = idx(0x08, [5], bytes([9, 0, 0, 3, 2]))
    write("fuzz_idx", "images_u8.idx", images)
    write("fuzz_idx", "labels_u8.idx", labels)
    write("fuzz_idx", "int16.idx", idx(0x0B, [2, 2], struct.pack(">4h", 1, -2, 300, -32768)))
    write("fuzz_idx", "int32.idx", idx(0x0C, [2], struct.pack(">2i", 65536, -7)))
    write("fuzz_idx", "float32.idx", idx(0x0D, [1, 3], struct.pack(">3f", 0.5, -1e30, 3.25)))
    write("fuzz_idx", "float64.idx", idx(0x0E, [2, 1, 1], struct.pack(">2d", 1e-300, -2.5)))
    # mtime=0: the same bytes on every run.
    write("fuzz_idx", "images_dynamic.idx.gz", gzip.compress(idx(0x08, [2, 28, 28], bytes(
        (r * c) % 251 if (r - 14) ** 2 + (c - 14) ** 2 < 60 else 0 for _ in range(2) for r in range(28)
        for c in range(28))), 9, mtime=0))
    write("fuzz_idx", "labels_fixed.idx.gz", gzip.compress(labels, 9, mtime=0))
    write("fuzz_idx", "images_stored.idx.gz", gzip.compress(images, 0, mtime=0))
    write("fuzz_idx", "two_members.idx.gz", gzip.compress(labels[:6], 6, mtime=0) + gzip.compress(labels[6:], 6, mtime=0))


if __name__ == "__main__":
    main()
