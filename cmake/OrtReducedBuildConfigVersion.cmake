# Version file for OrtReducedBuild: same-major compatible, ARCH_INDEPENDENT (no binaries here).
# tests/test_backend.py keeps PACKAGE_VERSION equal to the Python package's version.

set(PACKAGE_VERSION "0.1.0")

if(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  string(REGEX MATCH "^[0-9]+" _ort_reduced_build_major "${PACKAGE_VERSION}")
  if("${PACKAGE_FIND_VERSION_MAJOR}" STREQUAL "" OR PACKAGE_FIND_VERSION_MAJOR STREQUAL _ort_reduced_build_major)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  endif()
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
  unset(_ort_reduced_build_major)
endif()
