// Closed-form field evaluation: kinflow::empirical_field against, in the same run,
//  - the obvious Eigen version: the full N x B matrix from one GEMM, a column softmax with
//    Eigen's exp, a second GEMM for the means (the same two products kinflow does, without
//    blocking, threads beyond a column split, or the streaming log-sum-exp);
//  - a plain Eigen GEMM of the same shape (Yᵀ X, N x d times d x B): this machine's GEMM rate.
//
// Sizes from the issue: (d = 2, N = 1024, B = 4096) and (d = 1024, N = 1024, B = 1024), float
// and double, on 1 thread and on all hardware threads (the peers split the columns over as
// many std::threads). Counters (per second): pairs (sample-training pairs) and GFLOP
// (effective, 4·B·N·d per field evaluation, 2·B·N·d per GEMM). A summary at the end
// prints, per configuration, ns per pair, the speed-up over the obvious version and the
// fraction of the GEMM rate.
//
// smoke-filter: ^smoke/
#include <benchmark/benchmark.h>

#include <kinflow/fields/empirical.hpp>

#include "bench_ratios.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

template <class Scalar>
using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

template <class Scalar>
const char* type_name() {
  return sizeof(Scalar) == 4 ? "float" : "double";
}

// Deterministic data: standard normal training set and samples.
template <class Scalar>
matrix<Scalar> normal_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> nd;
  matrix<Scalar> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(nd(gen));
  return m;
}

// The obvious Eigen version of the empirical velocity on columns [c0, c1): G = Yᵀ X (N x b),
// logits, column max, exp, sums, M = Y W, v = (m - x) / (1 - t). G is preallocated.
template <class Scalar>
void obvious_velocity(const matrix<Scalar>& Y, const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& yy,
                      const matrix<Scalar>& X, Scalar t, matrix<Scalar>& V, matrix<Scalar>& G,
                      matrix<Scalar>& M, Eigen::Index c0, Eigen::Index c1) {
  const Eigen::Index b = c1 - c0;
  const Scalar sigma = 1 - t, scale = Scalar(-0.5) / (sigma * sigma);
  const auto Xb = X.middleCols(c0, b);
  G.noalias() = Y.transpose() * Xb;
  const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> xx = Xb.colwise().squaredNorm();
  G = (((Scalar(-2) * t) * G).colwise() + (t * t) * yy).rowwise() + xx;
  G *= scale;
  const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> mx = G.colwise().maxCoeff();
  G = (G.rowwise() - mx).array().exp().matrix();
  const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> s = G.colwise().sum();
  M.noalias() = Y * G;
  V.middleCols(c0, b) = ((M.array().rowwise() / s.array()) - Xb.array()) / sigma;
}

struct config {
  Eigen::Index d, N, B;
  unsigned threads;
};

std::string config_name(const std::string& prefix, const std::string& kind, const char* type, const config& c) {
  return prefix + kind + "<" + type + ">/d:" + std::to_string(c.d) + "/N:" + std::to_string(c.N) +
         "/B:" + std::to_string(c.B) + "/threads:" + std::to_string(c.threads);
}

void set_counters(benchmark::State& state, const config& c, double flops_per_pair) {
  const double pairs = static_cast<double>(c.N) * static_cast<double>(c.B);
  state.counters["pairs"] = benchmark::Counter(pairs, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP"] = benchmark::Counter(flops_per_pair * static_cast<double>(c.d) * pairs * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

template <class Scalar>
void register_config(const std::string& prefix, const config& c) {
  const char* type = type_name<Scalar>();
  const Scalar t = Scalar(0.5);

  benchmark::RegisterBenchmark(config_name(prefix, "empirical", type, c).c_str(), [c, t](benchmark::State& state) {
    const matrix<Scalar> Y = normal_matrix<Scalar>(c.d, c.N, 1), X = normal_matrix<Scalar>(c.d, c.B, 2);
    kinflow::empirical_options<Scalar> opt;
    opt.threads = c.threads;
    const kinflow::empirical_field<Scalar> field(Y, opt);
    matrix<Scalar> V(c.d, c.B);
    for (auto _ : state) {
      field(t, X, V);
      benchmark::DoNotOptimize(V.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, c, 4);
  })->UseRealTime()->Unit(benchmark::kMillisecond);

  benchmark::RegisterBenchmark(config_name(prefix, "obvious", type, c).c_str(), [c, t](benchmark::State& state) {
    const matrix<Scalar> Y = normal_matrix<Scalar>(c.d, c.N, 1), X = normal_matrix<Scalar>(c.d, c.B, 2);
    const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> yy = Y.colwise().squaredNorm().transpose();
    const Eigen::Index chunk = (c.B + c.threads - 1) / c.threads;
    std::vector<matrix<Scalar>> G(c.threads), M(c.threads);
    for (unsigned w = 0; w < c.threads; ++w) {
      G[w].resize(c.N, chunk);
      M[w].resize(c.d, chunk);
    }
    matrix<Scalar> V(c.d, c.B);
    for (auto _ : state) {
      kinflow_bench::split_columns(c.B, c.threads, [&](Eigen::Index c0, Eigen::Index c1) {
        const auto w = static_cast<std::size_t>(c0 / chunk);
        G[w].resize(c.N, c1 - c0);
        M[w].resize(c.d, c1 - c0);
        obvious_velocity<Scalar>(Y, yy, X, t, V, G[w], M[w], c0, c1);
      });
      benchmark::DoNotOptimize(V.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, c, 4);
  })->UseRealTime()->Unit(benchmark::kMillisecond);

  benchmark::RegisterBenchmark(config_name(prefix, "gemm", type, c).c_str(), [c](benchmark::State& state) {
    const matrix<Scalar> Y = normal_matrix<Scalar>(c.d, c.N, 1), X = normal_matrix<Scalar>(c.d, c.B, 2);
    matrix<Scalar> C(c.N, c.B);
    for (auto _ : state) {
      kinflow_bench::split_columns(c.B, c.threads, [&](Eigen::Index c0, Eigen::Index c1) {
        C.middleCols(c0, c1 - c0).noalias() = Y.transpose() * X.middleCols(c0, c1 - c0);
      });
      benchmark::DoNotOptimize(C.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, c, 2);
  })->UseRealTime()->Unit(benchmark::kMillisecond);
}

// Keeps every run's time and counters for the summary.
class summary_reporter : public benchmark::ConsoleReporter {
public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median") continue;
      auto& e = results_[r.run_name.function_name];
      e.seconds = r.GetAdjustedRealTime() * 1e-3;  // reported in milliseconds
      for (const auto& [name, counter] : r.counters) e.counters[name] = counter.value;
    }
  }
  struct entry {
    double seconds = 0;
    std::map<std::string, double> counters;
  };
  const entry* find(const std::string& name) const {
    const auto it = results_.find(name);
    return it == results_.end() ? nullptr : &it->second;
  }

private:
  std::map<std::string, entry> results_;
};

template <class Scalar>
void print_summary(const summary_reporter& rep, const std::string& prefix, const config& c) {
  const char* type = type_name<Scalar>();
  const auto* f = rep.find(config_name(prefix, "empirical", type, c));
  const auto* o = rep.find(config_name(prefix, "obvious", type, c));
  const auto* g = rep.find(config_name(prefix, "gemm", type, c));
  if (f == nullptr) return;
  const double ns_per_pair = f->seconds * 1e9 / (static_cast<double>(c.N) * static_cast<double>(c.B));
  std::printf("  %-6s d=%-5ld N=%-5ld B=%-5ld threads=%u: %7.3f ns/pair  %8.2f GFLOP/s", type,
              static_cast<long>(c.d), static_cast<long>(c.N), static_cast<long>(c.B), c.threads,
              ns_per_pair, f->counters.at("GFLOP"));
  if (o != nullptr) std::printf("  x%.2f vs obvious", o->seconds / f->seconds);
  if (g != nullptr)
    std::printf("  %5.1f%% of GEMM (%.2f GFLOP/s)", 100.0 * f->counters.at("GFLOP") / g->counters.at("GFLOP"),
                g->counters.at("GFLOP"));
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);  // products run on the threads each benchmark asks for, no more
  const unsigned all = std::max(1u, std::thread::hardware_concurrency());
  std::vector<config> configs;
  for (const unsigned threads : {1u, all}) {
    configs.push_back({2, 1024, 4096, threads});
    configs.push_back({1024, 1024, 1024, threads});
    if (all == 1) break;
  }
  const std::vector<config> smoke{{2, 64, 64, 1}, {64, 64, 32, 1}};
  for (const auto& c : configs) {
    register_config<float>("", c);
    register_config<double>("", c);
  }
  for (const auto& c : smoke) {
    register_config<float>("smoke/", c);
    register_config<double>("smoke/", c);
  }

  kinflow_bench::add_build_context();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  summary_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nSummary (same run): kinflow empirical field, speed-up over the obvious Eigen version,\n"
              "and its effective GFLOP/s as a fraction of a plain GEMM of the same shape:\n");
  for (const auto& c : configs) {
    print_summary<float>(reporter, "", c);
    print_summary<double>(reporter, "", c);
  }
  for (const auto& c : smoke) {
    print_summary<float>(reporter, "smoke/", c);
    print_summary<double>(reporter, "smoke/", c);
  }
  benchmark::Shutdown();
  return 0;
}
