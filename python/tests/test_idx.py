"""kinflow.read_idx and kinflow.datasets.fashion_mnist against an independent decode of the
same bytes (the standard library's gzip and np.frombuffer with the file's big-endian dtype):
tiny files written here for every IDX element type, plain and gzip-compressed; Fashion-MNIST
as Debian's dataset-fashion-mnist installs it (skipped when absent); and every malformed file
a ValueError naming the file and the problem."""

import gzip
import os
import struct

import numpy as np
import pytest

import kinflow

FASHION = "/usr/share/datasets/fashion-mnist"
TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_bytes(type_code, shape, values):
    """An IDX file: magic number, big-endian sizes, big-endian elements."""
    head = bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
    return head + np.asarray(values, dtype=TYPES[type_code]).tobytes()


def reference(data):
    """The independent decode: header parsed with struct, elements with np.frombuffer."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    type_code, ndim = data[2], data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=TYPES[type_code]).reshape(shape)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("type_code", sorted(TYPES))
@pytest.mark.parametrize("compressed", [False, True])
def test_every_type_against_numpy(tmp_path, type_code, compressed):
    rng = np.random.default_rng(type_code)
    shape = (7, 3, 2)
    info = np.iinfo(TYPES[type_code]) if type_code < 0x0D else None
    values = (rng.integers(info.min, info.max, size=shape, endpoint=True) if info
              else rng.normal(scale=1e3, size=shape))
    data = idx_bytes(type_code, shape, values)
    if compressed:
        data = gzip.compress(data, mtime=0)
    path = write(tmp_path, "a.bin", data)  # no telling suffix: detected by content
    want = reference(data)
    got = kinflow.read_idx(path)
    assert got.shape == want.shape
    assert got.dtype == want.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, want)
    first = kinflow.read_idx(str(path), max_items=3)
    assert first.shape == (3, 3, 2)
    np.testing.assert_array_equal(first, want[:3])


def test_gzip_members_and_levels(tmp_path):
    data = idx_bytes(0x08, (40, 28, 28), (np.arange(40 * 784) * 7919 % 251).reshape(40, 28, 28) // 50 * 50)
    for level in (0, 1, 9):  # stored blocks, fast and best compression
        got = kinflow.read_idx(write(tmp_path, f"l{level}", gzip.compress(data, level, mtime=0)))
        np.testing.assert_array_equal(got, reference(data))
    two = gzip.compress(data[:1000], mtime=0) + gzip.compress(data[1000:], mtime=0)
    np.testing.assert_array_equal(kinflow.read_idx(write(tmp_path, "two", two)), reference(data))


def malformed_cases():
    good = idx_bytes(0x08, (4, 2, 2), np.arange(16))
    packed = gzip.compress(good, mtime=0)
    crc = bytearray(packed)
    crc[-6] ^= 1
    return [
        ("truncated", good[:-1], "truncated"),
        ("header", good[:9], "truncated: the header"),
        ("oversized", good + b"\0", "oversized: 1 bytes"),
        ("magic", b"\x00\x00\x07\x03" + good[4:], "not an IDX file: magic number 0x00000703"),
        ("text", b"1,2,3\n", "not an IDX file"),
        ("huge", idx_bytes(0x0E, (65536, 65536), []), "sizes too large"),
        ("zero", bytes([0, 0, 8, 2]) + struct.pack(">2I", 1000000, 0), "dimension 1 is 0"),
        ("gzip_truncated", packed[:-5], "gzip data: truncated"),
        ("gzip_crc", bytes(crc), "CRC-32 mismatch"),
        ("gzip_oversized", gzip.compress(good + b"\0", mtime=0), "oversized"),
    ]


@pytest.mark.parametrize("name,data,message", malformed_cases(), ids=[c[0] for c in malformed_cases()])
def test_malformed_files_raise_value_error(tmp_path, name, data, message):
    path = write(tmp_path, name + ".idx", data)
    with pytest.raises(ValueError) as e:
        kinflow.read_idx(path)
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_max_items_and_missing_files(tmp_path):
    path = write(tmp_path, "l.idx", idx_bytes(0x08, (5,), [1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="asked for 6 items, the file holds 5"):
        kinflow.read_idx(path, 6)
    with pytest.raises(ValueError, match="max_items"):
        kinflow.read_idx(path, 0)
    with pytest.raises(TypeError, match="max_items"):
        kinflow.read_idx(path, 2.5)
    with pytest.raises(ValueError, match="cannot be opened"):
        kinflow.read_idx(tmp_path / "missing.idx")


def test_fashion_mnist_from_a_directory(tmp_path):
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    classes = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    write(tmp_path, "t10k-images-idx3-ubyte.gz", gzip.compress(idx_bytes(0x08, pixels.shape, pixels)))
    write(tmp_path, "t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(0x08, classes.shape, classes)))
    X, y = kinflow.datasets.fashion_mnist("test", n=4, directory=tmp_path)
    assert X.shape == (4, 784) and X.dtype == np.float64
    np.testing.assert_array_equal(X, pixels[:4].reshape(4, 784).astype(np.float64) / 255)
    np.testing.assert_array_equal(y, classes[:4])
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        kinflow.datasets.fashion_mnist("train", directory=tmp_path)
    with pytest.raises(ValueError, match="split"):
        kinflow.datasets.fashion_mnist("validation", directory=tmp_path)
    with pytest.raises(ValueError, match="n: expected"):
        kinflow.datasets.fashion_mnist("test", n=0, directory=tmp_path)


@pytest.mark.skipif(not os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz")),
                    reason="Debian's dataset-fashion-mnist is not installed (scripts/install-deps.sh --datasets)")
def test_debian_fashion_mnist_against_numpy():
    images_path = os.path.join(FASHION, "train-images-idx3-ubyte.gz")
    with open(images_path, "rb") as f:
        raw = f.read()
    want = reference(raw)
    assert want.shape == (60000, 28, 28)
    np.testing.assert_array_equal(kinflow.read_idx(images_path), want)
    np.testing.assert_array_equal(kinflow.read_idx(images_path, 100), want[:100])
    X, y = kinflow.datasets.fashion_mnist("train", n=500)
    np.testing.assert_array_equal(X, want[:500].reshape(500, 784) / 255.0)
    with open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"), "rb") as f:
        labels = reference(f.read())
    np.testing.assert_array_equal(y, labels[:500])
    assert np.bincount(labels).tolist() == [6000] * 10  # the dataset's documented balance
    Xt, yt = kinflow.datasets.fashion_mnist("test")
    assert Xt.shape == (10000, 784) and yt.shape == (10000,)
