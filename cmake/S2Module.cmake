# s2_module(NAME name SOURCES ... DEPS ...)
#   Defines static library s2_<name> from the sources (include root = repo root,
#   so code says #include "common/xml/xml_stream.h").
# s2_unit_test(NAME name SOURCES ... DEPS ... [ARGS ...])
#   Defines doctest executable unit_<name> and registers it with CTest
#   (label "unit").
function(s2_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(s2_${M_NAME} STATIC ${M_SOURCES})
  target_include_directories(s2_${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(s2_${M_NAME} PUBLIC ${M_DEPS})
endfunction()

# doctest's runner (its main and reporters: several seconds of compiling) is
# built once and linked into every unit test executable.
function(s2_doctest_main)
  if(NOT TARGET s2_doctest_main)
    add_library(s2_doctest_main OBJECT ${PROJECT_SOURCE_DIR}/tests/unit/doctest_main.cpp)
    target_link_libraries(s2_doctest_main PRIVATE doctest::doctest)
  endif()
endfunction()

function(s2_unit_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;DEPS;ARGS" ${ARGN})
  s2_doctest_main()
  add_executable(unit_${T_NAME} $<TARGET_OBJECTS:s2_doctest_main> ${T_SOURCES})
  target_include_directories(unit_${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(unit_${T_NAME} PRIVATE ${T_DEPS} doctest::doctest)
  add_test(NAME unit_${T_NAME} COMMAND unit_${T_NAME} ${T_ARGS})
  set_tests_properties(unit_${T_NAME} PROPERTIES LABELS unit TIMEOUT 300)
endfunction()
