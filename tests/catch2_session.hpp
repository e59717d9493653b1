#pragma once
// Catch2 v2's session, run from a main() that does not include Catch2 itself (Catch2 v2
// declares Catch::Session only where its implementation is compiled,
// tests/catch2_session.cpp).

namespace kinflow_test {

/// Applies the command line and runs the tests; returns Catch2's exit code (0: passed).
int run_catch_session(int argc, char** argv);

}  // namespace kinflow_test
