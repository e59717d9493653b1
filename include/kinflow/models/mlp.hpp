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
///     h_0 = [x; φ(t)]
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
/// The dimension d is the output size of the last layer; the first layer must take d +
/// (number of time features) inputs.

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
class mlp_field {
public:
  using scalar_type = Scalar;  ///< the scalar of the weights and of the arithmetic
  using matrix_type = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;  ///< a matrix of Scalar
  using vector_type = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;               ///< a vector of Scalar

  /// Builds the field from its layers (applied in order), activation and time features.
  /// @param layers     the dense layers, first to last; the last one's rows give d
  /// @param activation σ, applied after every layer but the last
  /// @param time       how time enters (default: raw t, one feature)
  /// @param products   which library computes the products (kinflow::matrix_products)
  /// @throws kinflow::invalid_argument when the layers are empty, a bias does not match its
  ///         weight, consecutive layers do not chain, the first layer does not take d + time
  ///         features inputs (d = rows of the last weight), a weight, bias or frequency is
  ///         not finite, a sinusoidal embedding has no frequencies, or @p products is
  ///         matrix_products::blas in a build without BLAS
  mlp_field(std::vector<dense_layer<Scalar>> layers, mlp_activation activation,
            time_features<Scalar> time = {}, matrix_products products = matrix_products::automatic)
      : layers_(std::move(layers)), activation_(activation), time_(std::move(time)),
        products_(products), blas_(detail::resolve_products(products, "products")) {
    detail::require(!layers_.empty(), "layers.size()", layers_.size(), "expected at least one layer");
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
    detail::require(layers_.front().weight.cols() == dim_ + time_.size(), "layers[0].weight.cols()",
                    layers_.front().weight.cols(),
                    "expected dim + time features = " + std::to_string(dim_) + " + " +
                        std::to_string(time_.size()) + " (dim = rows of the last layer's weight)");
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

  /// Batched velocities at one time @p t: `V.col(j) = v(X.col(j), t)`. V must be d × B.
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
  void operator()(Scalar t, const Eigen::MatrixBase<DerivedX>& X,
                  Eigen::MatrixBase<DerivedV>& V) const {
    check_shapes(X, V);
    reserve(X.cols());
    detail::mlp_time_features(time_, t, phi_);
    const detail::blas_single_thread_scope single_threaded_blas(blas_);
    if constexpr (std::is_same_v<typename DerivedX::Scalar, Scalar> &&
                  bool(std::remove_cvref_t<DerivedX>::Flags & Eigen::DirectAccessBit)) {
      const auto& first = layers_.front();
      folded_bias_.noalias() = first.weight.rightCols(time_.size()) * phi_;
      folded_bias_ += first.bias;
      for_each_tile(X.cols(), [&](Eigen::Index c0, Eigen::Index n) {
        tile_from_input(first.weight.leftCols(dim_), folded_bias_, X.derived().middleCols(c0, n),
                        V.derived().middleCols(c0, n), n);
      });
    } else {
      auto in = input_.leftCols(X.cols());
      in.topRows(dim_) = X.template cast<Scalar>();
      in.bottomRows(time_.size()).colwise() = phi_;
      for_each_tile(X.cols(), [&](Eigen::Index c0, Eigen::Index n) {
        tile_from_input(layers_[0].weight, layers_[0].bias, in.middleCols(c0, n), V.derived().middleCols(c0, n), n);
      });
    }
  }

  /// Batched velocities with one time per column: `V.col(j) = v(X.col(j), T(j))`.
  /// @param T the times, one per column of X
  /// @param X the states, d × B
  /// @param V the velocities, d × B
  /// @throws kinflow::dimension_mismatch when X or V is not d × B or T.size() != B
  template <class DerivedX, class DerivedV>
  void velocity_at_times(const sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                         Eigen::MatrixBase<DerivedV>& V) const {
    check_shapes(X, V);
    detail::require_dimension("number of times", T.size(), X.cols());
    reserve(X.cols());
    const detail::blas_single_thread_scope single_threaded_blas(blas_);
    auto in = input_.leftCols(X.cols());
    in.topRows(dim_) = X.template cast<Scalar>();
    detail::mlp_time_rows(time_, T, in, dim_);
    for_each_tile(X.cols(), [&](Eigen::Index c0, Eigen::Index n) {
      tile_from_input(layers_[0].weight, layers_[0].bias, in.middleCols(c0, n), V.derived().middleCols(c0, n), n);
    });
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
    detail::require_dimension("state dimension (rows of X)", X.rows(), dim_);
    D.resize(X.cols());
    reserve(X.cols());
    reserve_divergence(X.cols());
    detail::mlp_time_features(time_, t, phi_);
    const detail::blas_single_thread_scope single_threaded_blas(blas_);
    const auto& first = layers_.front();
    if constexpr (std::is_same_v<typename DerivedX::Scalar, Scalar> &&
                  bool(std::remove_cvref_t<DerivedX>::Flags & Eigen::DirectAccessBit)) {
      folded_bias_.noalias() = first.weight.rightCols(time_.size()) * phi_;
      folded_bias_ += first.bias;
      for_each_divergence_tile(X.cols(), [&](Eigen::Index c0, Eigen::Index n) {
        divergence_tile(first.weight.leftCols(dim_), folded_bias_, X.derived().middleCols(c0, n), D, c0, n);
      });
    } else {
      auto in = input_.leftCols(X.cols());
      in.topRows(dim_) = X.template cast<Scalar>();
      in.bottomRows(time_.size()).colwise() = phi_;
      for_each_divergence_tile(X.cols(), [&](Eigen::Index c0, Eigen::Index n) {
        divergence_tile(first.weight, first.bias, in.middleCols(c0, n), D, c0, n);
      });
    }
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
    detail::require_dimension("state dimension (rows of X)", X.rows(), dim_);
    detail::require_dimension("number of times", T.size(), X.cols());
    D.resize(X.cols());
    reserve(X.cols());
    reserve_divergence(X.cols());
    const detail::blas_single_thread_scope single_threaded_blas(blas_);
    auto in = input_.leftCols(X.cols());
    in.topRows(dim_) = X.template cast<Scalar>();
    detail::mlp_time_rows(time_, T, in, dim_);
    for_each_divergence_tile(X.cols(), [&](Eigen::Index c0, Eigen::Index n) {
      divergence_tile(layers_[0].weight, layers_[0].bias, in.middleCols(c0, n), D, c0, n);
    });
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
  [[nodiscard]] Eigen::Index divergence_tile_columns() const noexcept {
    return std::max<Eigen::Index>(1, tile_ / std::max<Eigen::Index>(dim_, 1));
  }

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
  template <class DerivedX, class DerivedV>
  void check_shapes(const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedV>& V) const {
    detail::require_dimension("state dimension (rows of X)", X.rows(), dim_);
    detail::require_dimension("rows of V", V.rows(), dim_);
    detail::require_dimension("columns of V", V.cols(), X.cols());
  }

  // Buffers for a batch of B columns: the input (all columns) and one tile of every hidden
  // layer. They only grow, so smaller batches (e.g. an integrator's last tile) reuse them.
  void reserve(Eigen::Index B) const {
    const Eigen::Index rows = dim_ + time_.size();
    if (input_.rows() != rows || input_.cols() < B) input_.resize(rows, B);
    const Eigen::Index width = std::min(B, tile_);
    for (std::size_t l = 0; l + 1 < layers_.size(); ++l)
      if (hidden_[l].rows() != layers_[l].weight.rows() || hidden_[l].cols() < width)
        hidden_[l].resize(layers_[l].weight.rows(), width);
  }

  template <class Body>
  void for_each_tile(Eigen::Index B, const Body& body) const {
    for (Eigen::Index c0 = 0; c0 < B; c0 += tile_) body(c0, std::min(tile_, B - c0));
  }

  // One tile of n columns: the first layer `W·x + b` (W and b possibly with the time
  // features folded in), then the rest of the net, into `out`.
  template <class W, class Bias, class In, class Out>
  void tile_from_input(const W& w, const Bias& b, const In& x, Out&& out, Eigen::Index n) const {
    using T = typename std::remove_cvref_t<Out>::Scalar;
    if (layers_.size() == 1) {  // (no noalias: on the folded path x is the caller's X, which may be V)
      out = (w * x).template cast<T>();
      out.colwise() += b.template cast<T>();
      return;
    }
    auto h = hidden_[0].leftCols(n);
    detail::product_into(w, x, h, false, blas_);
    h.colwise() += b;
    detail::mlp_activate(activation_, h);
    // Layers 1 … L-1 on the tile's hidden activations.
    const std::size_t L = layers_.size();
    for (std::size_t l = 1; l + 1 < L; ++l) {
      auto hl = hidden_[l].leftCols(n);
      detail::product_into(layers_[l].weight, hidden_[l - 1].leftCols(n), hl, false, blas_);
      hl.colwise() += layers_[l].bias;
      detail::mlp_activate(activation_, hl);
    }
    if constexpr (std::is_same_v<T, Scalar>)
      detail::product_into(layers_.back().weight, hidden_[L - 2].leftCols(n), out, false, blas_);
    else
      out.noalias() = (layers_.back().weight * hidden_[L - 2].leftCols(n)).template cast<T>();
    out.colwise() += layers_.back().bias.template cast<T>();
  }

  // Divergence buffers for a batch of B columns: σ'(z) of one tile and two tangent
  // buffers (ping-pong) of d tangents per column. They only grow.
  void reserve_divergence(Eigen::Index B) const {
    if (layers_.size() < 2) return;
    const Eigen::Index width = std::min(B, divergence_tile_columns());
    Eigen::Index widest = 1;
    for (std::size_t l = 0; l + 1 < layers_.size(); ++l) widest = std::max(widest, layers_[l].weight.rows());
    if (slope_.rows() < widest || slope_.cols() < width) slope_.resize(widest, width);
    for (auto& tg : tangent_)
      if (tg.rows() < widest || tg.cols() < width * dim_) tg.resize(widest, width * dim_);
  }

  template <class Body>
  void for_each_divergence_tile(Eigen::Index B, const Body& body) const {
    const Eigen::Index tile = divergence_tile_columns();
    for (Eigen::Index c0 = 0; c0 < B; c0 += tile) body(c0, std::min(tile, B - c0));
  }

  // Divergence of one tile of n columns (starting at column c0 of the batch) into D.
  // `w`, `b`: the first layer (possibly with the time features folded in); only its first
  // d columns (the state inputs) are differentiated. Tangent layout: the n columns of
  // coordinate r are columns [r n, (r + 1) n) of a tangent buffer.
  template <class W, class Bias, class In>
  void divergence_tile(const W& w, const Bias& b, const In& x, per_sample<Scalar>& D, Eigen::Index c0,
                       Eigen::Index n) const {
    const std::size_t L = layers_.size();
    const Eigen::Index d = dim_;
    if (L == 1) {  // v = W x + b: div v = trace of the state block of W
      const Scalar tr = layers_[0].weight.leftCols(d).trace();
      D.segment(c0, n).setConstant(tr);
      return;
    }
    matrix_type* cur = &tangent_[0];
    matrix_type* next = &tangent_[1];
    for (std::size_t l = 0; l + 1 < L; ++l) {
      const Eigen::Index width = layers_[l].weight.rows();
      auto h = hidden_[l].leftCols(n);
      if (l == 0) {
        detail::product_into(w, x, h, false, blas_);
        h.colwise() += b;
      } else {
        detail::product_into(layers_[l].weight, hidden_[l - 1].leftCols(n), h, false, blas_);
        h.colwise() += layers_[l].bias;
      }
      auto slope = slope_.topLeftCorner(width, n);
      detail::mlp_derivative_and_activate(activation_, h, slope);
      auto tg = next->topLeftCorner(width, n * d);
      if (l == 0) {
        for (Eigen::Index r = 0; r < d; ++r)
          tg.middleCols(r * n, n).array() = slope.array().colwise() * layers_[0].weight.col(r).array();
      } else {
        detail::product_into(layers_[l].weight, cur->topLeftCorner(layers_[l - 1].weight.rows(), n * d), tg,
                             false, blas_);
        for (Eigen::Index r = 0; r < d; ++r) tg.middleCols(r * n, n).array() *= slope.array();
      }
      std::swap(cur, next);
    }
    // div v = Σ_r W_L[r, :] · ∂h_{L-1}/∂x_r, per column.
    const auto& last = layers_.back().weight;
    const Eigen::Index width = last.cols();
    const auto tg = cur->topLeftCorner(width, n * d);
    for (Eigen::Index j = 0; j < n; ++j) {
      Scalar sum = 0;
      for (Eigen::Index r = 0; r < d; ++r) sum += last_rows_.col(r).dot(tg.col(r * n + j));
      D(c0 + j) = sum;
    }
  }

  std::vector<dense_layer<Scalar>> layers_;
  mlp_activation activation_;
  time_features<Scalar> time_;
  matrix_products products_;
  bool blas_;  // products through BLAS (resolved from products_)
  Eigen::Index dim_ = 0;
  mutable matrix_type input_;
  mutable std::vector<matrix_type> hidden_;
  mutable vector_type phi_;          // φ(t) for a shared time
  mutable vector_type folded_bias_;  // W_φ·φ(t) + b of the first layer
  mutable matrix_type slope_;        // σ'(z) of one divergence tile
  mutable matrix_type tangent_[2];   // d tangents per column of a divergence tile (ping-pong)
  matrix_type last_rows_;            // W_Lᵀ: column r is row r of the last weight
  Eigen::Index tile_ = 0;            // columns per tile (see tile_columns())
};

}  // namespace kinflow
