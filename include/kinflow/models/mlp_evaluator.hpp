#pragma once
/// @file
/// @brief The arithmetic of kinflow::mlp_field (kinflow/models/mlp.hpp): its weights,
/// buffers and the tiled forward pass and forward-mode divergence, kept apart from the
/// field's interface so that each can be read on its own.

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/models/mlp_layers.hpp"

namespace kinflow::detail {

/// The weights, buffers and kernels of kinflow::mlp_field (a base of it; see mlp.hpp for the
/// network, its class code and its divergence).
/// @tparam Scalar float or double
template <class Scalar>
class mlp_evaluator {
protected:
  using matrix_type = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using vector_type = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

  mlp_evaluator(std::vector<dense_layer<Scalar>> layers, mlp_activation activation, time_features<Scalar> time,
                bool blas, Eigen::Index classes)
      : layers_(std::move(layers)), activation_(activation), time_(std::move(time)), blas_(blas), classes_(classes) {}

  // Columns per tile of a divergence (mlp_field::divergence_tile_columns()).
  [[nodiscard]] Eigen::Index divergence_tile_width() const noexcept {
    return std::max<Eigen::Index>(1, tile_ / std::max<Eigen::Index>(dim_, 1));
  }

  // The one-hot code's size: K + 1 for K classes, none for an unconditional network.
  [[nodiscard]] Eigen::Index code_size() const noexcept { return classes_ > 0 ? classes_ + 1 : 0; }

  // The input buffer's first B columns: [x; φ(t)] (φ of T(j) in column j when T is given).
  template <class DerivedX>
  [[nodiscard]] auto fill_input(Scalar t, const sample_times<Scalar>* T, const Eigen::MatrixBase<DerivedX>& X) const {
    auto in = input_.leftCols(X.cols());
    in.topRows(dim_) = X.template cast<Scalar>();
    if (T != nullptr) {
      detail::mlp_time_rows(time_, *T, in, dim_);
    } else {
      detail::mlp_time_features(time_, t, phi_);
      in.bottomRows(time_.size()).colwise() = phi_;
    }
    return in;
  }

  // Adds the class code's share to the pre-activations h of the tile starting at column c0:
  // the bias holds the null class's column, so a column of class c >= 0 adds the difference
  // of its column and the null class's (and a column of class -1 nothing: the same bits as
  // a call without classes). Nothing for C null, or for an unconditional network.
  template <class H>
  void add_class_columns(H&& h, const class_labels* C, Eigen::Index c0) const {
    if (C == nullptr || classes_ == 0) return;
    using T = typename std::remove_cvref_t<H>::Scalar;
    for (Eigen::Index j = 0; j < h.cols(); ++j) {
      const Eigen::Index c = (*C)(c0 + j);
      if (c >= 0) h.col(j) += class_shift_.col(c).template cast<T>();
    }
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
  void tile_from_input(const W& w, const Bias& b, const In& x, Out&& out, Eigen::Index n, const class_labels* C,
                       Eigen::Index c0) const {
    using T = typename std::remove_cvref_t<Out>::Scalar;
    if (layers_.size() == 1) {  // (no noalias: on the folded path x is the caller's X, which may be V)
      out = (w * x).template cast<T>();
      out.colwise() += b.template cast<T>();
      add_class_columns(out, C, c0);
      return;
    }
    auto h = hidden_[0].leftCols(n);
    detail::product_into(w, x, h, false, blas_);
    h.colwise() += b;
    add_class_columns(h, C, c0);
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
    const Eigen::Index width = std::min(B, divergence_tile_width());
    Eigen::Index widest = 1;
    for (std::size_t l = 0; l + 1 < layers_.size(); ++l) widest = std::max(widest, layers_[l].weight.rows());
    if (slope_.rows() < widest || slope_.cols() < width) slope_.resize(widest, width);
    for (auto& tg : tangent_)
      if (tg.rows() < widest || tg.cols() < width * dim_) tg.resize(widest, width * dim_);
  }

  template <class Body>
  void for_each_divergence_tile(Eigen::Index B, const Body& body) const {
    const Eigen::Index tile = divergence_tile_width();
    for (Eigen::Index c0 = 0; c0 < B; c0 += tile) body(c0, std::min(tile, B - c0));
  }

  // Divergence of one tile of n columns (starting at column c0 of the batch) into D.
  // `w`, `b`: the first layer (possibly with the time features folded in); only its first
  // d columns (the state inputs) are differentiated. Tangent layout: the n columns of
  // coordinate r are columns [r n, (r + 1) n) of a tangent buffer.
  template <class W, class Bias, class In>
  void divergence_tile(const W& w, const Bias& b, const In& x, per_sample<Scalar>& D, Eigen::Index c0,
                       Eigen::Index n, const class_labels* C) const {
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
        add_class_columns(h, C, c0);
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
  bool blas_;  // products through BLAS (resolved from products_)
  Eigen::Index dim_ = 0;
  mutable matrix_type input_;
  mutable std::vector<matrix_type> hidden_;
  mutable vector_type phi_;          // φ(t) for a shared time
  mutable vector_type folded_bias_;  // W_φ·φ(t) + b of the first layer
  mutable matrix_type slope_;        // σ'(z) of one divergence tile
  mutable matrix_type tangent_[2];   // d tangents per column of a divergence tile (ping-pong)
  matrix_type last_rows_;            // W_Lᵀ: column r is row r of the last weight
  Eigen::Index classes_ = 0;         // K: classes of a conditional network (0: unconditional)
  vector_type plain_bias_;           // b of the first layer, plus its null-class column
  matrix_type class_shift_;          // column c: the first layer's column of class c minus the null class's
  Eigen::Index tile_ = 0;            // columns per tile (see tile_columns())
};

}  // namespace kinflow::detail
