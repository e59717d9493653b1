"""What the tests of the example studies share: reading their CSV files, importing a module
from an example folder, and checking that a study names a bad parameter."""

import csv
import importlib
import subprocess
import sys

import numpy as np


def read(path):
    """A CSV file with a header row as {column: array}: float where every cell parses, else str."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = {}
    for k in rows[0]:
        try:
            out[k] = np.array([float(r[k]) for r in rows])
        except ValueError:
            out[k] = np.array([r[k] for r in rows])
    return out


def import_from(folder, name):
    """Imports module `name` from the folder of an example (not left on sys.path)."""
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def check_bad_parameters(script, cases):
    """Each (arguments, word): the script exits with status 2 and a message naming the word."""
    for args, word in cases:
        p = subprocess.run([sys.executable, str(script), "--out", "/nonexistent/never", *args],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and word in p.stderr, (args, p.stderr)
