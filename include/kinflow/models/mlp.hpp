#pragma once
/// @file
/// @brief A trained multilayer perceptron as a velocity field, evaluated with Eigen.
///
/// Its loader from an `.npz` weight file, kinflow::load_mlp_field, is in
/// kinflow/models/mlp_npz.hpp (which documents the file's naming convention).
///
/// The network (L dense layers, weights `W_l` of shape out_l × in_l as in PyTorch's
/// `nn.Linear`, biases `b_l`):
///
///     h_0 = [x; φ(t)]            (an unconditional network)
///     h_0 = [x; φ(t); e(c)]      (a class-conditional network of K classes)
///     h_l = σ(W_l h_{l-1} + b_l)      l = 1 … L-1
///     v   = W_L h_{L-1} + b_L         (no activation after the last layer)
///
/// The activations σ (SiLU, ReLU, tanh, exact GELU) and the time features φ(t) (raw t or
/// a sinusoidal embedding), with the derivatives σ' the divergence uses, are defined in
/// kinflow/models/mlp_layers.hpp, which this header includes.
///
/// **Divergence.** `div v = Σ_r ∂v_r/∂x_r` (only the d state inputs are differentiated,
/// not the time features) is computed exactly by forward-mode differentiation: the tangents
/// `∂h_l/∂x_r` of all d coordinates are pushed through the layers together,
///
///     ∂h_1/∂x_r = σ'(z_1) ∘ W_1[:, r],   ∂h_l/∂x_r = σ'(z_l) ∘ (W_l ∂h_{l-1}/∂x_r),
///     div v     = Σ_r W_L[r, :] · ∂h_{L-1}/∂x_r
///
/// (`z_l` the pre-activations, `∘` elementwise), one matrix product per layer for the d
/// tangents of a tile of columns (σ' as in kinflow/models/mlp_layers.hpp). A divergence
/// costs about d times a forward pass.
///
/// **Classes.** A class-conditional network takes a one-hot code `e(c)` of K + 1 entries
/// after the time features: entry c for a class c in [0, K), and the last entry, K, for the
/// null class (kinflow::null_class, -1: the unconditional field, which training with label
/// dropout teaches it). `v(t, x)` of such a network is `v(t, x, -1)`. The code multiplies
/// only one column of the first weight, so it costs one column added per sample; it is
/// not differentiated (the divergence is over x).
///
/// The dimension d is the output size of the last layer; the first layer must take d +
/// (number of time features) inputs, plus K + 1 for a network of K classes.

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/models/mlp_evaluator.hpp"
#include "kinflow/models/mlp_layers.hpp"

namespace kinflow {

/// A multilayer perceptron velocity field `v(x, t) = MLP([x; φ(t)])` (see the file
/// documentation for the exact network, and kinflow/models/mlp_layers.hpp for the
/// activations and time features).
///
/// A batched velocity field: `field(t, X, V)` and `field.velocity_at_times(T, X, V)` plug
/// into every integrator; `divergence(t, X, D)` and `divergence_at_times(T, X, D)` give the
/// exact divergence (forward mode, see the file documentation). A batch is evaluated in
/// tiles of tile_columns() columns, one matrix product per layer and tile, so that a
/// tile's activations stay in cache. The
/// input and the activations live in buffers owned by the field; they grow to the largest
/// batch seen and are then reused, so calls with that batch size or smaller do not
/// allocate. Because of those buffers a field object must not be called from two threads
/// at once; copy it per thread (a copy holds the weights and the buffers as they are, so
/// copy before a first large call to keep it small).
///
/// The products run on the calling thread, through Eigen or BLAS (see
/// kinflow::matrix_products; the constructor's @p products).
///
/// To read one from an `.npz` weight file, see kinflow::load_mlp_field
/// (kinflow/models/mlp_npz.hpp).
///
/// @tparam Scalar float or double: the scalar of the weights and of the arithmetic
/// (load_mlp_field converts the file's weights to it)
template <class Scalar = double>
class mlp_field : private detail::mlp_evaluator<Scalar> {
  using base = detail::mlp_evaluator<Scalar>;
  using base::activation_, base::blas_, base::class_shift_, base::classes_, base::code_size, base::dim_,
      base::divergence_tile, base::fill_input, base::folded_bias_, base::for_each_divergence_tile,
      base::for_each_tile, base::hidden_, base::last_rows_, base::layers_, base::phi_, base::plain_bias_,
      base::reserve, base::reserve_divergence, base::tile_, base::tile_from_input, base::time_;

public:
  using scalar_type = Scalar;  ///< the scalar of the weights and of the arithmetic
  using matrix_type = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;  ///< a matrix of Scalar
  using vector_type = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;               ///< a vector of Scalar

  /// Builds the field from its layers (applied in order), activation and time features.
  /// @param layers     the dense layers, first to last; the last one's rows give d
  /// @param activation σ, applied after every layer but the last
  /// @param time       how time enters (default: raw t, one feature)
  /// @param products   which library computes the products (kinflow::matrix_products)
  /// @param classes    K > 0 for a class-conditional network (its first layer takes the
  ///                   one-hot code of K + 1 entries after the time features; see the file
  ///                   documentation), 0 for an unconditional one
  /// @throws kinflow::invalid_argument when the layers are empty, a bias does not match its
  ///         weight, consecutive layers do not chain, the first layer does not take d + time
  ///         features (+ K + 1) inputs (d = rows of the last weight), a weight, bias or
  ///         frequency is not finite, a sinusoidal embedding has no frequencies, @p classes
  ///         is negative, or @p products is matrix_products::blas in a build without BLAS
  mlp_field(std::vector<dense_layer<Scalar>> layers, mlp_activation activation,
            time_features<Scalar> time = {}, matrix_products products = matrix_products::automatic,
            Eigen::Index classes = 0)
      : base(std::move(layers), activation, std::move(time), detail::resolve_products(products, "products"), classes),
        products_(products) {
    detail::require(!layers_.empty(), "layers.size()", layers_.size(), "expected at least one layer");
    detail::require(classes_ >= 0, "classes", classes_, "expected 0 (an unconditional network) or more classes");
    detail::require(time_.encoding == time_encoding::raw || time_.frequencies.size() > 0,
                    "time.frequencies.size()", time_.frequencies.size(),
                    "expected at least one frequency for a sinusoidal time embedding");
    detail::require(time_.frequencies.allFinite(), "time.frequencies", "(non-finite entry)",
                    "expected finite frequencies");
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const auto& L = layers_[l];
      const std::string name = "layers[" + std::to_string(l) + "]";
      detail::require(L.weight.rows() > 0 && L.weight.cols() > 0, name + ".weight.rows() x cols()",
                      std::to_string(L.weight.rows()) + " x " + std::to_string(L.weight.cols()),
                      "expected a non-empty weight matrix");
      detail::require(L.bias.size() == L.weight.rows(), name + ".bias.size()", L.bias.size(),
                      "expected the number of rows of " + name + ".weight (" +
                          std::to_string(L.weight.rows()) + ")");
      detail::require(L.weight.allFinite() && L.bias.allFinite(), name, "(non-finite entry)",
                      "expected finite weights and biases");
      if (l > 0)
        detail::require(L.weight.cols() == layers_[l - 1].weight.rows(), name + ".weight.cols()",
                        L.weight.cols(),
                        "expected the output size of the previous layer (" +
                            std::to_string(layers_[l - 1].weight.rows()) + ")");
    }
    dim_ = layers_.back().weight.rows();
    detail::require(layers_.front().weight.cols() == dim_ + time_.size() + code_size(), "layers[0].weight.cols()",
                    layers_.front().weight.cols(),
                    "expected dim + time features" + std::string(classes_ > 0 ? " + classes + 1" : "") + " = " +
                        std::to_string(dim_) + " + " + std::to_string(time_.size()) +
                        (classes_ > 0 ? " + " + std::to_string(code_size()) : std::string()) +
                        " (dim = rows of the last layer's weight)");
    plain_bias_ = layers_.front().bias;
    if (classes_ > 0) {
      const auto code = layers_.front().weight.rightCols(classes_ + 1);
      plain_bias_ += code.col(classes_);
      class_shift_ = code.leftCols(classes_).colwise() - code.col(classes_);
    }
    hidden_.resize(layers_.size());
    phi_.resize(time_.size());
    folded_bias_.resize(layers_.front().weight.rows());
    Eigen::Index widest = 1;
    for (std::size_t l = 0; l + 1 < layers_.size(); ++l) widest = std::max(widest, layers_[l].weight.rows());
    last_rows_ = layers_.back().weight.transpose();
    const auto per_column = static_cast<Eigen::Index>(sizeof(Scalar)) * widest;
    tile_ = std::clamp<Eigen::Index>(Eigen::Index{256 * 1024} / per_column, 64, 1 << 20);
  }

  /// The dimension d of x and v.
  [[nodiscard]] Eigen::Index dim() const noexcept { return dim_; }
  /// The layers, in order.
  [[nodiscard]] const std::vector<dense_layer<Scalar>>& layers() const noexcept { return layers_; }
  /// The activation between layers.
  [[nodiscard]] mlp_activation activation() const noexcept { return activation_; }
  /// The time features.
  [[nodiscard]] const time_features<Scalar>& time() const noexcept { return time_; }
  /// Which library computes the products (as given to the constructor).
  [[nodiscard]] matrix_products products() const noexcept { return products_; }
  /// The number K of classes of a class-conditional network (0: unconditional); class
  /// indices run over [0, K), and -1 is the null class.
  [[nodiscard]] Eigen::Index classes() const noexcept { return classes_; }

  /// Batched velocities at one time @p t: `V.col(j) = v(X.col(j), t)`. V must be d × B.
  /// (For a class-conditional network: the null class, `v(X.col(j), t, -1)`.)
  ///
  /// The time features are then the same in every column, so their share of the first
  /// layer is folded into its bias, `W·[x; φ(t)] + b = W_x·x + (W_φ·φ(t) + b)`, and the
  /// first product runs over the d state rows only (when X holds the field's scalar in
  /// memory Eigen can read directly, as the integrators' batches do). The result equals
  /// velocity_at_times() with a constant T up to rounding (the sums are ordered
  /// differently).
  /// @param t the time, the same for every column
  /// @param X the states, d × B (one sample per column; any scalar, cast to Scalar)
  /// @param V the velocities, d × B
  /// @throws kinflow::dimension_mismatch when X or V is not d × B
  template <class DerivedX, class DerivedV>
  void operator()(Scalar t, const Eigen::MatrixBase<DerivedX>& X, Eigen::MatrixBase<DerivedV>& V) const {
    velocity_impl(t, nullptr, X, V, nullptr);
  }

  /// Batched velocities with one time per column: `V.col(j) = v(X.col(j), T(j))`.
  /// @param T the times, one per column of X
  /// @param X the states, d × B
  /// @param V the velocities, d × B
  /// @throws kinflow::dimension_mismatch when X or V is not d × B or T.size() != B
  template <class DerivedX, class DerivedV>
  void velocity_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                         Eigen::MatrixBase<DerivedV>& V) const {
    detail::require_dimension("number of times", T.size(), X.cols());
    velocity_impl(Scalar(0), &T, X, V, nullptr);
  }

  /// Class-conditional velocities at one time: `V.col(j) = v(X.col(j), t, C(j))`
  /// (kinflow::batched_conditional_field; C(j) = -1 is the null class).
  /// @throws kinflow::invalid_argument when a class is outside [-1, classes()) (an
  ///         unconditional network takes only -1)
  /// @throws kinflow::dimension_mismatch when X or V is not d × B or C.size() != B
  template <class DerivedX, class DerivedV>
  void operator()(Scalar t, const Eigen::MatrixBase<DerivedX>& X, const class_labels& C,
                  Eigen::MatrixBase<DerivedV>& V) const {
    check_classes(C, X.cols());
    velocity_impl(t, nullptr, X, V, &C);
  }

  /// Class-conditional velocities with one time per column: `V.col(j) = v(X.col(j), T(j), C(j))`.
  /// @throws as operator()(t, X, C, V), and kinflow::dimension_mismatch when T.size() != B
  template <class DerivedX, class DerivedV>
  void velocity_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                         const class_labels& C, Eigen::MatrixBase<DerivedV>& V) const {
    detail::require_dimension("number of times", T.size(), X.cols());
    check_classes(C, X.cols());
    velocity_impl(Scalar(0), &T, X, V, &C);
  }

  /// The unconditional and the conditional velocities of the same states:
  /// `U.col(j) = v(X.col(j), t, -1)`, `Vc.col(j) = v(X.col(j), t, C(j))`; U and Vc are
  /// resized (kinflow::conditional_pair_field, which guidance uses).
  /// @throws as operator()(t, X, C, V)
  template <class DerivedX, class DerivedU, class DerivedC>
  void velocity_pair(Scalar t, const Eigen::MatrixBase<DerivedX>& X, const class_labels& C,
                     Eigen::PlainObjectBase<DerivedU>& U, Eigen::PlainObjectBase<DerivedC>& Vc) const {
    check_classes(C, X.cols());
    U.resize(dim_, X.cols());
    Vc.resize(dim_, X.cols());
    velocity_impl(t, nullptr, X, U.derived(), nullptr);
    velocity_impl(t, nullptr, X, Vc.derived(), &C);
  }

  /// velocity_pair() with one time per column.
  /// @throws as velocity_at_times(T, X, C, V)
  template <class DerivedX, class DerivedU, class DerivedC>
  void velocity_pair_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                              const class_labels& C, Eigen::PlainObjectBase<DerivedU>& U,
                              Eigen::PlainObjectBase<DerivedC>& Vc) const {
    detail::require_dimension("number of times", T.size(), X.cols());
    check_classes(C, X.cols());
    U.resize(dim_, X.cols());
    Vc.resize(dim_, X.cols());
    velocity_impl(Scalar(0), &T, X, U.derived(), nullptr);
    velocity_impl(Scalar(0), &T, X, Vc.derived(), &C);
  }

  /// velocity_pair() and the exact divergences of both velocities (`Du`, `Dc`, resized)
  /// (kinflow::conditional_pair_divergence_field: the exact log-likelihood of a guided solve).
  /// @throws as velocity_pair()
  template <class DerivedX, class DerivedU, class DerivedC>
  void velocity_pair_and_divergence(Scalar t, const Eigen::MatrixBase<DerivedX>& X, const class_labels& C,
                                    Eigen::PlainObjectBase<DerivedU>& U, Eigen::PlainObjectBase<DerivedC>& Vc,
                                    per_sample<Scalar>& Du, per_sample<Scalar>& Dc) const {
    velocity_pair(t, X, C, U, Vc);
    divergence_impl(t, nullptr, X, Du, nullptr);
    divergence_impl(t, nullptr, X, Dc, &C);
  }

  /// velocity_pair_and_divergence() with one time per column.
  template <class DerivedX, class DerivedU, class DerivedC>
  void velocity_pair_and_divergence_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                                             const class_labels& C, Eigen::PlainObjectBase<DerivedU>& U,
                                             Eigen::PlainObjectBase<DerivedC>& Vc, per_sample<Scalar>& Du,
                                             per_sample<Scalar>& Dc) const {
    velocity_pair_at_times(T, X, C, U, Vc);
    divergence_impl(Scalar(0), &T, X, Du, nullptr);
    divergence_impl(Scalar(0), &T, X, Dc, &C);
  }

  /// Exact divergence at one time @p t: `D(j) = div v(X.col(j), t)` by forward-mode
  /// differentiation (see the file documentation); D is resized to X.cols(). The time
  /// features are folded into the first bias as in operator(). Tiles of
  /// divergence_tile_columns() columns; the tangent buffers (about the size of the
  /// activation buffers) grow to the largest batch seen and are then reused, as for
  /// velocities. (Eigen's products may still allocate their packing space for some shapes,
  /// when it exceeds Eigen's stack limit.) (kinflow::divergence_field.)
  /// @param t the time, the same for every column
  /// @param X the states, d × B
  /// @param D the divergences, resized to B
  /// @throws kinflow::dimension_mismatch when X does not have d rows
  template <class DerivedX>
  void divergence(Scalar t, const Eigen::MatrixBase<DerivedX>& X, per_sample<Scalar>& D) const {
    divergence_impl(t, nullptr, X, D, nullptr);
  }

  /// Exact divergence with one time per column: `D(j) = div v(X.col(j), T(j))`.
  /// (kinflow::per_column_time_divergence_field.)
  /// @param T the times, one per column of X
  /// @param X the states, d × B
  /// @param D the divergences, resized to B
  /// @throws kinflow::dimension_mismatch when X does not have d rows or T.size() != B
  template <class DerivedX>
  void divergence_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                           per_sample<Scalar>& D) const {
    detail::require_dimension("number of times", T.size(), X.cols());
    divergence_impl(Scalar(0), &T, X, D, nullptr);
  }

  /// Exact divergence of the class-conditional velocity: `D(j) = div_x v(X.col(j), t, C(j))`.
  /// @throws as operator()(t, X, C, V)
  template <class DerivedX>
  void divergence(Scalar t, const Eigen::MatrixBase<DerivedX>& X, const class_labels& C,
                  per_sample<Scalar>& D) const {
    check_classes(C, X.cols());
    divergence_impl(t, nullptr, X, D, &C);
  }

  /// Exact divergence of every column of X at time @p t, returned (allocates the result).
  /// @throws kinflow::dimension_mismatch when X does not have d rows
  template <class DerivedX>
  [[nodiscard]] per_sample<Scalar> divergence(Scalar t, const Eigen::MatrixBase<DerivedX>& X) const {
    per_sample<Scalar> D;
    divergence(t, X, D);
    return D;
  }

  /// Columns per tile of a divergence: about tile_columns() / d (at least 1), so that the
  /// d tangents of a tile take about as much memory as a tile of the forward pass.
  [[nodiscard]] Eigen::Index divergence_tile_columns() const noexcept { return base::divergence_tile_width(); }

  /// Columns evaluated together: the batch is processed in tiles of this many columns so
  /// that a tile's activations (about 256 KiB per hidden layer) stay in cache between
  /// layers.
  [[nodiscard]] Eigen::Index tile_columns() const noexcept { return tile_; }

  /// Per-sample convenience: the velocity v(x, t) of one point (allocates; for tests and
  /// tools).
  /// @throws kinflow::dimension_mismatch when x.size() != d
  [[nodiscard]] vector_type operator()(Scalar t, const vector_type& x) const {
    matrix_type V(dim_, 1);
    (*this)(t, x, V);
    return V.col(0);
  }

private:
  // Classes of a conditional call: one per column, each in [-1, classes()).
  void check_classes(const class_labels& C, Eigen::Index B) const {
    detail::require_dimension("number of classes C (one per column of X)", C.size(), B);
    for (Eigen::Index j = 0; j < C.size(); ++j)
      if (C(j) < null_class || C(j) >= classes_)
        throw invalid_argument(detail::invalid_message(
            "classes[" + std::to_string(j) + "]", C(j),
            classes_ > 0 ? "expected a class in [0, " + std::to_string(classes_) + ") or -1 (unconditional)"
                         : std::string("expected -1: the network takes no class input (it was built with "
                                       "classes = 0)")));
  }

  // Velocities at one time (T null) or one time per column; C null: the null class.
  template <class DerivedX, class DerivedV>
  void velocity_impl(Scalar t, const sample_times<Scalar>* T, const Eigen::MatrixBase<DerivedX>& X,
                     Eigen::MatrixBase<DerivedV>& V, const class_labels* C) const {
    check_shapes(X, V);
    reserve(X.cols());
    const detail::blas_single_thread_scope single_threaded_blas(blas_);
    with_first_layer(t, T, X, [this, &X, &V, C](const auto& w, const auto& b, const auto& columns) {
      this->for_each_tile(X.cols(), [this, &w, &b, &columns, &V, C](Eigen::Index c0, Eigen::Index n) {
        this->tile_from_input(w, b, columns(c0, n), V.derived().middleCols(c0, n), n, C, c0);
      });
    });
  }

  // Exact divergences at one time (T null) or one time per column; C null: the null class.
  template <class DerivedX>
  void divergence_impl(Scalar t, const sample_times<Scalar>* T, const Eigen::MatrixBase<DerivedX>& X,
                       per_sample<Scalar>& D, const class_labels* C) const {
    detail::require_dimension("state dimension (rows of X)", X.rows(), dim_);
    D.resize(X.cols());
    reserve(X.cols());
    reserve_divergence(X.cols());
    const detail::blas_single_thread_scope single_threaded_blas(blas_);
    with_first_layer(t, T, X, [this, &X, &D, C](const auto& w, const auto& b, const auto& columns) {
      this->for_each_divergence_tile(X.cols(), [this, &w, &b, &columns, &D, C](Eigen::Index c0, Eigen::Index n) {
        this->divergence_tile(w, b, columns(c0, n), D, c0, n, C);
      });
    });
  }

  // Calls tiles(w, b, columns) with the first layer's weight w and bias b as the tiles see
  // them and columns(c0, n), the input columns [c0, c0 + n): at one time with X of the
  // field's scalar in memory Eigen can read directly (the integrators' batches), X itself,
  // with the time features folded into the bias (`W·[x; φ(t)] + b = W_x·x + (W_φ·φ(t) + b)`);
  // otherwise the input buffer [x; φ] and the weight's state and time columns. The bias
  // holds the null class's column (classes are added per tile).
  template <class DerivedX, class Tiles>
  void with_first_layer(Scalar t, const sample_times<Scalar>* T, const Eigen::MatrixBase<DerivedX>& X,
                        const Tiles& tiles) const {
    const auto& first = layers_.front();
    if constexpr (std::is_same_v<typename DerivedX::Scalar, Scalar> &&
                  bool(std::remove_cvref_t<DerivedX>::Flags & Eigen::DirectAccessBit)) {
      if (T == nullptr) {
        detail::mlp_time_features(time_, t, phi_);
        folded_bias_.noalias() = first.weight.middleCols(dim_, time_.size()) * phi_;
        folded_bias_ += plain_bias_;
        tiles(first.weight.leftCols(dim_), folded_bias_,
              [&](Eigen::Index c0, Eigen::Index n) { return X.derived().middleCols(c0, n); });
        return;
      }
    }
    const auto in = fill_input(t, T, X);
    tiles(first.weight.leftCols(dim_ + time_.size()), plain_bias_,
          [&](Eigen::Index c0, Eigen::Index n) { return in.middleCols(c0, n); });
  }

  template <class DerivedX, class DerivedV>
  void check_shapes(const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedV>& V) const {
    detail::require_dimension("state dimension (rows of X)", X.rows(), dim_);
    detail::require_dimension("rows of V", V.rows(), dim_);
    detail::require_dimension("columns of V", V.cols(), X.cols());
  }

  matrix_products products_;
};

}  // namespace kinflow
