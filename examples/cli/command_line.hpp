#pragma once
/// @file
/// @brief The command line of kinflow's programs (kinflow-sample, kinflow-trained,
/// kinflow-quickstart, kinflow-shootout; see docs/cli.md): a table of options
/// — name, argument, default, help — from which `--help` is generated and by which the
/// arguments are parsed, with one rule for integers and one for numbers.
///
/// An argument error ends the program with exit status 2 and one line on stderr,
/// `<program>: <flag>: expected <what is valid>, got '<value>'`, e.g.
/// `kinflow-sample: --steps: expected an integer in [1, 10000000], got '0'`.

#include <kinflow/core/errors.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// The helpers kinflow's command-line programs share (examples/cli/).
namespace kinflow_cli {

/// The name error messages start with; command_line's constructor sets it.
inline std::string program_name = "kinflow";

/// Prints `<program_name>: <message>` on stderr and exits with status 2 (a usage error).
[[noreturn]] inline void usage_error(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_name.c_str(), message.c_str());
  std::exit(2);
}

/// The numbers an option accepts: the interval from @ref lo to @ref hi, each end open or
/// closed (an infinite end means no bound on that side).
struct interval {
  double lo = -std::numeric_limits<double>::infinity(); ///< lower end
  double hi = std::numeric_limits<double>::infinity();  ///< upper end
  bool lo_open = false;                                  ///< lo itself excluded
  bool hi_open = false;                                  ///< hi itself excluded

  /// True when @p x lies in the interval (never for NaN).
  [[nodiscard]] bool contains(double x) const noexcept {
    return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  }
};

/// `[lo, ∞)`.
[[nodiscard]] inline interval at_least(double lo) { return {.lo = lo}; }
/// `(lo, ∞)`.
[[nodiscard]] inline interval above(double lo) { return {.lo = lo, .lo_open = true}; }
/// `[lo, hi]`.
[[nodiscard]] inline interval closed(double lo, double hi) { return {.lo = lo, .hi = hi}; }
/// `[lo, hi)`.
[[nodiscard]] inline interval half_open(double lo, double hi) { return {.lo = lo, .hi = hi, .hi_open = true}; }

/// @p v in its shortest round-trip form (0.06, 1e-05), as in --help and error messages.
[[nodiscard]] inline std::string number_text(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

/// "in [0, 1)", ">= 0", "> 0", "<= 1": the interval @p r as the end of "a number …".
[[nodiscard]] inline std::string interval_text(const interval& r) {
  const bool lo = std::isfinite(r.lo), hi = std::isfinite(r.hi);
  if (lo && hi)
    return std::string(r.lo_open ? "in (" : "in [") + number_text(r.lo) + ", " + number_text(r.hi) +
           (r.hi_open ? ")" : "]");
  if (lo) return std::string(r.lo_open ? "> " : ">= ") + number_text(r.lo);
  if (hi) return std::string(r.hi_open ? "< " : "<= ") + number_text(r.hi);
  return "(any finite value)";
}

/// The texts of @p items (strings, string views or C strings) separated by @p separator.
template <class Range>
[[nodiscard]] std::string join(const Range& items, std::string_view separator) {
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.append(separator);
    out.append(std::string_view(item));
    first = false;
  }
  return out;
}

/// The integer rule: @p text must be a whole decimal integer in [@p lo, @p hi].
/// @param flag named in the error message (e.g. "--steps")
/// @return the integer
/// Ends the program with a usage error otherwise:
/// `--steps: expected an integer in [1, 100], got 'x'` (`>= lo` when hi is the largest long).
[[nodiscard]] inline long parse_integer(std::string_view flag, const std::string& text, long lo,
                                        long hi = std::numeric_limits<long>::max()) {
  long x = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || x < lo || x > hi) {
    const std::string range = hi == std::numeric_limits<long>::max()
                                  ? ">= " + std::to_string(lo)
                                  : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    usage_error(std::string(flag) + ": expected an integer " + range + ", got '" + text + "'");
  }
  return x;
}

namespace detail {
/// Reads @p text as a finite number in @p range into @p x; false when it is not one.
inline bool read_number(const std::string& text, const interval& range, double& x) {
  if (text.empty()) return false;
  char* end = nullptr;
  x = std::strtod(text.c_str(), &end);
  return *end == '\0' && std::isfinite(x) && range.contains(x);
}
}  // namespace detail

/// The number rule: @p text must be a finite decimal number (e.g. 0.5, 1e-5) in @p range.
/// @param flag named in the error message (e.g. "--tau")
/// @return the number
/// Ends the program with a usage error otherwise: `--tau: expected a number in [0, 1], got '2'`.
[[nodiscard]] inline double parse_number(std::string_view flag, const std::string& text, const interval& range) {
  double x = 0;
  if (!detail::read_number(text, range, x))
    usage_error(std::string(flag) + ": expected a number " + interval_text(range) + ", got '" + text + "'");
  return x;
}

/// A comma-separated list of numbers (`0,0.1,0.2`), each by the number rule in @p range.
/// Ends the program with a usage error naming @p flag and the whole list otherwise.
[[nodiscard]] inline std::vector<double> parse_numbers(std::string_view flag, const std::string& text,
                                                       const interval& range) {
  std::vector<double> list;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    double x = 0;
    if (!detail::read_number(text.substr(start, comma == std::string::npos ? comma : comma - start), range, x))
      usage_error(std::string(flag) + ": expected comma-separated numbers " + interval_text(range) + ", got '" +
                  text + "'");
    list.push_back(x);
    if (comma == std::string::npos) return list;
    start = comma + 1;
  }
}

/// @p text when it is one of @p choices; otherwise a usage error listing them,
/// `--solver: expected one of euler, rk4, got 'rk5'`.
inline const std::string& parse_choice(std::string_view flag, const std::string& text,
                                       const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), text) != choices.end()) return text;
  usage_error(std::string(flag) + ": expected one of " + join(choices, ", ") + ", got '" + text + "'");
}

/// How an option stores its value: @ref set parses and stores it (or ends the program
/// with a usage error), @ref shown is the default --help prints (the target's value when
/// the binding was made; empty: no default shown).
struct binding {
  std::function<void(const std::string& flag, const std::string& value)> set; ///< parse and store
  std::string shown;                                                          ///< default in --help
};

/// Any text, stored as it is in @p target.
[[nodiscard]] inline binding text(std::string& target) {
  return {[&target](const std::string&, const std::string& v) { target = v; }, target};
}

/// A non-empty text (a file name), stored in @p target.
[[nodiscard]] inline binding file_name(std::string& target) {
  return {[&target](const std::string& flag, const std::string& v) {
            if (v.empty()) usage_error(flag + ": expected a file name, got ''");
            target = v;
          },
          target};
}

/// An integer in [@p lo, @p hi] by parse_integer(), stored in @p target.
[[nodiscard]] inline binding integer(long& target, long lo, long hi = std::numeric_limits<long>::max()) {
  return {[&target, lo, hi](const std::string& flag, const std::string& v) { target = parse_integer(flag, v, lo, hi); },
          std::to_string(target)};
}

/// A number in @p range by parse_number(), stored in @p target.
[[nodiscard]] inline binding number(double& target, const interval& range) {
  return {[&target, range](const std::string& flag, const std::string& v) { target = parse_number(flag, v, range); },
          number_text(target)};
}

/// A comma-separated list of numbers in @p range by parse_numbers(), stored in @p target.
[[nodiscard]] inline binding numbers(std::vector<double>& target, const interval& range) {
  std::vector<std::string> shown;
  for (double x : target) shown.push_back(number_text(x));
  return {[&target, range](const std::string& flag, const std::string& v) { target = parse_numbers(flag, v, range); },
          join(shown, ",")};
}

/// One of @p choices by parse_choice(), stored in @p target.
[[nodiscard]] inline binding one_of(std::string& target, std::vector<std::string> choices) {
  return {[&target, choices](const std::string& flag, const std::string& v) {
            target = parse_choice(flag, v, choices);
          },
          target};
}

/// One of the names of @p choices, whose value is stored in @p target (e.g. an enum).
template <class T>
[[nodiscard]] binding one_of(T& target, std::vector<std::pair<std::string, T>> choices) {
  std::string shown;
  std::vector<std::string> names;
  for (const auto& [name, value] : choices) {
    names.push_back(name);
    if (value == target && shown.empty()) shown = name;
  }
  return {[&target, choices, names](const std::string& flag, const std::string& v) {
            const std::string& name = parse_choice(flag, v, names);
            for (const auto& [n, value] : choices)
              if (n == name) target = value;
          },
          shown};
}

/// A value the program parses itself with @p set (e.g. `smoothed:S`), showing @p shown.
[[nodiscard]] inline binding custom(std::function<void(const std::string& flag, const std::string& value)> set,
                                    std::string shown) {
  return {std::move(set), std::move(shown)};
}

/// A program's table of options: it parses the arguments and generates --help.
///
///     kinflow_cli::command_line cl("kinflow-x", "kinflow-x: what it does.");
///     cl.section("Solver")
///         .value("--steps", "N", "fixed-grid steps", kinflow_cli::integer(s.steps, 1, 10000))
///         .toggle("--quiet", "no progress on stderr", s.quiet);
///     cl.parse(argc, argv);
class command_line {
public:
  /// A table for the program @p program (which becomes program_name); --help starts with
  /// @p description (a paragraph, wrapped) and lists every option, then --help itself.
  command_line(std::string program, std::string description) : description_(std::move(description)) {
    program_name = std::move(program);
  }

  /// Starts a group of options under the heading @p title in --help.
  command_line& section(std::string title) {
    rows_.push_back({std::move(title), {}, {}, {}, {}, true});
    return *this;
  }

  /// An option taking a value: `name argument`, explained by @p help; its default is the
  /// binding's (the target's value now) unless @p default_text is given ("" shows none).
  command_line& value(std::string name, std::string argument, std::string help, binding b,
                      std::optional<std::string> default_text = std::nullopt) {
    rows_.push_back({std::move(name), std::move(argument), std::move(help),
                     default_text ? *default_text : std::move(b.shown), std::move(b.set), false});
    return *this;
  }

  /// A switch without a value, which sets @p target to true.
  command_line& toggle(std::string name, std::string help, bool& target) {
    rows_.push_back(
        {std::move(name), {}, std::move(help), {}, [&target](const std::string&, const std::string&) { target = true; },
         false});
    return *this;
  }

  /// The --help text: the description, then every option with its argument, help and
  /// default, grouped by section.
  [[nodiscard]] std::string help() const {
    std::size_t column = 0;
    for (const auto& r : rows_)
      if (!r.heading) column = std::max(column, left_of(r).size());
    column = std::min<std::size_t>(column + 2, 28);
    std::string out = wrap(description_, 0, width) + "\n";
    for (const auto& r : rows_) {
      if (r.heading) {
        out += r.name + "\n";
        continue;
      }
      std::string help = r.help;
      if (!r.shown.empty()) help += (help.empty() ? "(default " : " (default ") + r.shown + ")";
      std::string left = left_of(r);
      if (left.size() + 1 > column) {
        out += left + "\n";
        left.clear();
      }
      left.resize(column, ' ');
      out += left + wrap(help, column, width).substr(column);
    }
    out += std::string("  --help").append(std::max<std::size_t>(column, 9) - 8, ' ') + "this text\n";
    return out;
  }

  /// Parses the arguments: `--help` (or `-h`) prints help() and exits with status 0; an
  /// unknown option, a missing value or an invalid one ends the program with a usage error.
  void parse(int argc, const char* const* argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        std::fputs(help().c_str(), stdout);
        std::exit(0);
      }
      if (!a.starts_with("--")) usage_error("unexpected argument '" + a + "' (options start with --; see --help)");
      const auto row =
          std::find_if(rows_.begin(), rows_.end(), [&](const auto& r) { return !r.heading && r.name == a; });
      if (row == rows_.end()) usage_error("unknown option '" + a + "' (see --help)");
      given_.insert(a);
      if (row->argument.empty()) {
        row->set(a, "");
        continue;
      }
      if (i + 1 >= argc) usage_error(a + ": expected a value (" + row->argument + ")");
      row->set(a, argv[++i]);
    }
  }

  /// True when the option @p name was on the command line.
  [[nodiscard]] bool given(std::string_view name) const { return given_.count(std::string(name)) > 0; }

private:
  static constexpr std::size_t width = 92;

  struct row {
    std::string name, argument, help, shown;
    std::function<void(const std::string&, const std::string&)> set;
    bool heading = false;
  };

  static std::string left_of(const row& r) {
    std::string left = "  " + r.name;
    if (!r.argument.empty()) left.append(" ").append(r.argument);
    return left;
  }

  /// @p text wrapped at word boundaries into lines of at most @p max characters, every
  /// line indented by @p indent spaces; each line ends with a newline.
  static std::string wrap(const std::string& text, std::size_t indent, std::size_t max) {
    std::istringstream words(text);
    std::string out, line(indent, ' '), word;
    while (words >> word) {
      if (line.size() > indent && line.size() + 1 + word.size() > max) {
        out += line + "\n";
        line.assign(indent, ' ');
      }
      line += (line.size() > indent ? " " : "") + word;
    }
    return out + line + "\n";
  }

  std::string description_;
  std::vector<row> rows_;
  std::set<std::string> given_;
};

/// Runs a program's @p body (which returns its exit status), mapping what it throws:
/// kinflow::invalid_argument to status 2 with `<program>: <what>`, any other
/// std::exception to status 1 with `<program>: error: <what>`.
template <class Body>
int run_guarded(Body&& body) {
  try {
    return std::forward<Body>(body)();
  } catch (const kinflow::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n", program_name.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program_name.c_str(), e.what());
    return 1;
  }
}

}  // namespace kinflow_cli
