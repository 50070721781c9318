# OrtReducedBuild.cmake: the commands of the OrtReducedBuild package. Reference: the block at the top
# of OrtReducedBuildConfig.cmake and docs/cmake.md. Usable on its own through include(<path>).
#
# The logic lives in the Python package: the config is written by `ort-reduced-build convert`, and
# every ONNX Runtime build.py flag is chosen by `ort-reduced-build build` (module build.py). These
# functions only validate their arguments, map CMake's toolchain variables to CLI flags and wire
# the commands into the build graph.

include_guard(GLOBAL)

if(CMAKE_VERSION VERSION_LESS 3.20)
  message(FATAL_ERROR "OrtReducedBuild needs CMake 3.20 or newer; this is ${CMAKE_VERSION}")
endif()

# Reject unparsed or valueless arguments, naming the function.
macro(_ort_reduced_build_check_parsed fn)
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${fn}: unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(ARG_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "${fn}: ${ARG_KEYWORDS_MISSING_VALUES} needs a value")
  endif()
endmacro()

# First non-empty value among variables (VAR) and environment variables (ENV{VAR}).
function(_ort_reduced_build_first out_var)
  foreach(name IN LISTS ARGN)
    if(name MATCHES "^ENV{(.*)}$")
      set(value "$ENV{${CMAKE_MATCH_1}}")
    else()
      set(value "${${name}}")
    endif()
    if(NOT value STREQUAL "")
      set(${out_var} "${value}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out_var} "" PARENT_SCOPE)
endfunction()

# The Python that has ort_reduced_build: ORT_REDUCED_BUILD_PYTHON, else Python_EXECUTABLE, else
# FindPython. Probed once per configure; the package's files (and onnxruntime's) become DEPENDS.
function(_ort_reduced_build_python fn out_var)
  _ort_reduced_build_first(python ORT_REDUCED_BUILD_PYTHON ENV{ORT_REDUCED_BUILD_PYTHON} Python_EXECUTABLE)
  if(python STREQUAL "")
    find_package(Python 3.10 COMPONENTS Interpreter QUIET)
    if(NOT Python_Interpreter_FOUND)
      message(FATAL_ERROR "${fn}: no Python 3.10+ found; set ORT_REDUCED_BUILD_PYTHON to the Python "
                          "where ort-reduced-build is installed")
    endif()
    set(python "${Python_EXECUTABLE}")
  endif()
  get_property(probed GLOBAL PROPERTY _ORT_REDUCED_BUILD_PROBED)
  if(NOT probed STREQUAL python)
    set(probe [=[
import importlib.util, json, pathlib
import ort_reduced_build as p
ort = importlib.util.find_spec("onnxruntime")
print(json.dumps({"package": pathlib.Path(p.__file__).parent.as_posix(), "version": p.__version__,
                  "onnxruntime": pathlib.Path(ort.origin).as_posix() if ort and ort.origin else ""}))
]=])
    execute_process(COMMAND "${python}" -c "${probe}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${fn}: ${python} cannot import ort_reduced_build; pip install ort-reduced-build "
                          "there, or set ORT_REDUCED_BUILD_PYTHON to a Python that has it.\n${err}")
    endif()
    string(JSON package GET "${out}" package)
    string(JSON version GET "${out}" version)
    string(JSON ort GET "${out}" onnxruntime)
    file(GLOB sources CONFIGURE_DEPENDS "${package}/*.py")
    set_property(GLOBAL PROPERTY _ORT_REDUCED_BUILD_PROBED "${python}")
    set_property(GLOBAL PROPERTY _ORT_REDUCED_BUILD_DEPENDS ${sources} ${ort})
    message(STATUS "ort-reduced-build ${version}: ${python}")
  endif()
  set(${out_var} "${python}" PARENT_SCOPE)
endfunction()

# Absolute path of a user-given file argument; relative paths are taken from `base`.
function(_ort_reduced_build_abspath out_var path base)
  cmake_path(ABSOLUTE_PATH path BASE_DIRECTORY "${base}" NORMALIZE OUTPUT_VARIABLE abs)
  set(${out_var} "${abs}" PARENT_SCOPE)
endfunction()

# Absolute model paths and the .ort files the converter writes for them into `models_dir`, named as
# ORT's converter names them: <stem>[.<level>][.with_runtime_opt].ort, one per optimization style.
function(_ort_reduced_build_models fn models_dir level styles models_var ort_files_var)
  set(suffixes)
  foreach(style IN LISTS styles)
    set(suffix "")
    if(NOT level STREQUAL "all")
      string(APPEND suffix ".${level}")
    endif()
    if(style STREQUAL "Runtime")
      string(APPEND suffix ".with_runtime_opt")
    endif()
    list(APPEND suffixes "${suffix}.ort")
  endforeach()
  set(models)
  set(names)
  set(ort_files)
  foreach(model IN LISTS ARGN)
    _ort_reduced_build_abspath(abs "${model}" "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${abs}" OR IS_DIRECTORY "${abs}")
      if(model MATCHES "^[A-Z_]+$")
        message(FATAL_ERROR "${fn}: MODELS: ${model} is not a file (a misspelled keyword?)")
      endif()
      message(FATAL_ERROR "${fn}: MODELS: ${model} is not a file")
    endif()
    get_filename_component(name "${abs}" NAME)
    string(TOLOWER "${name}" lower)
    if(NOT lower MATCHES "\\.onnx$")
      message(FATAL_ERROR "${fn}: MODELS: ${model} is not an .onnx model")
    endif()
    if(lower IN_LIST names)
      message(FATAL_ERROR "${fn}: MODELS: two models named ${name}; the .ort files share ORT_MODELS_DIR")
    endif()
    list(APPEND names "${lower}")
    list(APPEND models "${abs}")
    string(REGEX REPLACE "\\.[oO][nN][nN][xX]$" "" stem "${name}")
    foreach(suffix IN LISTS suffixes)
      list(APPEND ort_files "${models_dir}/${stem}${suffix}")
    endforeach()
  endforeach()
  set(${models_var} ${models} PARENT_SCOPE)
  set(${ort_files_var} ${ort_files} PARENT_SCOPE)
endfunction()

function(ort_reduced_build_config target)
  set(fn "ort_reduced_build_config(${target})")
  cmake_parse_arguments(PARSE_ARGV 1 ARG "TYPE_REDUCTION;NO_TYPE_REDUCTION"
                        "OUTPUT;OPTIMIZATION_LEVEL;EXTRA_OPS;ORT_MODELS_DIR" "MODELS;OPTIMIZATION_STYLE")
  _ort_reduced_build_check_parsed("${fn}")
  if(NOT ARG_MODELS)
    message(FATAL_ERROR "${fn}: MODELS is required: the .onnx models the runtime must run")
  endif()
  if(TARGET "${target}")
    message(FATAL_ERROR "${fn}: a target named ${target} already exists")
  endif()
  if(ARG_TYPE_REDUCTION AND ARG_NO_TYPE_REDUCTION)
    message(FATAL_ERROR "${fn}: TYPE_REDUCTION and NO_TYPE_REDUCTION are exclusive")
  endif()
  if(NOT DEFINED ARG_OPTIMIZATION_LEVEL)
    set(ARG_OPTIMIZATION_LEVEL all)
  elseif(NOT ARG_OPTIMIZATION_LEVEL MATCHES "^(disable|basic|extended|layout|all)$")
    message(FATAL_ERROR "${fn}: OPTIMIZATION_LEVEL ${ARG_OPTIMIZATION_LEVEL} is not one of disable, basic, "
                        "extended, layout, all")
  endif()
  if(NOT ARG_OPTIMIZATION_STYLE)
    set(ARG_OPTIMIZATION_STYLE Fixed)
  endif()
  list(REMOVE_DUPLICATES ARG_OPTIMIZATION_STYLE)
  foreach(style IN LISTS ARG_OPTIMIZATION_STYLE)
    if(NOT style MATCHES "^(Fixed|Runtime)$")
      message(FATAL_ERROR "${fn}: OPTIMIZATION_STYLE ${style} is not Fixed or Runtime")
    endif()
  endforeach()

  set(dir "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  if(ARG_NO_TYPE_REDUCTION)
    set(type_reduction off)
    set(default_output "${dir}/required_operators.config")
  else()
    set(type_reduction on)
    set(default_output "${dir}/required_operators_and_types.config")
  endif()
  _ort_reduced_build_first(output ARG_OUTPUT default_output)
  _ort_reduced_build_abspath(output "${output}" "${CMAKE_CURRENT_BINARY_DIR}")
  _ort_reduced_build_first(models_dir ARG_ORT_MODELS_DIR)
  if(models_dir STREQUAL "")
    set(models_dir "${dir}/models")
  endif()
  _ort_reduced_build_abspath(models_dir "${models_dir}" "${CMAKE_CURRENT_BINARY_DIR}")

  _ort_reduced_build_models("${fn}" "${models_dir}" "${ARG_OPTIMIZATION_LEVEL}" "${ARG_OPTIMIZATION_STYLE}"
                           models ort_files ${ARG_MODELS})

  _ort_reduced_build_python("${fn}" python)
  get_property(package_files GLOBAL PROPERTY _ORT_REDUCED_BUILD_DEPENDS)
  set(command "${python}" -m ort_reduced_build convert ${models} -o "${models_dir}" --config "${output}"
              --optimization-level ${ARG_OPTIMIZATION_LEVEL})
  foreach(style IN LISTS ARG_OPTIMIZATION_STYLE)
    list(APPEND command --optimization-style ${style})
  endforeach()
  if(ARG_NO_TYPE_REDUCTION)
    list(APPEND command --no-type-reduction)
  endif()
  set(extra_ops)
  if(DEFINED ARG_EXTRA_OPS)
    _ort_reduced_build_abspath(extra_ops "${ARG_EXTRA_OPS}" "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${extra_ops}")
      message(FATAL_ERROR "${fn}: EXTRA_OPS ${ARG_EXTRA_OPS} does not exist")
    endif()
    list(APPEND command --extra-ops "${extra_ops}")
  endif()

  # The stamp is the OUTPUT: the converter leaves a config or .ort whose content did not change
  # untouched (mtime kept), so with BYPRODUCTS (ninja restat) nothing downstream rebuilds.
  set(stamp "${dir}/ort-reduced-build.stamp")
  file(MAKE_DIRECTORY "${dir}")  # Makefile generators do not create an OUTPUT's directory
  list(LENGTH models count)
  add_custom_command(
    OUTPUT "${stamp}"
    BYPRODUCTS "${output}" ${ort_files}
    COMMAND ${command}
    COMMAND "${CMAKE_COMMAND}" -E touch "${stamp}"
    DEPENDS ${models} ${extra_ops} ${package_files}
    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
    COMMENT "ort-reduced-build: converting ${count} model(s) and writing ${output}"
    VERBATIM)
  add_custom_target("${target}" ALL DEPENDS "${stamp}")
  set_target_properties("${target}" PROPERTIES
    ORT_REDUCED_BUILD_CONFIG "${output}"
    ORT_REDUCED_BUILD_MODELS "${ort_files}"
    ORT_REDUCED_BUILD_MODELS_DIR "${models_dir}")

  message(STATUS "${fn}")
  message(STATUS "  MODELS: ${ARG_MODELS}")
  message(STATUS "  OPTIMIZATION_LEVEL ${ARG_OPTIMIZATION_LEVEL}, OPTIMIZATION_STYLE ${ARG_OPTIMIZATION_STYLE}, "
                 "type reduction ${type_reduction}")
  message(STATUS "  config: ${output}")
  message(STATUS "  .ort files: ${models_dir}")
endfunction()

# build.py's cross-compiling flags, from the variables the Android NDK and iOS toolchains set.
function(_ort_reduced_build_cross_args fn out_var)
  set(args)
  if(ANDROID OR CMAKE_SYSTEM_NAME STREQUAL "Android")
    _ort_reduced_build_first(ndk CMAKE_ANDROID_NDK ANDROID_NDK ENV{ANDROID_NDK_HOME} ENV{ANDROID_NDK_ROOT})
    if(ndk STREQUAL "" OR NOT IS_DIRECTORY "${ndk}")
      message(FATAL_ERROR "${fn}: building for Android needs the NDK: set CMAKE_ANDROID_NDK (or use the NDK's "
                          "toolchain file, which sets ANDROID_NDK); got '${ndk}'")
    endif()
    _ort_reduced_build_first(sdk ORT_REDUCED_BUILD_ANDROID_SDK ANDROID_SDK_ROOT ENV{ANDROID_SDK_ROOT}
                             ENV{ANDROID_HOME})
    if(sdk STREQUAL "" OR NOT IS_DIRECTORY "${sdk}")
      message(FATAL_ERROR "${fn}: ONNX Runtime's build.py needs the Android SDK as well as the NDK: set "
                          "ORT_REDUCED_BUILD_ANDROID_SDK or ANDROID_SDK_ROOT; got '${sdk}'")
    endif()
    _ort_reduced_build_first(abi ANDROID_ABI CMAKE_ANDROID_ARCH_ABI)
    _ort_reduced_build_first(api ANDROID_PLATFORM ANDROID_NATIVE_API_LEVEL CMAKE_SYSTEM_VERSION)
    string(REGEX REPLACE "^android-" "" api "${api}")
    list(APPEND args --android --android-ndk "${ndk}" --android-sdk "${sdk}")
    if(NOT abi STREQUAL "")
      list(APPEND args --android-abi "${abi}")
    endif()
    if(api MATCHES "^[0-9]+$")
      list(APPEND args --android-api "${api}")
    elseif(NOT api STREQUAL "")
      message(FATAL_ERROR "${fn}: ANDROID_PLATFORM ${api} is not an API level number (e.g. android-24)")
    endif()
    if(ANDROID_STL STREQUAL "c++_shared" OR CMAKE_ANDROID_STL_TYPE STREQUAL "c++_shared")
      list(APPEND args --android-cpp-shared)
    endif()
  elseif(IOS OR CMAKE_SYSTEM_NAME STREQUAL "iOS")
    if("${CMAKE_OSX_DEPLOYMENT_TARGET}" STREQUAL "")
      message(FATAL_ERROR "${fn}: building for iOS needs CMAKE_OSX_DEPLOYMENT_TARGET (e.g. 15.1)")
    endif()
    list(LENGTH CMAKE_OSX_ARCHITECTURES n_arch)
    if(n_arch GREATER 1)
      message(FATAL_ERROR "${fn}: CMAKE_OSX_ARCHITECTURES has ${n_arch} architectures; ONNX Runtime builds "
                          "one per runtime target")
    endif()
    _ort_reduced_build_first(arch CMAKE_OSX_ARCHITECTURES)
    _ort_reduced_build_first(sysroot CMAKE_OSX_SYSROOT)
    list(APPEND args --ios --apple-deploy-target "${CMAKE_OSX_DEPLOYMENT_TARGET}")
    if(NOT arch STREQUAL "")
      list(APPEND args --osx-arch "${arch}")
    endif()
    if(NOT sysroot STREQUAL "")
      list(APPEND args --apple-sysroot "${sysroot}")
    endif()
  endif()
  set(${out_var} ${args} PARENT_SCOPE)
endfunction()

# ORT_SOURCE_DIR and DEPS_DIR from the arguments, else variables, else the environment; validated.
function(_ort_reduced_build_sources fn source_var deps_var arg_source arg_deps)
  _ort_reduced_build_first(source arg_source ORT_SOURCE_DIR ENV{ORT_SOURCE_DIR})
  if(source STREQUAL "")
    message(FATAL_ERROR "${fn}: ORT_SOURCE_DIR is not set: pass ORT_SOURCE_DIR <dir> or -DORT_SOURCE_DIR=<dir>, "
                        "an ONNX Runtime source tree")
  endif()
  _ort_reduced_build_abspath(source "${source}" "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${source}/tools/ci_build/build.py")
    message(FATAL_ERROR "${fn}: ORT_SOURCE_DIR ${source} is not an ONNX Runtime source tree "
                        "(tools/ci_build/build.py not found)")
  endif()
  _ort_reduced_build_first(deps arg_deps ORT_DEPS_DIR ENV{ORT_DEPS_DIR})
  if(NOT deps STREQUAL "")
    _ort_reduced_build_abspath(deps "${deps}" "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT IS_DIRECTORY "${deps}")
      message(FATAL_ERROR "${fn}: DEPS_DIR ${deps} is not a directory")
    endif()
  endif()
  set(${source_var} "${source}" PARENT_SCOPE)
  set(${deps_var} "${deps}" PARENT_SCOPE)
endfunction()

# Ask the CLI what the build will produce (library path, headers, ORT version); print its warnings.
function(_ort_reduced_build_describe fn python library_var include_var version_var)
  execute_process(COMMAND "${python}" -m ort_reduced_build ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE described ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${fn}: ${err}")
  endif()
  string(JSON library GET "${described}" library)
  string(JSON include_dir GET "${described}" include_dirs 0)
  string(JSON ort_version GET "${described}" ort_version)
  string(JSON n_warnings LENGTH "${described}" warnings)
  if(n_warnings GREATER 0)
    math(EXPR last "${n_warnings} - 1")
    foreach(i RANGE ${last})
      string(JSON warning GET "${described}" warnings ${i})
      message(WARNING "${fn}: ${warning}")
    endforeach()
  endif()
  set(${library_var} "${library}" PARENT_SCOPE)
  set(${include_var} "${include_dir}" PARENT_SCOPE)
  set(${version_var} "${ort_version}" PARENT_SCOPE)
endfunction()

function(ort_reduced_build_add_runtime target)
  set(fn "ort_reduced_build_add_runtime(${target})")
  cmake_parse_arguments(PARSE_ARGV 1 ARG "TYPE_REDUCTION;NO_TYPE_REDUCTION;NO_LTO"
                        "CONFIG;ORT_SOURCE_DIR;DEPS_DIR;MINIMAL_BUILD" "BUILD_ARGS")
  _ort_reduced_build_check_parsed("${fn}")
  if(NOT DEFINED ARG_CONFIG)
    message(FATAL_ERROR "${fn}: CONFIG is required: a config file or an ort_reduced_build_config() target")
  endif()
  if(TARGET "${target}" OR TARGET "${target}-build")
    message(FATAL_ERROR "${fn}: a target named ${target} or ${target}-build already exists")
  endif()
  if(ARG_TYPE_REDUCTION AND ARG_NO_TYPE_REDUCTION)
    message(FATAL_ERROR "${fn}: TYPE_REDUCTION and NO_TYPE_REDUCTION are exclusive")
  endif()
  _ort_reduced_build_first(minimal ARG_MINIMAL_BUILD)
  if(minimal STREQUAL "")
    set(minimal basic)
  elseif(NOT minimal MATCHES "^(basic|extended)$")
    message(FATAL_ERROR "${fn}: MINIMAL_BUILD ${minimal} is not basic or extended")
  endif()

  _ort_reduced_build_sources("${fn}" source deps "${ARG_ORT_SOURCE_DIR}" "${ARG_DEPS_DIR}")

  set(config_target)
  if(TARGET "${ARG_CONFIG}")
    get_target_property(config "${ARG_CONFIG}" ORT_REDUCED_BUILD_CONFIG)
    if(NOT config)
      message(FATAL_ERROR "${fn}: CONFIG target ${ARG_CONFIG} has no ORT_REDUCED_BUILD_CONFIG property; make it "
                          "with ort_reduced_build_config() or pass a config file")
    endif()
    set(config_target "${ARG_CONFIG}")
  else()
    _ort_reduced_build_abspath(config "${ARG_CONFIG}" "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${config}")
      message(FATAL_ERROR "${fn}: CONFIG ${ARG_CONFIG} is neither a target nor an existing file")
    endif()
  endif()

  set(dir "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  set(args build --ort-source "${source}" --config "${config}" --build-dir "${dir}" --minimal-build ${minimal})
  if(ARG_NO_TYPE_REDUCTION)
    list(APPEND args --no-type-reduction)
  endif()
  if(ARG_NO_LTO)
    list(APPEND args --no-lto)
  endif()
  if(NOT deps STREQUAL "")
    list(APPEND args --deps-dir "${deps}")
  endif()
  _ort_reduced_build_cross_args("${fn}" cross)
  list(APPEND args ${cross})
  foreach(lang IN ITEMS C CXX)
    if(NOT "${CMAKE_${lang}_COMPILER_LAUNCHER}" STREQUAL "")
      list(GET CMAKE_${lang}_COMPILER_LAUNCHER 0 launcher)
      list(APPEND args --compiler-launcher "${lang}=${launcher}")
    endif()
  endforeach()
  if(NOT "${ORT_REDUCED_BUILD_CMAKE}" STREQUAL "")
    list(APPEND args --cmake "${ORT_REDUCED_BUILD_CMAKE}")
  endif()
  if(NOT "${ORT_REDUCED_BUILD_JOBS}" STREQUAL "")
    list(APPEND args --jobs "${ORT_REDUCED_BUILD_JOBS}")
  endif()
  set(tail)
  if(ARG_BUILD_ARGS)
    set(tail -- ${ARG_BUILD_ARGS})
  endif()

  _ort_reduced_build_python("${fn}" python)
  get_property(package_files GLOBAL PROPERTY _ORT_REDUCED_BUILD_DEPENDS)
  _ort_reduced_build_describe("${fn}" "${python}" library include_dir ort_version ${args} --describe ${tail})

  set(stamp "${dir}/ort-reduced-build.stamp")
  file(MAKE_DIRECTORY "${dir}")
  add_custom_command(
    OUTPUT "${stamp}"
    BYPRODUCTS "${library}"
    COMMAND "${python}" -m ort_reduced_build ${args} ${tail}
    COMMAND "${CMAKE_COMMAND}" -E touch "${stamp}"
    DEPENDS "${config}" ${config_target} ${package_files}
    WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}"
    COMMENT "ort-reduced-build: minimal ONNX Runtime ${ort_version} for ${target} (the first build takes a while)"
    USES_TERMINAL
    VERBATIM)
  add_custom_target("${target}-build" DEPENDS "${stamp}")
  add_custom_target("${target}-dry-run"
    COMMAND "${python}" -m ort_reduced_build ${args} --dry-run ${tail}
    WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}"
    COMMENT "ort-reduced-build: the build.py command line for ${target}"
    USES_TERMINAL
    VERBATIM)
  if(config_target)
    add_dependencies("${target}-dry-run" "${config_target}")
  endif()
  add_library("${target}" SHARED IMPORTED GLOBAL)
  set_target_properties("${target}" PROPERTIES
    IMPORTED_LOCATION "${library}"
    INTERFACE_INCLUDE_DIRECTORIES "${include_dir}"
    ORT_REDUCED_BUILD_CONFIG "${config}")
  add_dependencies("${target}" "${target}-build")

  message(STATUS "${fn}")
  message(STATUS "  ORT_SOURCE_DIR: ${source} (${ort_version})")
  message(STATUS "  CONFIG: ${config}")
  list(JOIN cross " " cross_text)
  if(cross_text STREQUAL "")
    set(cross_text "host")
  endif()
  message(STATUS "  MINIMAL_BUILD ${minimal}; DEPS_DIR: ${deps}; target: ${cross_text}")
  message(STATUS "  library: ${library}")
endfunction()
