#!/usr/bin/env python3
"""Writes the seed corpora of kinflow's fuzz targets into tests/fuzz/corpus/ (committed; run
again only to change them). Uses only the standard library: the .npy entries are taken from
the committed model files in examples/models/."""

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


if __name__ == "__main__":
    main()
