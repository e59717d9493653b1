# Usage: cmake -DBUILD_DIR=<dir> -DTARGET=<target> [-DCONFIG=<config>] -P expect_build_failure.cmake
#
# Builds one compile-fail target and echoes the compiler's output, so that the CTest
# PASS_REGULAR_EXPRESSION can look for the expected diagnostic. A build that succeeds is
# reported with a line the test's FAIL_REGULAR_EXPRESSION matches.

set(_args --build "${BUILD_DIR}" --target "${TARGET}")
if(CONFIG)
  list(APPEND _args --config "${CONFIG}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" ${_args}
                RESULT_VARIABLE _result
                OUTPUT_VARIABLE _output
                ERROR_VARIABLE _output)
message("${_output}")
if(_result EQUAL 0)
  message(FATAL_ERROR "kinflow-compile-fail: UNEXPECTEDLY BUILT ${TARGET}: this snippet must not compile")
endif()
message("kinflow-compile-fail: ${TARGET} failed to build, as it should")
