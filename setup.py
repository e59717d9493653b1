"""Builds kinflow's extension module kinflow._kinflow with CMake for `pip install .`.

The package's metadata is in pyproject.toml; this file adds the version (read from
include/kinflow/version.hpp) and the build of the module, which is the top-level CMake project
with -DKINFLOW_BUILD_PYTHON=ON and only the target _kinflow. Settings, from the environment:

  KINFLOW_PREBUILT=DIR    take the module already built in DIR (a build of this tree with
                          -DKINFLOW_BUILD_PYTHON=ON, e.g. scripts/run-tests.sh's build/tests)
                          instead of building one
  KINFLOW_BUILD_DIR=DIR   CMake build directory (default build/pip; kept between installs)
  KINFLOW_JOBS=N          parallel compile jobs (default: the CPU count)
  KINFLOW_CMAKE_ARGS=...  extra CMake arguments, e.g. "-DKINFLOW_NATIVE=OFF" for a module that
                          runs on other CPUs than this one (the default compiles for this CPU)
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def kinflow_version():
    with open(os.path.join(ROOT, "include", "kinflow", "version.hpp"), encoding="utf-8") as f:
        text = f.read()
    parts = [re.search(rf"#define KINFLOW_VERSION_{p} (\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        raise RuntimeError("setup.py: include/kinflow/version.hpp lacks KINFLOW_VERSION_MAJOR/MINOR/PATCH")
    return ".".join(m.group(1) for m in parts)


class CMakeExtension(Extension):
    """The extension module, built by CMake rather than by setuptools' compiler."""

    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        prebuilt = os.environ.get("KINFLOW_PREBUILT")
        if prebuilt:
            build_dir = os.path.abspath(prebuilt)
        else:
            build_dir = os.path.abspath(os.environ.get("KINFLOW_BUILD_DIR") or os.path.join(ROOT, "build", "pip"))
            self.cmake_build(build_dir)
        module = os.path.join(build_dir, "python", "_kinflow" + suffix)
        if not os.path.isfile(module):
            how = ("configure that build with -DKINFLOW_BUILD_PYTHON=ON and build the target _kinflow"
                   if prebuilt else "the CMake build did not produce it")
            raise RuntimeError(f"setup.py: no extension module {module} ({how})")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(module, target)

    def cmake_build(self, build_dir):
        jobs = os.environ.get("KINFLOW_JOBS") or str(os.cpu_count() or 2)
        configure = [
            "cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
            "-DKINFLOW_BUILD_PYTHON=ON", "-DKINFLOW_BUILD_TESTS=OFF", "-DKINFLOW_BUILD_EXAMPLES=OFF",
            "-DKINFLOW_BUILD_BENCHMARKS=OFF", "-DKINFLOW_BUILD_DOCS=OFF", "-DKINFLOW_INSTALL=OFF",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ] + shlex.split(os.environ.get("KINFLOW_CMAKE_ARGS", ""))
        print(f"setup.py: building the extension module in {build_dir} (Release, -j{jobs})", flush=True)
        subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build_dir, "--target", "_kinflow", "-j", jobs], check=True)


setup(
    version=kinflow_version(),
    package_dir={"": "python"},
    packages=["kinflow"],
    package_data={"kinflow": ["__init__.pyi", "py.typed"]},
    ext_modules=[CMakeExtension("kinflow._kinflow")],
    cmdclass={"build_ext": CMakeBuild},
)
