# Included by CMakeLists.txt where pybind11 and Python's headers are found: the extension tailsim._tailsim
# beside the package's Python files, in ${TAILSIM_PYTHON_BUILD_DIR}/tailsim (PYTHONPATH for the tests) and
# installed by cmake --install into ${TAILSIM_PYTHON_INSTALL_DIR}/tailsim.
set_target_properties(tailsim_core PROPERTIES POSITION_INDEPENDENT_CODE ON)  # linked into a shared module
set(TAILSIM_PYTHON_BUILD_DIR ${PROJECT_BINARY_DIR}/python)
pybind11_add_module(_tailsim MODULE NO_EXTRAS ${PROJECT_SOURCE_DIR}/python/tailsim_module.cpp)
target_link_libraries(_tailsim PRIVATE tailsim_core)
set_target_properties(_tailsim PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${TAILSIM_PYTHON_BUILD_DIR}/tailsim)
file(GLOB TAILSIM_PYTHON_FILES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/python/tailsim/*.py)
foreach(f ${TAILSIM_PYTHON_FILES})
  get_filename_component(name ${f} NAME)
  configure_file(${f} ${TAILSIM_PYTHON_BUILD_DIR}/tailsim/${name} COPYONLY)
endforeach()

# Debian's python3 looks in <prefix>/lib/python3.X/dist-packages (for /usr/local; /usr/lib/python3/dist-packages
# is the system's own).
set(TAILSIM_PYTHON_INSTALL_DIR "lib/python${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}/dist-packages"
    CACHE STRING "where cmake --install puts the Python package, relative to the prefix")
# The installed package finds share/tailsim (configs/, models/) from its own folder, as the binary does from bin/.
file(RELATIVE_PATH TAILSIM_PYTHON_DATA_REL /prefix/${TAILSIM_PYTHON_INSTALL_DIR}/tailsim /prefix/share/tailsim)
file(WRITE ${PROJECT_BINARY_DIR}/python_install/_installed.py
     "# Written by cmake --install: where share/tailsim lies from this folder.\nDATA = \"${TAILSIM_PYTHON_DATA_REL}\"\n")
install(TARGETS _tailsim LIBRARY DESTINATION ${TAILSIM_PYTHON_INSTALL_DIR}/tailsim)
install(FILES ${TAILSIM_PYTHON_FILES} ${PROJECT_BINARY_DIR}/python_install/_installed.py
        DESTINATION ${TAILSIM_PYTHON_INSTALL_DIR}/tailsim)
