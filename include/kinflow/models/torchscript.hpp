#pragma once
/// @file
/// @brief A TorchScript module as a velocity field (needs libtorch; not part of the umbrella
/// header and built only when Torch is found).
///
/// The module's `forward(t, x)` takes `t` of shape `[B]` and `x` of shape `[B, d]` and returns
/// the velocities `[B, d]`, the layout `examples/models/train_fm_mlp.py` exports. A kinflow
/// batch `d × B` (column-major, one sample per column) has exactly the memory layout of a
/// row-major `[B, d]` tensor, so the state is handed to the module without a copy; only the
/// output is copied back into `V`.
///
/// A class-conditional module, `forward(t, x, c)` with `c` an int64 tensor `[B]` of classes
/// (-1: the null class), is called by the conditional forms `field(t, X, C, V)` and
/// `field.velocity_at_times(T, X, C, V)`, so that kinflow::conditioned and kinflow::guided
/// take it (examples/models/train_conditional_mlp.py exports such a module).
///
/// The module is converted to the field's scalar type on loading (`module.to(kFloat32 or
/// kFloat64)`); evaluations run under `c10::InferenceMode` on the CPU.
///
/// Errors: a missing or unloadable file, and a module whose `forward` fails or does not
/// return a tensor, throw kinflow::model_file_error naming the file; an output of the wrong
/// shape throws kinflow::dimension_mismatch.

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow {

/// Options of kinflow::torchscript_field.
struct torchscript_options {
  /// Intra-op threads for libtorch; 0 leaves libtorch's setting alone. Note that libtorch's
  /// thread count is global to the process (`at::set_num_threads`).
  int threads = 0;
};

/// A velocity field wrapping a TorchScript module `forward(t[B], x[B, d]) -> v[B, d]`.
///
/// Batched (`field(t, X, V)`) and with a time per column (`field.velocity_at_times(T, X, V)`),
/// so it plugs into every integrator. Calls are not safe from two threads at once on one
/// object (the module and the staging buffers are shared); copy the field per thread.
///
/// @tparam Scalar float or double
template <class Scalar = double>
class torchscript_field {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "torchscript_field supports float and double");

public:
  /// Loads the module in @p path for a field of dimension @p dim.
  /// @param path    a TorchScript archive (`torch.jit.save`)
  /// @param dim     the dimension d of x and v (the module's is not checked until a call)
  /// @param options libtorch thread count
  /// @throws kinflow::model_file_error naming the file when it is missing or not a
  ///         TorchScript archive
  /// @throws kinflow::invalid_argument for dim < 1 or options.threads < 0
  torchscript_field(const std::string& path, Eigen::Index dim, torchscript_options options = {})
      : path_(path), dim_(dim) {
    detail::require(dim >= 1, "dim", dim, "expected a dimension >= 1");
    detail::require(options.threads >= 0, "torchscript_options::threads", options.threads,
                    "expected 0 (leave libtorch's setting) or a positive thread count");
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) detail::file_fail(path, {}, "no such file");
    try {
      module_ = torch::jit::load(path, torch::kCPU);
    } catch (const c10::Error& e) {
      detail::file_fail(path, {}, std::string("not a loadable TorchScript module: ") + e.what_without_backtrace());
    }
    module_.eval();
    module_.to(dtype());
    if (options.threads > 0) at::set_num_threads(options.threads);
  }

  /// The dimension d of x and v.
  [[nodiscard]] Eigen::Index dim() const noexcept { return dim_; }

  /// Batched velocities at one time @p t: `V.col(j) = v(X.col(j), t)`.
  /// @param t the time, the same for every column
  /// @param X the states, d × B (one sample per column)
  /// @param V the velocities, d × B, of the field's scalar type
  /// @throws kinflow::dimension_mismatch when X or V is not d × B, or the module returns
  ///         a tensor of another shape
  /// @throws kinflow::model_file_error naming the file when the module's forward fails or
  ///         does not return a tensor
  template <class DerivedX, class DerivedV>
  void operator()(Scalar t, const Eigen::MatrixBase<DerivedX>& X, Eigen::MatrixBase<DerivedV>& V) const {
    times_.resize(static_cast<std::size_t>(X.cols()));
    std::fill(times_.begin(), times_.end(), t);
    evaluate(X, V);
  }

  /// Batched velocities with one time per column: `V.col(j) = v(X.col(j), T(j))`.
  /// @param T the times, one per column of X
  /// @param X the states, d × B
  /// @param V the velocities, d × B
  /// @throws kinflow::dimension_mismatch when T.size() != B, or as operator()
  /// @throws kinflow::model_file_error as operator()
  template <class DerivedX, class DerivedV>
  void velocity_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                         Eigen::MatrixBase<DerivedV>& V) const {
    detail::require_dimension("number of times", T.size(), X.cols());
    times_.assign(T.data(), T.data() + T.size());
    evaluate(X, V);
  }

  /// Class-conditional velocities: `forward(t[B], x[B, d], c[B])` with `c` an int64
  /// tensor of each column's class (-1: the null class; kinflow::batched_conditional_field),
  /// as a module written by examples/models/train_conditional_mlp.py takes it. The classes
  /// are passed as they are: the module checks their range.
  /// @throws as operator()(t, X, V), and kinflow::dimension_mismatch when C.size() != B
  template <class DerivedX, class DerivedV>
  void operator()(Scalar t, const Eigen::MatrixBase<DerivedX>& X, const class_labels& C,
                  Eigen::MatrixBase<DerivedV>& V) const {
    detail::require_dimension("number of classes C (one per column of X)", C.size(), X.cols());
    times_.resize(static_cast<std::size_t>(X.cols()));
    std::fill(times_.begin(), times_.end(), t);
    evaluate(X, V, &C);
  }

  /// Class-conditional velocities with one time per column.
  /// @throws as operator()(t, X, C, V), and kinflow::dimension_mismatch when T.size() != B
  template <class DerivedX, class DerivedV>
  void velocity_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X, const class_labels& C,
                         Eigen::MatrixBase<DerivedV>& V) const {
    detail::require_dimension("number of times", T.size(), X.cols());
    detail::require_dimension("number of classes C (one per column of X)", C.size(), X.cols());
    times_.assign(T.data(), T.data() + T.size());
    evaluate(X, V, &C);
  }

private:
  static constexpr torch::Dtype dtype() {
    return std::is_same_v<Scalar, float> ? torch::kFloat32 : torch::kFloat64;
  }

  template <class DerivedX, class DerivedV>
  void evaluate(const Eigen::MatrixBase<DerivedX>& X, Eigen::MatrixBase<DerivedV>& V,
                const class_labels* C = nullptr) const {
    static_assert(std::is_same_v<typename DerivedV::Scalar, Scalar>, "V must hold the field's scalar");
    detail::require_dimension("state dimension (rows of X)", X.rows(), dim_);
    detail::require_dimension("rows of V", V.rows(), dim_);
    detail::require_dimension("columns of V", V.cols(), X.cols());
    const auto B = static_cast<std::int64_t>(X.cols());
    const auto d = static_cast<std::int64_t>(dim_);
    // A contiguous column-major d × B Scalar matrix is a row-major [B, d] tensor as it is.
    const Scalar* xdata = nullptr;
    if constexpr (std::is_same_v<typename DerivedX::Scalar, Scalar> &&
                  bool(std::remove_cvref_t<DerivedX>::Flags & Eigen::DirectAccessBit) &&
                  !bool(std::remove_cvref_t<DerivedX>::Flags & Eigen::RowMajorBit)) {
      if (X.derived().outerStride() == X.rows()) xdata = X.derived().data();
    }
    if (!xdata) {
      staging_.resize(dim_, X.cols());
      staging_ = X.template cast<Scalar>();
      xdata = staging_.data();
    }
    const auto opts = torch::TensorOptions().dtype(dtype());
    const torch::Tensor x = torch::from_blob(const_cast<Scalar*>(xdata), {B, d}, opts);
    const torch::Tensor t = torch::from_blob(times_.data(), {B}, opts);
    c10::InferenceMode guard;
    torch::jit::IValue out;
    try {
      if (C == nullptr) {
        out = module_.forward({t, x});
      } else {
        classes_.assign(C->data(), C->data() + C->size());
        const torch::Tensor c = torch::from_blob(classes_.data(), {B}, torch::TensorOptions().dtype(torch::kInt64));
        out = module_.forward({t, x, c});
      }
    } catch (const std::exception& e) {
      std::string what = e.what();
      if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) what = ce->what_without_backtrace();
      detail::file_fail(path_, {}, C == nullptr ? "forward(t[B], x[B, d]) failed (expected the signature "
                                                  "forward(t: Tensor[B], x: Tensor[B, d]) -> Tensor[B, d]): " +
                                                      last_line(what)
                                                : "forward(t[B], x[B, d], c[B]) failed (expected a class-conditional "
                                                  "module, forward(t: Tensor[B], x: Tensor[B, d], c: Tensor[B]) -> "
                                                  "Tensor[B, d]): " + last_line(what));
    }
    if (!out.isTensor())
      detail::file_fail(path_, {}, "forward returned " + out.tagKind() + ", expected a Tensor[B, d]");
    torch::Tensor v = out.toTensor();
    if (v.dim() != 2 || v.size(0) != B || v.size(1) != d) {
      std::string shape = "[";
      for (std::int64_t k = 0; k < v.dim(); ++k) shape += (k ? ", " : "") + std::to_string(v.size(k));
      throw dimension_mismatch("kinflow: " + path_ + ": forward returned a tensor of shape " + shape +
                               "], expected [" + std::to_string(B) + ", " + std::to_string(d) + "]");
    }
    v = v.to(dtype()).contiguous();
    if constexpr (bool(std::remove_cvref_t<DerivedV>::Flags & Eigen::DirectAccessBit) &&
                  !bool(std::remove_cvref_t<DerivedV>::Flags & Eigen::RowMajorBit)) {
      if (V.derived().outerStride() == V.rows()) {
        std::memcpy(V.derived().data(), v.data_ptr<Scalar>(), sizeof(Scalar) * static_cast<std::size_t>(B * d));
        return;
      }
    }
    V = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>(v.data_ptr<Scalar>(), dim_, X.cols());
  }

  // The TorchScript interpreter puts a traceback through the module's code before the error
  // itself; the error is its last non-empty line, and the message stays one line.
  static std::string last_line(const std::string& what) {
    const std::size_t end = what.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return what;
    const std::size_t newline = what.find_last_of('\n', end);
    const std::size_t begin = newline == std::string::npos ? 0 : newline + 1;
    return what.substr(begin, end + 1 - begin);
  }

  std::string path_;
  Eigen::Index dim_;
  // An evaluation changes none of the field's meaning, only the module's run state and the
  // buffers: they are mutable, and the calls const (so that conditioned and guided, which
  // hold a field as const, take it).
  mutable torch::jit::script::Module module_;
  mutable std::vector<Scalar> times_;
  mutable std::vector<std::int64_t> classes_;  // the classes of a conditional call, as int64
  mutable Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> staging_;
};

}  // namespace kinflow
