# Helpers in the style of Abseil's absl_cc_library: one small static library per stage with
# its dependencies spelled out, and one gtest binary per stage, labelled for `ctest -L`.

set(QLAKE_WARNING_FLAGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual)
# GCC 12 at -O2/-O3 reports -Wrestrict false positives inside libstdc++ for ordinary
# std::string concatenation (GCC bugs 105329, 105651; fixed in GCC 13).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND QLAKE_WARNING_FLAGS -Wno-restrict)
endif()
if(QLAKE_WERROR)
  list(APPEND QLAKE_WARNING_FLAGS -Werror)
endif()

function(qlake_apply_flags target)
  target_compile_options(${target} PRIVATE ${QLAKE_WARNING_FLAGS})
  if(QLAKE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# qlake_cc_library(NAME core SRCS a.cc b.cc DEPS ...)
function(qlake_cc_library)
  cmake_parse_arguments(Q "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(qlake_${Q_NAME} STATIC ${Q_SRCS})
  add_library(qlake::${Q_NAME} ALIAS qlake_${Q_NAME})
  target_include_directories(qlake_${Q_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src
                                                    ${PROJECT_BINARY_DIR}/src)
  target_link_libraries(qlake_${Q_NAME} PUBLIC ${Q_DEPS})
  qlake_apply_flags(qlake_${Q_NAME})
endfunction()

# qlake_cc_test(NAME core_test SRCS x_test.cc DEPS qlake::core LABELS unit)
function(qlake_cc_test)
  if(NOT QLAKE_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(Q "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${Q_NAME} ${Q_SRCS})
  target_link_libraries(${Q_NAME} PRIVATE ${Q_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  # Test binaries sit beside build/qlake: build/<stage>_test.
  set_target_properties(${Q_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
  qlake_apply_flags(${Q_NAME})
  include(GoogleTest)
  gtest_discover_tests(${Q_NAME} PROPERTIES LABELS "${Q_LABELS};unit"
                       DISCOVERY_TIMEOUT 60)
endfunction()
