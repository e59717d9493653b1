#pragma once
/// @file
/// @brief A run's output directory whose files are complete or absent (docs/cli.md,
/// "Output files").
///
/// Every file is written under a staging name, `.<name>.partial`, and renamed into place
/// only when the whole run has finished; `summary.json` comes last and records the run's
/// settings, its files and their sizes, and `"complete": true`. When the run starts, staging
/// files left by a killed run are removed; when it commits, the previous run's `summary.json`
/// is removed before the first rename, and the program's other output names that this run did
/// not write after the renames, so files of two runs never sit side by side under one
/// summary, and a run that fails or is killed before it commits leaves the previous one whole. SIGINT, SIGTERM and
/// SIGHUP delete the staging files before the program dies of the signal; after SIGKILL
/// only staging names can be left, which the next run into the directory removes.
///
/// A directory therefore holds a complete run exactly when its summary.json exists (and says
/// complete); without one, whatever is there is not a run's output.

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "output.hpp"

namespace kinflow_cli {

namespace detail {

/// Staging paths the signal handler deletes (fixed storage: the handler may only call
/// async-signal-safe functions, so nothing here allocates once registered).
struct staged_registry {
  static constexpr int capacity = 32;
  static constexpr std::size_t path_max = 4096;
  char paths[capacity][path_max]{};
  std::atomic<int> count{0};
};

inline staged_registry& staged() {
  static staged_registry r;
  return r;
}

extern "C" inline void remove_staged_and_die(int sig) {
  staged_registry& r = staged();
  const int n = r.count.load();
  for (int i = 0; i < n; ++i)
    if (r.paths[i][0] != '\0') ::unlink(r.paths[i]);  // async-signal-safe
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace detail

/// The output directory of one run (see the file comment).
class run_directory {
public:
  /// Opens @p dir for a run of @p program, creating it when needed. @p outputs lists every
  /// file name the program may write there (summary.json aside).
  /// @throws std::runtime_error naming @p option when the directory cannot be made.
  run_directory(std::filesystem::path dir, std::string program, std::vector<std::string> outputs,
                std::string_view option = "--out")
      : dir_(std::move(dir)), program_(std::move(program)), outputs_(std::move(outputs)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec || !std::filesystem::is_directory(dir_))
      throw std::runtime_error(std::string(option) + " = '" + dir_.string() + "': cannot create the directory");
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() > 9 && name.front() == '.' && name.ends_with(".partial")) std::filesystem::remove(entry.path(), ec);
    }
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) previous_.push_back({sig, std::signal(sig, detail::remove_staged_and_die)});
  }

  run_directory(const run_directory&) = delete;
  run_directory& operator=(const run_directory&) = delete;

  /// Removes the staging files of a run that did not commit (an exception on the way out).
  ~run_directory() {
    std::error_code ec;
    for (const auto& [name, path] : staged_) std::filesystem::remove(path, ec);
    detail::staged().count.store(0);
    for (const auto& [sig, handler] : previous_) std::signal(sig, handler);
  }

  /// The directory itself.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return dir_; }

  /// The staging path to write the output @p name to (renamed to `dir/name` by commit()).
  [[nodiscard]] std::filesystem::path stage(const std::string& name) {
    std::filesystem::path p = dir_ / ("." + name + ".partial");
    auto& r = detail::staged();
    const std::string text = p.string();
    const int i = r.count.load();
    if (i >= detail::staged_registry::capacity || text.size() >= detail::staged_registry::path_max)
      throw std::runtime_error("too many or too long output paths: " + text);
    std::memcpy(r.paths[i], text.c_str(), text.size() + 1);
    r.count.store(i + 1);  // registered before the file exists
    staged_.emplace_back(name, p);
    return p;
  }

  /// Ends the run: renames every staged file into place, removes the program's outputs this
  /// run did not write, then writes @p summary with `"files"` (name → bytes) and
  /// `"complete": true` added, as `summary.json` (staged and renamed too, last).
  void commit(json_object summary) {
    json_object files;
    for (const auto& [name, path] : staged_) {
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(path, ec);
      if (ec) throw std::runtime_error("cannot read back " + path.string());
      files.integer(name, static_cast<long long>(bytes));
    }
    // The previous run's summary goes first: from the first rename on, its files no longer
    // read as a run. (Until commit, a run that fails or is killed leaves the previous one
    // whole.)
    std::filesystem::remove(dir_ / "summary.json");
    for (const auto& [name, path] : staged_) std::filesystem::rename(path, dir_ / name);
    for (const auto& name : outputs_) {
      bool written = false;
      for (const auto& s : staged_) written = written || s.first == name;
      std::error_code ec;
      if (!written) std::filesystem::remove(dir_ / name, ec);
    }
    staged_.clear();
    const std::filesystem::path tmp = stage("summary.json");
    summary.object("files", files).boolean("complete", true).write(tmp);
    std::filesystem::rename(tmp, dir_ / "summary.json");
    staged_.clear();
    detail::staged().count.store(0);
  }

private:
  std::filesystem::path dir_;
  std::string program_;
  std::vector<std::string> outputs_;
  std::vector<std::pair<std::string, std::filesystem::path>> staged_;
  std::vector<std::pair<int, void (*)(int)>> previous_;
};

}  // namespace kinflow_cli
