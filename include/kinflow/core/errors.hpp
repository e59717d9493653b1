#pragma once
/// @file
/// @brief Exceptions thrown by kinflow for invalid arguments and unreadable model files.
///
/// Invalid arguments (bad grids, tolerances, mismatched dimensions, ...) throw
/// kinflow::invalid_argument with a message naming the parameter, the value
/// received and the valid range. A model or array file that cannot be read throws
/// kinflow::model_file_error (an invalid_argument) naming the file and what is wrong.
/// Trouble during a solve (step underflow, non-finite state, ...) is never an
/// exception: it is a per-sample status.

#include <charconv>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace kinflow {

/// Thrown when an argument is outside its valid range. The message names the
/// parameter, the value received and the valid range.
class invalid_argument : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// Thrown when two arguments disagree in shape (e.g. a field writes a velocity
/// whose dimension differs from the state's).
class dimension_mismatch : public invalid_argument {
public:
  using invalid_argument::invalid_argument;
};

/// Thrown when a model or array file cannot be read or does not hold what is expected.
/// The message names the file and what is wrong.
class model_file_error : public invalid_argument {
public:
  using invalid_argument::invalid_argument;
};

namespace detail {

/// Builds "kinflow: <param> = <value> is invalid; <expected>".
template <class Value>
[[nodiscard]] std::string invalid_message(std::string_view param, const Value& value,
                                          std::string_view expected);

/// Formats a value for an error message: reals in their shortest round-trip form
/// (0.06, not 0.059999999999999998), everything else as streamed.
template <class Value>
[[nodiscard]] std::string to_text(const Value& value) {
  if constexpr (std::is_floating_point_v<Value>) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    if (ec == std::errc()) return std::string(buf, end);
  }
  std::ostringstream os;
  os.precision(17);
  os << value;
  return os.str();
}

template <class Value>
std::string invalid_message(std::string_view param, const Value& value, std::string_view expected) {
  std::ostringstream os;
  os << "kinflow: " << param << " = " << to_text(value) << " is invalid; " << expected;
  return os.str();
}

/// Throws kinflow::invalid_argument unless @p ok holds.
template <class Value>
void require(bool ok, std::string_view param, const Value& value, std::string_view expected) {
  if (!ok) throw invalid_argument(invalid_message(param, value, expected));
}

/// Throws kinflow::dimension_mismatch unless @p got == @p want.
inline void require_dimension(std::string_view what, long long got, long long want) {
  if (got != want) {
    std::ostringstream os;
    os << "kinflow: dimension mismatch: " << what << " is " << got << ", expected " << want;
    throw dimension_mismatch(os.str());
  }
}

/// Throws kinflow::model_file_error with the message "kinflow: <file>: <what>", or
/// "kinflow: <file>: entry '<entry>': <what>" when @p entry is not empty.
/// @param file  the file being read
/// @param entry the part of the file at fault (an array, an archive entry), or empty
/// @param what  what is wrong
/// @throws kinflow::model_file_error always
[[noreturn]] inline void file_fail(const std::string& file, std::string_view entry,
                                   const std::string& what) {
  std::string msg = "kinflow: " + file;
  if (!entry.empty()) msg += ": entry '" + std::string(entry) + "'";
  throw model_file_error(msg + ": " + what);
}

}  // namespace detail
}  // namespace kinflow
