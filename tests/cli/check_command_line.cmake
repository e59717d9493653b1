# The command line every kinflow program shares (examples/cli/command_line.hpp): --help exits
# with 0 and lists every flag of the program (the lists below are the documented flags, see
# README.md and each program's header comment), and the one integer rule and the one number
# rule report an invalid value as "<program>: <flag>: expected ..., got '<value>'" with exit
# status 2.
#   cmake -DSAMPLE=<kinflow-sample> -DTRAINED=<kinflow-trained> -DQUICKSTART=<kinflow-quickstart>
#         -DSHOOTOUT=<kinflow-shootout> -DWORK=<scratch dir> [-DWITH_MPI=ON] -P check_command_line.cmake

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(expect_help exe)
  execute_process(COMMAND "${exe}" --help RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${exe} --help: exit ${rc}\n${err}")
  endif()
  foreach(flag IN LISTS ARGN --help)
    string(REGEX MATCH "\n  ${flag}[ \n]" at "\n${out}")
    if(at STREQUAL "")
      message(FATAL_ERROR "${exe} --help does not list ${flag}:\n${out}")
    endif()
  endforeach()
endfunction()

# Runs exe with the arguments after "--" and expects exit status 2 and exactly the line
# `message` on stderr.
function(expect_error exe message)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "ARGS")
  execute_process(COMMAND "${exe}" ${arg_ARGS} WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(STRIP "${err}" err)
  if(NOT rc EQUAL 2 OR NOT err STREQUAL "${message}")
    message(FATAL_ERROR "${exe} ${arg_ARGS}: exit ${rc}, stderr\n  ${err}\nexpected exit 2 and\n  ${message}")
  endif()
endfunction()

expect_help("${SAMPLE}" --dataset --train --n-train --samples --noise --seed --field --sigma-min --model
            --solver --steps --grid --rtol --atol --precision --alpha0 --beta0 --tau --k --early --late
            --kpe --likelihood --probes --trajectories --out --quiet --diffusion --diffusion-norm
            --last-step-size --noise-seed --churn)
expect_help("${TRAINED}" --model --torchscript --train --dataset --samples --steps --seed --alpha0 --beta0
            --tau --k --threads --quick --out)
expect_help("${QUICKSTART}" --samples --steps --seed)
expect_help("${SHOOTOUT}" --samples --seed --out)

# --shard needs MPI: without it, a clear error (builds with MPI: tests/cli/check_sample_mpi.py).
if(NOT WITH_MPI)
  expect_error("${SAMPLE}" "kinflow-sample: --shard needs a kinflow-sample built with MPI (cmake -DKINFLOW_WITH_MPI=ON) and started with mpirun -np P; this build has no MPI"
               ARGS --shard train)
endif()

# The integer rule, the same in every program.
expect_error("${SAMPLE}" "kinflow-sample: --steps: expected an integer in [1, 10000000], got 'x'" ARGS --steps x)
expect_error("${SAMPLE}" "kinflow-sample: --seed: expected an integer >= 0, got '-1'" ARGS --seed -1)
expect_error("${TRAINED}" "kinflow-trained: --samples: expected an integer in [2, 100000000], got '1.5'"
             ARGS --samples 1.5)
expect_error("${QUICKSTART}" "kinflow-quickstart: --steps: expected an integer in [1, 100000], got '0'"
             ARGS --steps 0)
expect_error("${SHOOTOUT}" "kinflow-shootout: --samples: expected an integer in [1, 100000], got '12abc'"
             ARGS --samples 12abc)
# The number rule, and lists of numbers.
expect_error("${SAMPLE}" "kinflow-sample: --tau: expected a number in [0, 1], got '2'" ARGS --tau 2)
expect_error("${SAMPLE}" "kinflow-sample: --sigma-min: expected a number in [0, 1), got '1'" ARGS --sigma-min 1)
expect_error("${SAMPLE}" "kinflow-sample: --k: expected a number > 0, got 'nan'" ARGS --k nan)
expect_error("${TRAINED}" "kinflow-trained: --tau: expected comma-separated numbers in [0, 1], got '0.5,,1'"
             ARGS --tau 0.5,,1)
# Choices, missing values and unknown options.
expect_error("${SAMPLE}" "kinflow-sample: --precision: expected one of float, double, got 'half'"
             ARGS --precision half)
expect_error("${SAMPLE}" "kinflow-sample: --samples: expected a value (B)" ARGS --samples)
expect_error("${SHOOTOUT}" "kinflow-shootout: unknown option '--bogus' (see --help)" ARGS --bogus 1)
message(STATUS "command line: all checks passed")
