// Smoke run of the peer-comparison command (bench/compare.sh --quick) on the benchmark
// programs of this build tree, so the scripts keep working; and the PyTorch peer's clean
// skip when PyTorch cannot be imported. No timings are checked.
//
// Skipped (with a warning) when the benchmark programs were not built next to the tests,
// when bash or Python is missing, or off Linux.

#include "kinflow_catch.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

// The repository root, from this file's path (CMake compiles sources by absolute path).
fs::path source_root() {
  const fs::path self(__FILE__);
  if (!self.is_absolute()) return {};
  return self.parent_path().parent_path().parent_path();
}

// The directory of this executable, <build>/tests/.
fs::path tests_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path();
}

// The build tree's bench/ directory.
fs::path bench_binaries() {
  const fs::path t = tests_dir();
  return t.empty() ? t : t.parent_path() / "bench";
}

std::string quoted(const fs::path& p) {
  std::ostringstream s;
  s << '\'' << p.string() << '\'';
  return s.str();
}

// Runs a shell command with its output going to `log`; returns the exit status.
int run(const std::string& command, const fs::path& log) {
  std::ostringstream full;
  full << command << " > " << quoted(log) << " 2>&1";
  const int raw = std::system(full.str().c_str());
  if (raw == -1) return -1;
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool have(const char* program) {
  std::ostringstream command;
  command << "command -v " << program << " > /dev/null 2>&1";
  return std::system(command.str().c_str()) == 0;
}

const char* python() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

}  // namespace

TEST_CASE("bench/compare.sh --quick runs every part and prints the table") {
  const fs::path root = source_root(), bin = bench_binaries();
  if (root.empty() || bin.empty() || !fs::exists(bin / "bench_sampling") ||
      !fs::exists(bin / "bench_odeint") || !have("bash") || !have(python())) {
    WARN("skipped: benchmark programs not built in this tree, or bash/python3 missing");
    return;
  }
  const fs::path out = tests_dir() / "compare-smoke";
  fs::remove_all(out);
  fs::create_directories(out);
  const fs::path log = out / "log.txt";
  std::ostringstream command;
  command << "bash " << quoted(root / "bench" / "compare.sh")
          << " --quick --no-install --threads 2 --bin-dir " << quoted(bin) << " --out " << quoted(out);
  const int status = run(command.str(), log);
  INFO(read(log));
  REQUIRE(status == 0);
  const std::string table = read(out / "results.md");
  CHECK_THAT(table, kinflow_test::contains("Sampling runs"));
  CHECK_THAT(table, kinflow_test::contains("d2_N32_B64_euler5"));
  CHECK_THAT(table, kinflow_test::contains("Boost.Odeint"));
  const bool torch_ran = table.find("kinflow vs PyTorch") != std::string::npos;
  const bool torch_skipped = table.find("PyTorch comparison skipped") != std::string::npos;
  CHECK(torch_ran != torch_skipped);
  if (torch_ran) {
    // Same inputs, same sampler: the tiny runs agree to rounding, no sample lands elsewhere.
    CHECK_THAT(table, kinflow_test::contains("| 0/64 |"));
    CHECK_THAT(table, kinflow_test::contains("| 0/16 |"));
  }
}

TEST_CASE("bench/pytorch_sampler.py skips cleanly when PyTorch cannot be imported") {
  const fs::path root = source_root(), dir = tests_dir();
  if (root.empty() || dir.empty() || !have(python())) {
    WARN("skipped: python3 missing");
    return;
  }
  const fs::path log = dir / "pytorch-sampler-skip.txt";
  // -S: no site packages, so neither torch nor numpy is importable.
  std::ostringstream command;
  command << python() << " -S " << quoted(root / "bench" / "pytorch_sampler.py") << " --dir "
          << quoted(root / "no-such-dir");
  const int status = run(command.str(), log);
  const std::string text = read(log);
  fs::remove(log);
  INFO(text);
  CHECK(status == 3);
  CHECK_THAT(text, kinflow_test::contains("skipped, PyTorch is not installed"));
}
