#pragma once
/// @file
/// @brief Which samples of a solved batch the columns of a field call are
/// (kinflow::batch_columns), for fields with one parameter per sample such as the classes a
/// kinflow::conditioned field binds.
///
/// Solvers evaluate a field on parts of the batch: tiles of columns in a fixed-grid solve,
/// the unfinished samples of an adaptive one, stacked copies in Hutchinson's estimate. They
/// say which samples those columns are by opening a kinflow::batch_columns::scope on the
/// calling thread; scopes nest (a tile of an adaptive solve's samples maps through both).
/// Outside any scope, column m is sample m.

#include <Eigen/Core>

namespace kinflow {

/// Which samples of a solved batch the columns of the current field call are, on this
/// thread (see the file comment).
class batch_columns {
public:
  /// The sample of column @p m of the current call.
  [[nodiscard]] Eigen::Index operator[](Eigen::Index m) const noexcept {
    Eigen::Index i = period_ > 0 ? m % period_ : m;
    i = ids_ != nullptr ? ids_[i] : first_ + i;
    return parent_ != nullptr ? (*parent_)[i] : i;
  }

  /// What this thread's field calls cover now.
  [[nodiscard]] static const batch_columns& current() noexcept { return current_; }

  /// Sets what this thread's field calls cover until destroyed, relative to the enclosing
  /// scope (defined below).
  class scope;

private:
  [[nodiscard]] bool identity() const noexcept {
    return parent_ == nullptr && ids_ == nullptr && first_ == 0 && period_ == 0;
  }

  Eigen::Index first_ = 0;
  const Eigen::Index* ids_ = nullptr;
  Eigen::Index period_ = 0;
  const batch_columns* parent_ = nullptr;
  static thread_local batch_columns current_;
};

inline thread_local batch_columns batch_columns::current_{};

/// Sets what this thread's field calls cover until destroyed, relative to the enclosing
/// scope (see kinflow::batch_columns).
class batch_columns::scope {
public:
  /// Column m is column `first + m` of the enclosing scope (a tile of contiguous columns).
  explicit scope(Eigen::Index first) noexcept : scope(first, nullptr, 0) {}
  /// Column m is column `ids[m]` of the enclosing scope. The array is read when a field
  /// is called (it may change between calls) and must outlive the scope.
  explicit scope(const Eigen::Index* ids) noexcept : scope(0, ids, 0) {}
  /// Column m is column `m % period` of the enclosing scope (copies of a batch stacked
  /// side by side).
  [[nodiscard]] static scope repeating(Eigen::Index period) noexcept { return scope(0, nullptr, period); }
  ~scope() { current_ = saved_; }
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

private:
  scope(Eigen::Index first, const Eigen::Index* ids, Eigen::Index period) noexcept : saved_(current_) {
    batch_columns c;
    c.first_ = first;
    c.ids_ = ids;
    c.period_ = period;
    c.parent_ = saved_.identity() ? nullptr : &saved_;
    current_ = c;
  }
  batch_columns saved_;
};

}  // namespace kinflow
