#pragma once
// Shared by kinflow's benchmark programs: runs the registered benchmarks with the console
// reporter and then prints ratios between pairs of them measured in the same run, e.g.
// "kinflow RK4 / hand-written RK4 = 1.04". Pairs are matched by name after substituting
// one token, so a benchmark "BM_rk4<kinflow>/100000" is compared with
// "BM_rk4<handwritten>/100000". With --benchmark_repetitions the median is used.

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#ifndef KINFLOW_BENCH_FLAGS
#define KINFLOW_BENCH_FLAGS "unknown"  // (bench/CMakeLists.txt defines the build's flags)
#endif

namespace kinflow_bench {

/// Runs `body(c0, c1)` on contiguous column ranges of [0, B) split over `threads`
/// std::threads (the calling thread takes the first range). For the hand-written peers,
/// which must not depend on kinflow's own parallel machinery.
template <class Body>
void split_columns(Eigen::Index B, unsigned threads, const Body& body) {
  if (threads <= 1) {
    body(Eigen::Index(0), B);
    return;
  }
  std::vector<std::thread> pool;
  const Eigen::Index chunk = (B + threads - 1) / threads;
  for (unsigned w = 1; w < threads; ++w) {
    const Eigen::Index c0 = std::min<Eigen::Index>(B, w * chunk), c1 = std::min<Eigen::Index>(B, c0 + chunk);
    if (c0 < c1) pool.emplace_back([&body, c0, c1] { body(c0, c1); });
  }
  body(Eigen::Index(0), std::min(B, chunk));
  for (auto& th : pool) th.join();
}

/// Collects real time per benchmark (the median aggregate when repetitions are used).
class collecting_reporter : public benchmark::ConsoleReporter {
public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      const std::string name = r.run_name.str();
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name == "median") median_[r.run_name.str()] = r.GetAdjustedRealTime();
      } else {
        single_[name] = r.GetAdjustedRealTime();
      }
    }
  }
  /// Median if repetitions were run, else the single run; negative when absent.
  [[nodiscard]] double time(const std::string& name) const {
    if (auto it = median_.find(name); it != median_.end()) return it->second;
    if (auto it = single_.find(name); it != single_.end()) return it->second;
    return -1;
  }
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& [k, v] : single_) n.push_back(k);
    for (const auto& [k, v] : median_)
      if (!single_.count(k)) n.push_back(k);
    return n;
  }

private:
  std::map<std::string, double> single_, median_;
};

/// One ratio to print: every benchmark whose name contains `numerator` is compared with
/// the benchmark named the same with `numerator` replaced by `denominator`.
struct ratio_spec {
  std::string numerator, denominator, label;
};

/// The CPU's model name (Linux's /proc/cpuinfo; "unknown" elsewhere): Google Benchmark
/// prints only the core count and clock.
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
  }
  return "unknown";
}

/// Adds the CPU model and kinflow's build (compiler, flags, BLAS) to the context Google
/// Benchmark prints before the table. Call before benchmark::Initialize.
inline void add_build_context() {
  benchmark::AddCustomContext("cpu model", cpu_model());
  benchmark::AddCustomContext("kinflow build", KINFLOW_BENCH_FLAGS " (the last -O counts)");
}

/// Runs the benchmarks and prints the ratio table. Use as the body of main().
inline int run_with_ratios(int argc, char** argv, const std::vector<ratio_spec>& ratios) {
  add_build_context();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nRatios (same run; time of first / time of second; < 1 means faster):\n");
  bool any = false;
  for (const auto& spec : ratios) {
    for (const auto& name : reporter.names()) {
      const auto at = name.find(spec.numerator);
      if (at == std::string::npos) continue;
      std::string other = name;
      other.replace(at, spec.numerator.size(), spec.denominator);
      const double a = reporter.time(name), b = reporter.time(other);
      if (a <= 0 || b <= 0) continue;
      std::printf("  %-58s %-10s %6.3f\n", name.c_str(), spec.label.c_str(), a / b);
      any = true;
    }
  }
  if (!any) std::printf("  (no pairs ran)\n");
  benchmark::Shutdown();
  return 0;
}

}  // namespace kinflow_bench
