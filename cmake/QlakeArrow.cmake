# Arrow C++ (core, compute, Parquet, Dataset, Acero, S3 filesystem).
#
# A system install found by find_package wins; otherwise the C++ libraries inside the
# pyarrow wheel of the project's virtualenv are used (see shared/docs/arrow-cpp.md).
# The wheel ships versioned .so files and headers only, so imported targets are declared
# here, and the build RPATH points at the wheel so that build/qlake runs without
# LD_LIBRARY_PATH.
#
# Output: QLAKE_ARROW_LIBS (list of targets), QLAKE_ARROW_VERSION.

option(QLAKE_USE_PYARROW "Skip find_package(Arrow) and use the pyarrow wheel" OFF)
set(QLAKE_MIN_ARROW_VERSION 23.0.0)

if(NOT QLAKE_USE_PYARROW)
  find_package(ArrowDataset CONFIG QUIET)
endif()

if(ArrowDataset_FOUND)
  set(QLAKE_ARROW_VERSION "${ArrowDataset_VERSION}")
  set(QLAKE_ARROW_LIBS ArrowDataset::arrow_dataset_shared Parquet::parquet_shared
                       Arrow::arrow_shared)
  foreach(t ArrowAcero::arrow_acero_shared ArrowCompute::arrow_compute_shared
            ArrowS3::arrow_s3_shared)
    if(TARGET ${t})
      list(APPEND QLAKE_ARROW_LIBS ${t})
    endif()
  endforeach()
  message(STATUS "qlake: using system Arrow ${QLAKE_ARROW_VERSION}")
else()
  # Under scikit-build-core (pip install .) the build environment's Python has the
  # pyarrow to build against.
  if(SKBUILD AND Python_EXECUTABLE AND NOT Python3_EXECUTABLE)
    set(Python3_EXECUTABLE "${Python_EXECUTABLE}")
  endif()
  if(NOT Python3_EXECUTABLE AND EXISTS "${CMAKE_SOURCE_DIR}/.venv/bin/python")
    set(Python3_EXECUTABLE "${CMAKE_SOURCE_DIR}/.venv/bin/python")
  endif()
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c
            "import pyarrow as p; print(p.get_include(), p.get_library_dirs()[0], p.__version__, sep=';')"
    OUTPUT_VARIABLE _pa OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _pa_rc)
  if(NOT _pa_rc EQUAL 0)
    message(FATAL_ERROR
      "qlake: no system Arrow and no pyarrow in ${Python3_EXECUTABLE}. "
      "Run scripts/setup.sh (it creates .venv with the pinned pyarrow).")
  endif()
  list(GET _pa 0 QLAKE_PYARROW_INCLUDE)
  list(GET _pa 1 QLAKE_PYARROW_LIBDIR)
  list(GET _pa 2 QLAKE_ARROW_VERSION)
  string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _ "${QLAKE_ARROW_VERSION}")
  math(EXPR _soversion "${CMAKE_MATCH_1} * 100 + ${CMAKE_MATCH_2}")
  set(QLAKE_ARROW_LIBS)
  # Since Arrow 24 the S3 filesystem (with the AWS SDK) is its own library, arrow_s3;
  # older wheels carry it inside libarrow.
  foreach(lib arrow_dataset parquet arrow_acero arrow_compute arrow_s3 arrow)
    set(_so "${QLAKE_PYARROW_LIBDIR}/lib${lib}.so.${_soversion}")
    if(NOT EXISTS "${_so}")
      if(lib STREQUAL "arrow_s3")
        continue()
      endif()
      message(FATAL_ERROR "qlake: ${_so} not found in the pyarrow wheel")
    endif()
    add_library(pyarrow::${lib} SHARED IMPORTED GLOBAL)
    set_target_properties(pyarrow::${lib} PROPERTIES
      IMPORTED_LOCATION "${_so}"
      IMPORTED_SONAME "lib${lib}.so.${_soversion}"
      INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${QLAKE_PYARROW_INCLUDE}"
      INTERFACE_INCLUDE_DIRECTORIES "${QLAKE_PYARROW_INCLUDE}")
    list(APPEND QLAKE_ARROW_LIBS pyarrow::${lib})
  endforeach()
  set(CMAKE_BUILD_RPATH "${QLAKE_PYARROW_LIBDIR}")
  set(CMAKE_INSTALL_RPATH "${QLAKE_PYARROW_LIBDIR}")
  message(STATUS "qlake: using Arrow ${QLAKE_ARROW_VERSION} from the pyarrow wheel in ${QLAKE_PYARROW_LIBDIR}")
endif()

if(QLAKE_ARROW_VERSION VERSION_LESS QLAKE_MIN_ARROW_VERSION)
  message(FATAL_ERROR "qlake needs Arrow >= ${QLAKE_MIN_ARROW_VERSION} (C++20); found ${QLAKE_ARROW_VERSION}")
endif()
