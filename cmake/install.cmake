# `cmake --install`: what an installed shunt consists of (docs/packaging.md has the layout).
#   bin/shunt                                  the CLI
#   <libdir>/shunt/libshunt-preload.so         private: found by `shunt run` relative to bin/shunt
#   include/shunt/*.h, *.hpp                   public C and C++ APIs
#   <libdir>/libshunt.a                        the library behind them
#   <libdir>/cmake/shunt/                      find_package(shunt): imported target shunt::shunt
#   <libdir>/pkgconfig/shunt.pc                pkg-config shunt
#   share/man/man1, share/bash-completion      manual pages and completion (cmake/man.cmake)
#   lib/tmpfiles.d/shunt.conf                  creates /run/shunt with the rendezvous modes
#   share/doc/shunt/                           copyright and changelog
include(CMakePackageConfigHelpers)

install(TARGETS shunt_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS shunt-preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/shunt NAMELINK_SKIP)

install(TARGETS shunt EXPORT shuntTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/shunt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")
install(FILES ${PROJECT_BINARY_DIR}/include/shunt/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shunt)

set(SHUNT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shunt)
install(EXPORT shuntTargets NAMESPACE shunt:: DESTINATION ${SHUNT_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/shuntConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/shuntConfig.cmake INSTALL_DESTINATION ${SHUNT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shuntConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shuntConfig.cmake ${PROJECT_BINARY_DIR}/shuntConfigVersion.cmake
        DESTINATION ${SHUNT_CMAKE_DIR})

# shunt.pc finds its prefix from its own location (${pcfiledir}), so one file serves any
# install prefix and the package alike.
file(RELATIVE_PATH SHUNT_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" SHUNT_PC_TO_PREFIX "${SHUNT_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/shunt.pc.in ${PROJECT_BINARY_DIR}/shunt.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/shunt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# systemd-tmpfiles reads /usr/lib/tmpfiles.d (not a multiarch directory).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/shunt.tmpfiles DESTINATION lib/tmpfiles.d RENAME shunt.conf)

# Debian wants both compressed with gzip -9n (reproducible: no name, no time stamp).
set(SHUNT_DOC_BUILD ${PROJECT_BINARY_DIR}/doc)
add_custom_command(OUTPUT ${SHUNT_DOC_BUILD}/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${SHUNT_DOC_BUILD}
  COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/packaging/changelog > ${SHUNT_DOC_BUILD}/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/changelog VERBATIM)
add_custom_target(shunt_doc ALL DEPENDS ${SHUNT_DOC_BUILD}/changelog.gz)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright ${SHUNT_DOC_BUILD}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
