#pragma once
/// @file
/// @brief Progress of a long run on stderr (docs/cli.md, "Progress").
///
/// Nothing is shown during the first second. After that, when stderr is a terminal, one
/// live line is rewritten about five times a second:
///
///     kinflow-sample:  43% | 4300 of 10000 samples | 2150 samples/s | ETA 3 s
///
/// and when it is not (a log file, a pipe), a line is printed at every 10 %. The last
/// report (100 %) ends the line. `--quiet` builds a silent meter. Nothing goes to stdout.

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

namespace kinflow_cli {

/// A progress meter, called with the share of the work done (a kinflow::progress_callback
/// target: `opt.progress = std::ref(meter)` or a lambda calling it).
class progress_meter {
public:
  /// A meter for @p total units of work named @p unit ("samples", "runs") of @p program;
  /// silent when @p quiet.
  progress_meter(std::string program, std::string unit, double total, bool quiet)
      : program_(std::move(program)), unit_(std::move(unit)), total_(total), quiet_(quiet),
        live_(::isatty(2) == 1), start_(clock::now()), last_(start_) {}

  /// Reports @p done in [0, 1].
  void operator()(double done) {
    if (quiet_ || finished_) return;
    const auto now = clock::now();
    const double elapsed = seconds(now - start_);
    if (done >= 1.0) {
      if (shown_) print(1.0, elapsed, true);
      finished_ = true;
      return;
    }
    if (elapsed < 1.0) return;
    if (live_) {
      if (shown_ && seconds(now - last_) < 0.2) return;
      last_ = now;
      print(done, elapsed, false);
    } else {
      const int tenth = static_cast<int>(std::floor(done * 10.0 + 1e-9));
      if (tenth <= tenths_) return;
      tenths_ = tenth;
      print(done, elapsed, false);
    }
  }

private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

  void print(double done, double elapsed, bool last) {
    const double units = done * total_;
    const double rate = elapsed > 0 ? units / elapsed : 0;
    std::string eta;
    if (!last && done > 0) {
      const double left = elapsed * (1 - done) / done;
      eta = left < 100 ? std::to_string(static_cast<int>(std::ceil(left))) + " s"
                       : std::to_string(static_cast<int>(std::ceil(left / 60))) + " min";
    }
    std::fprintf(stderr, "%s%s: %3d%% | %.0f of %.0f %s | %.0f %s/s | %s%s", live_ ? "\r" : "", program_.c_str(),
                 static_cast<int>(std::floor(done * 100)), units, total_, unit_.c_str(), rate, unit_.c_str(),
                 last ? "done in " : "ETA ", last ? (std::to_string(static_cast<int>(std::lround(elapsed))) + " s").c_str()
                                               : eta.c_str());
    if (live_) std::fputs("\033[K", stderr);  // clears what is left of a longer line
    if (!live_ || last) std::fputc('\n', stderr);
    std::fflush(stderr);
    shown_ = true;
  }

  std::string program_, unit_;
  double total_;
  bool quiet_, live_;
  clock::time_point start_, last_;
  bool shown_ = false, finished_ = false;
  int tenths_ = 0;
};

/// A kinflow::progress_callback that reports to a new progress_meter (see its constructor).
[[nodiscard]] inline std::function<void(double)> progress_to_stderr(std::string program, std::string unit,
                                                                    double total, bool quiet) {
  if (quiet) return {};
  auto meter = std::make_shared<progress_meter>(std::move(program), std::move(unit), total, quiet);
  return [meter](double done) { (*meter)(done); };
}

}  // namespace kinflow_cli
