# `cpack -G DEB` (in the build directory): shunt_<version>_amd64.deb, made of exactly what
# `cmake --install` installs, under /usr. Dependencies come from dpkg-shlibdeps; the
# maintainer scripts create /run/shunt through systemd-tmpfiles and remove it on purge.
set(CPACK_PACKAGE_NAME shunt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "shunt maintainers <shunt-maintainers@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "faster datacenter sockets without changing applications")
# CPack indents the lines and turns the empty line into the " ." paragraph separator.
set(CPACK_PACKAGE_DESCRIPTION
    "shunt moves same-host TCP connections to shared memory after an SMC-D style
handshake, for unmodified programs through an LD_PRELOAD library (shunt run),
and offers reliable datagrams over several TCP lanes per peer (shunt rds).

This package holds the shunt command, the preload library, manual pages,
bash completion, the runtime directory rule, and the headers, static
library, CMake package and pkg-config file of the C and C++ APIs.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/postinst ${PROJECT_SOURCE_DIR}/packaging/postrm)
include(CPack)
