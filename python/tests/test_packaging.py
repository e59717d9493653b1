"""The package as pip installs it: metadata, version, and a wheel that installs into a fresh
virtual environment.

The wheel is built from a copy of the packaging files (pyproject.toml, setup.py, the Python
sources, the version header) with the extension module this test session imports
(KINFLOW_PREBUILT), so nothing is compiled and nothing is written into the source tree.
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

import kinflow

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def header_version():
    with open(os.path.join(ROOT, "include", "kinflow", "version.hpp"), encoding="utf-8") as f:
        text = f.read()
    return ".".join(re.search(rf"#define KINFLOW_VERSION_{p} (\d+)", text).group(1)
                    for p in ("MAJOR", "MINOR", "PATCH"))


def test_installed_by_pip_with_the_headers_version():
    # pip leaves a dist-info whose version is setup.py's reading of version.hpp; the module
    # compiles the same header: the three must agree.
    assert importlib.metadata.version("kinflow") == header_version() == kinflow.__version__
    assert importlib.metadata.requires("kinflow")[0].startswith("numpy")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.mark.skipif(sys.base_prefix == sys.prefix, reason="needs a virtual environment's pip (scripts/install-python.sh)")
def test_wheel_installs_into_a_fresh_environment(tmp_path):
    src = tmp_path / "src"
    for name in ("pyproject.toml", "setup.py"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), src / name)
    (src / "docs").mkdir()
    shutil.copy(os.path.join(ROOT, "docs", "python.md"), src / "docs" / "python.md")
    (src / "include" / "kinflow").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "include", "kinflow", "version.hpp"), src / "include" / "kinflow")
    shutil.copytree(os.path.join(ROOT, "python", "kinflow"), src / "python" / "kinflow",
                    ignore=shutil.ignore_patterns("_kinflow*", "__pycache__"))
    # The module this session runs, where setup.py looks for a prebuilt one: DIR/python/.
    prebuilt = tmp_path / "prebuilt" / "python"
    prebuilt.mkdir(parents=True)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    shutil.copy(kinflow._kinflow.__file__, prebuilt / ("_kinflow" + suffix))

    env = dict(os.environ, KINFLOW_PREBUILT=str(prebuilt.parent))
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-index", "--no-deps",
         "--disable-pip-version-check", "-q", "-w", str(wheels), str(src)], env=env, cwd=tmp_path)
    built = sorted(wheels.glob("kinflow-*.whl"))
    assert len(built) == 1 and built[0].name.startswith(f"kinflow-{header_version()}-")

    # A fresh environment over the same interpreter (numpy from the system), the wheel only.
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", None) or sys.executable  # the interpreter under the venv
    run([base_python, "-m", "venv", "--system-site-packages", str(venv)])
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check", "-q", str(built[0])])
    # Outside the source tree, a small solve: the exact field of one training point y moves
    # x0 at the constant velocity y − x0 for t < 1, so Euler (no stage at t = 1) lands on y
    # with the KPE ½‖y − x0‖².
    out = run([python, "-c", (
        "import kinflow, numpy as np, sys\n"
        "y = np.array([[1.0, 2.0]]); x0 = np.array([[0.5, -1.0]])\n"
        "r = kinflow.sample(kinflow.EmpiricalField(y), x0, solver='euler', steps=10)\n"
        "print(kinflow.__version__, kinflow.__file__.startswith(sys.prefix), float(r.kpe[0]), float(r.x[0, 1]))\n")],
        cwd=tmp_path)
    version, inside, kpe, x1 = out.split()
    assert version == header_version() and inside == "True"
    assert float(kpe) == pytest.approx(0.5 * (0.5 ** 2 + 3.0 ** 2), rel=1e-12)
    assert float(x1) == pytest.approx(2.0, abs=1e-12)
