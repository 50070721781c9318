#[=======================================================================[.rst:
OrtReducedBuildConfig
---------------------

A reduced-operator ONNX Runtime from your models, inside a CMake build: convert ``.onnx`` models to
ORT format and write the operator config at build time, build a minimal ONNX Runtime with only
those kernels, and link it as an imported target.

::

  find_package(OrtReducedBuild CONFIG REQUIRED)   # or: include(<cmakedir>/OrtReducedBuild.cmake)

  ort_reduced_build_config(app_ops MODELS models/classifier.onnx models/detector.onnx)
  ort_reduced_build_add_runtime(ortrt CONFIG app_ops ORT_SOURCE_DIR ${ORT_SRC})
  target_link_libraries(app PRIVATE ortrt)

Finding the package: ``-DOrtReducedBuild_DIR=$(ort-reduced-build --cmakedir)``, or no hint at all in
a scikit-build-core build (the ``cmake.prefix`` entry point puts this directory on the prefix path).

Result variables
^^^^^^^^^^^^^^^^

``OrtReducedBuild_FOUND``, ``OrtReducedBuild_VERSION``
  Set by ``find_package`` (the version file is ``ARCH_INDEPENDENT``, same-major compatible).
``OrtReducedBuild_CMAKE_DIR``
  This directory.

Hints
^^^^^

``ORT_REDUCED_BUILD_PYTHON`` (variable or environment)
  The Python in which ``ort_reduced_build`` is installed. Default: ``Python_EXECUTABLE`` when set
  (scikit-build-core sets it), else ``find_package(Python 3.10 COMPONENTS Interpreter)``.
``ORT_SOURCE_DIR``, ``ORT_DEPS_DIR`` (variable or environment)
  Defaults for ``ORT_SOURCE_DIR`` and ``DEPS_DIR`` of ``ort_reduced_build_add_runtime``.
``ORT_REDUCED_BUILD_CMAKE``
  The CMake that builds ONNX Runtime (ORT 1.28 needs 3.28+). Default: the ``cmake`` beside that
  Python (``pip install cmake``), else ``cmake`` on ``PATH``.
``ORT_REDUCED_BUILD_JOBS``
  Parallel compile jobs of the ONNX Runtime build (default: all CPUs).
``ORT_REDUCED_BUILD_PROTOC``
  The host ``protoc`` of a cross build with a toolchain file (default: the deps dir's prebuilt one,
  else ``protoc`` on ``PATH``; its version must match ORT's protobuf pin).
``ORT_REDUCED_BUILD_ANDROID_SDK`` (or environment ``ANDROID_SDK_ROOT``/``ANDROID_HOME``)
  The Android SDK, which ORT's build.py requires next to the NDK.
``ORT_REDUCED_BUILD_COMPILER_CACHE``, ``ORT_REDUCED_BUILD_COMPILER_CACHE_REMOTE``
  Defaults for ``COMPILER_CACHE`` and ``COMPILER_CACHE_REMOTE`` of ``ort_reduced_build_add_runtime``.
``CMAKE_C_COMPILER_LAUNCHER``, ``CMAKE_CXX_COMPILER_LAUNCHER``
  Passed on to the ONNX Runtime build; one that names ccache or sccache picks that compiler cache.

Commands
^^^^^^^^

.. command:: ort_reduced_build_config

  ::

    ort_reduced_build_config(<target> MODELS <file>...
                             [OUTPUT <file>]
                             [TYPE_REDUCTION | NO_TYPE_REDUCTION]
                             [OPTIMIZATION_LEVEL disable|basic|extended|layout|all]
                             [OPTIMIZATION_STYLE Fixed|Runtime...]
                             [EXTRA_OPS <file>]
                             [ORT_MODELS_DIR <dir>])

  Adds the custom target ``<target>`` (in ``ALL``) whose build-time command converts ``MODELS`` to
  ``.ort`` files in ``ORT_MODELS_DIR`` (default ``${CMAKE_CURRENT_BINARY_DIR}/<target>/models``,
  flat: model file names must differ) and writes the config ``OUTPUT`` (default
  ``${CMAKE_CURRENT_BINARY_DIR}/<target>/required_operators_and_types.config``). It runs again when a
  model file changes, and an output whose content did not change keeps its timestamp, so nothing
  downstream rebuilds. Type reduction is on by default (as in the CLI and ``pyproject.toml``);
  ``TYPE_REDUCTION`` says so explicitly, ``NO_TYPE_REDUCTION`` turns it off (default output then
  ``required_operators.config``). Target properties: ``ORT_REDUCED_BUILD_CONFIG`` (the config path),
  ``ORT_REDUCED_BUILD_MODELS`` (the ``.ort`` paths), ``ORT_REDUCED_BUILD_MODELS_DIR``.

.. command:: ort_reduced_build_add_runtime

  ::

    ort_reduced_build_add_runtime(<target> CONFIG <file or config target>
                                  [ORT_SOURCE_DIR <dir>] [DEPS_DIR <dir>]
                                  [MINIMAL_BUILD basic|extended]
                                  [TYPE_REDUCTION | NO_TYPE_REDUCTION] [NO_EXTRA_TYPE_REDUCTION]
                                  [NO_LTO] [NO_EXCEPTIONS] [MODELS <file>...] [REFERENCE_RUNTIME <lib>]
                                  [NO_VERIFY | VERIFY [INPUTS <file>]]
                                  [COMPILER_CACHE ccache|sccache|none]
                                  [COMPILER_CACHE_REMOTE <url>]
                                  [BUILD_ARGS <build.py argument>...])

  Adds the imported shared library ``<target>`` (with the C/C++ API headers) built by ORT's
  ``tools/ci_build/build.py --minimal_build --include_ops_by_config`` in
  ``${CMAKE_CURRENT_BINARY_DIR}/<target>``, through ``ort-reduced-build build``, which picks the
  flags from the config. The custom target ``<target>-build`` runs it; it rebuilds only when the
  config's content (comments aside, but for its ``# graph types`` lines) or the command changes;
  ``NO_LTO`` turns link-time optimization (on by default, for size) off. ``NO_EXTRA_TYPE_REDUCTION``
  keeps every typed kernel of the ops ORT's type reduction leaves whole (``ai.onnx.ml``, most contrib
  ops); by default those registered for types on none of their nodes are left out. ``NO_EXCEPTIONS``
  builds without C++ exceptions (build.py ``--disable_exceptions``, as ORT's mobile builds): smaller, but
  an error ORT raises aborts the process instead of returning an ``OrtStatus``. ``<target>-dry-run`` prints the
  build.py command line. Any other cross build (``CMAKE_TOOLCHAIN_FILE``, e.g. aarch64 Linux) builds
  ORT with the same toolchain file. Android (``ANDROID``: NDK, ``ANDROID_ABI``, ``ANDROID_PLATFORM``) and iOS
  (``IOS``: ``CMAKE_OSX_SYSROOT``, ``CMAKE_OSX_ARCHITECTURES``, ``CMAKE_OSX_DEPLOYMENT_TARGET``)
  toolchain settings are passed on. ``DEPS_DIR`` holds ORT's dependency sources named as in its
  ``cmake/deps.txt`` for builds with no network. A missing or invalid ``ORT_SOURCE_DIR`` fails at
  configure time. The build ends by running the models on the library it made (``MODELS``, else the
  config target's ``.ort`` files, else the models the config's header lists; under
  ``CMAKE_CROSSCOMPILING_EMULATOR`` when cross-compiling): a model whose session cannot be created or
  that cannot run fails the build with ORT's message. ``NO_VERIFY`` skips that run. ``VERIFY`` also
  adds the CTest test ``<target>-verify`` (``ort_reduced_build_add_verify_test``), which compares
  every output with onnxruntime. ``COMPILER_CACHE`` runs ORT's compiles through ccache or sccache
  (default: ccache when installed), set up so that another build directory reuses the objects;
  ``COMPILER_CACHE_REMOTE`` is its remote storage shared by several machines (``redis://HOST:PORT``,
  ``http://HOST/PATH``). Target properties: ``ORT_REDUCED_BUILD_CONFIG`` (the config),
  ``ORT_REDUCED_BUILD_DIR`` (the build directory).

.. command:: ort_reduced_build_add_verify_test

  ::

    ort_reduced_build_add_verify_test(<name> RUNTIME <runtime target>
                                      [MODELS <config target or file>...] [INPUTS <file>]
                                      [REFERENCE_RUNTIME <lib>])

  Adds the CTest test ``<name>``: ``ort-reduced-build verify --build-dir`` on the runtime's build
  directory, for ``MODELS`` (the ``.ort`` files of ``ort_reduced_build_config`` targets, or model
  files; default: the models the runtime's config lists), with the inputs file ``INPUTS`` (shapes,
  value ranges, ``.npy`` files, tolerances per model). It runs every model on the built library
  (under ``CMAKE_CROSSCOMPILING_EMULATOR`` when cross-compiling) and passes only when every output
  matches the reference's: onnxruntime's, or the full library ``REFERENCE_RUNTIME`` for the target.
  Testing is enabled for the directory (no ``enable_testing()`` needed).
#]=======================================================================]

set(OrtReducedBuild_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")
include("${CMAKE_CURRENT_LIST_DIR}/OrtReducedBuild.cmake")
