#[=======================================================================[.rst:
OrtReducedBuildConfig
---------------------

The CMake package of ort-reduced-build. Found by ``find_package(OrtReducedBuild CONFIG)``: with no
hints in a scikit-build-core build (the ``cmake.prefix`` entry point puts this directory on the prefix
path), else with ``-DOrtReducedBuild_DIR=$(ort-reduced-build --cmakedir)``.

Result variables
^^^^^^^^^^^^^^^^

``OrtReducedBuild_FOUND``, ``OrtReducedBuild_VERSION``
  Set by ``find_package``.
``OrtReducedBuild_CMAKE_DIR``
  This directory.

Set by the ``ort_reduced_build.backend`` build backend (cache variables, absolute paths)
^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^

``ORT_REDUCED_BUILD_CONFIG``
  The operator config of the project's models (ORT's ``--include_ops_by_config`` file).
``ORT_REDUCED_BUILD_MODELS_DIR``
  The converted ``.ort`` models, at their paths relative to the project root.

Commands (``ort_reduced_build_config``, ``ort_reduced_build_add_runtime``) come from
``OrtReducedBuild.cmake`` in this directory.
#]=======================================================================]

set(OrtReducedBuild_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")
include("${CMAKE_CURRENT_LIST_DIR}/OrtReducedBuild.cmake" OPTIONAL)
