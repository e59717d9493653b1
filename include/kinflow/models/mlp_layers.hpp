#pragma once
/// @file
/// @brief The parts a multilayer perceptron is made of: dense layers, the activations σ
/// (with their derivatives σ') and the time features φ(t).
///
/// kinflow::mlp_field (kinflow/models/mlp.hpp) assembles them into a velocity field; they
/// are here on their own so that the network's arithmetic can be read, and checked, one
/// part at a time.
///
/// Activations σ and their derivatives σ':
///  - SiLU `σ(z) = z / (1 + e^{-z})`, `σ'(z) = s (1 + z (1 - s))` with `s = 1/(1 + e^{-z})`
///    the logistic function;
///  - ReLU `σ(z) = max(z, 0)`, `σ'(z) = 1` for `z > 0` and `0` otherwise (0 at 0);
///  - tanh, `σ'(z) = 1 - tanh² z`;
///  - GELU in its exact form `σ(z) = ½ z (1 + erf(z / √2))` (PyTorch's `nn.GELU()` default,
///    `approximate="none"`; the tanh approximation is not offered),
///    `σ'(z) = ½ (1 + erf(z/√2)) + z e^{-z²/2}/√(2π)`.
///
/// Time features φ(t):
///  - raw:        `φ(t) = t` (one feature);
///  - sinusoidal: `φ(t) = [sin(ω_1 t), …, sin(ω_K t), cos(ω_1 t), …, cos(ω_K t)]` (2K
///    features, all sines first), with the frequencies ω_k stored in the weight file.

#include <Eigen/Core>
#include <cmath>
#include <numbers>

#include "kinflow/core/batch.hpp"

namespace kinflow {

/// Activation between the dense layers of kinflow::mlp_field.
enum class mlp_activation {
  silu,  ///< x / (1 + e^{-x})
  relu,  ///< max(x, 0)
  tanh,  ///< tanh x
  gelu   ///< ½ x (1 + erf(x/√2)), the exact form
};

/// How time enters kinflow::mlp_field.
enum class time_encoding {
  raw,        ///< one input feature, t
  sinusoidal  ///< sin(ω_k t) for every k, then cos(ω_k t) for every k
};

/// One dense layer of kinflow::mlp_field: `y = W x + b`, W of shape out × in (as in
/// PyTorch's `nn.Linear`).
/// @tparam Scalar float or double
template <class Scalar>
struct dense_layer {
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> weight;  ///< out × in
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> bias;                 ///< out
};

/// The time features φ(t) of kinflow::mlp_field (see the file documentation).
/// @tparam Scalar float or double
template <class Scalar>
struct time_features {
  time_encoding encoding = time_encoding::raw;      ///< raw t or a sinusoidal embedding
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> frequencies;  ///< ω_1 … ω_K (sinusoidal only)

  /// Number of input features time contributes: 1 (raw) or 2K (sinusoidal).
  [[nodiscard]] Eigen::Index size() const {
    return encoding == time_encoding::raw ? 1 : 2 * frequencies.size();
  }
};

namespace detail {

/// `h ← σ(h)`, elementwise, for the activation @p activation (see the file documentation).
/// @param h an Eigen matrix expression (a block of an activation buffer), written in place
template <class H>
void mlp_activate(mlp_activation activation, H& h) {
  using Scalar = typename H::Scalar;
  auto a = h.array();
  switch (activation) {
    case mlp_activation::silu:
      a = a / (Scalar(1) + (-a).exp());
      break;
    case mlp_activation::relu:
      a = a.max(Scalar(0));
      break;
    case mlp_activation::tanh:
      a = a.tanh();
      break;
    case mlp_activation::gelu:
      a = a.unaryExpr([](Scalar z) {
        return Scalar(0.5) * z * (Scalar(1) + std::erf(z * Scalar(std::numbers::sqrt2 / 2)));
      });
      break;
  }
}

/// `slope ← σ'(h)` and `h ← σ(h)`, elementwise (see the file documentation for σ'); h holds
/// the pre-activations z on entry. The activations written are exactly those of
/// mlp_activate(), so a divergence pass and a velocity pass see the same network.
/// @param h     the pre-activations, replaced by the activations
/// @param slope the derivatives σ'(z), of h's shape
template <class H, class S>
void mlp_derivative_and_activate(mlp_activation activation, H& h, S& slope) {
  using Scalar = typename H::Scalar;
  auto z = h.array();
  auto sl = slope.array();
  switch (activation) {
    case mlp_activation::silu: {
      // s = 1/(1 + e^{-z}); 1 - s = e^{-z} s for z ≥ 0 (no cancellation), else 1 - s ≥ ½.
      sl = z.unaryExpr([](Scalar v) {
        const Scalar e = std::exp(-v);
        const Scalar sg = Scalar(1) / (Scalar(1) + e);
        const Scalar one_minus = v >= Scalar(0) ? e * sg : Scalar(1) - sg;
        return sg * (Scalar(1) + v * one_minus);
      });
      mlp_activate(activation, h);
      break;
    }
    case mlp_activation::relu:
      sl = (z > Scalar(0)).template cast<Scalar>();
      mlp_activate(activation, h);
      break;
    case mlp_activation::tanh:
      mlp_activate(activation, h);
      sl = Scalar(1) - z.square();  // z now holds tanh of the pre-activations
      break;
    case mlp_activation::gelu:
      sl = z.unaryExpr([](Scalar v) {
        const Scalar inv_sqrt2 = Scalar(std::numbers::sqrt2 / 2);
        const Scalar inv_sqrt_2pi = Scalar(std::numbers::inv_sqrtpi * std::numbers::sqrt2 / 2);
        return Scalar(0.5) * (Scalar(1) + std::erf(v * inv_sqrt2)) +
               v * inv_sqrt_2pi * std::exp(Scalar(-0.5) * v * v);
      });
      mlp_activate(activation, h);
      break;
  }
}

/// `phi ← φ(t)`, the time features of one time; phi must have time.size() entries.
template <class Scalar, class Phi>
void mlp_time_features(const time_features<Scalar>& time, Scalar t, Phi& phi) {
  const Eigen::Index K = time.frequencies.size();
  if (time.encoding == time_encoding::raw) {
    phi(0) = t;
  } else {
    for (Eigen::Index k = 0; k < K; ++k) {
      phi(k) = std::sin(time.frequencies(k) * t);
      phi(K + k) = std::cos(time.frequencies(k) * t);
    }
  }
}

/// φ(T(j)) into rows [first_row, first_row + time.size()) of column j of @p in, for every
/// column (one time per column).
template <class Scalar, class In>
void mlp_time_rows(const time_features<Scalar>& time, const sample_times<Scalar>& T, In& in,
                   Eigen::Index first_row) {
  const Eigen::Index K = time.frequencies.size();
  if (time.encoding == time_encoding::raw) {
    in.row(first_row) = T;
  } else {
    for (Eigen::Index k = 0; k < K; ++k) {
      in.row(first_row + k) = (time.frequencies(k) * T.array()).sin().matrix();
      in.row(first_row + K + k) = (time.frequencies(k) * T.array()).cos().matrix();
    }
  }
}

}  // namespace detail

}  // namespace kinflow
