// The main() of kinflow's test executables under Catch2 v2 (the implementation is
// tests/catch2_session.cpp).
#include "catch2_session.hpp"

int main(int argc, char** argv) { return kinflow_test::run_catch_session(argc, argv); }
