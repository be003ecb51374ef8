# `cmake --install build [--prefix P]`: the binary, the sample config and example configs, the example
# Lua policies, the docs, the man pages (scdoc sources in docs/man, turned into roff by the build) and
# the systemd unit (its paths rewritten for the prefix). With the prefix /usr (the Debian package,
# scripts/build-deb.sh) the config goes to /etc/smtp-gateway, else to PREFIX/etc/smtp-gateway.
include(GNUInstallDirs)
set(GATEWAY_DOCDIR ${CMAKE_INSTALL_DATAROOTDIR}/doc/smtp-gateway)

install(TARGETS smtp-gateway RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES etc/smtp-gateway.toml DESTINATION etc/smtp-gateway)
install(DIRECTORY etc/examples/ DESTINATION ${GATEWAY_DOCDIR}/examples)
install(DIRECTORY policies/ DESTINATION ${GATEWAY_DOCDIR}/policies)
install(DIRECTORY docs/ DESTINATION ${GATEWAY_DOCDIR} FILES_MATCHING PATTERN "*.md" PATTERN "man" EXCLUDE)
install(FILES README.md LICENSE NOTICE DESTINATION ${GATEWAY_DOCDIR})

find_program(SCDOC scdoc)
if(SCDOC)
  set(_pages smtp-gateway.8 smtp-gateway.toml.5)
  set(_outs)
  foreach(page ${_pages})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
    add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${page}
                       COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
                       COMMAND ${SCDOC} < ${CMAKE_SOURCE_DIR}/docs/man/${page}.scd > ${CMAKE_BINARY_DIR}/man/${page}
                       DEPENDS ${CMAKE_SOURCE_DIR}/docs/man/${page}.scd VERBATIM)
    list(APPEND _outs ${CMAKE_BINARY_DIR}/man/${page})
    install(FILES ${CMAKE_BINARY_DIR}/man/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${_outs})
else()
  message(WARNING "scdoc not found: man pages are not built (apt-get install scdoc)")
endif()

# The unit, with the binary and config paths of this install (the prefix is known at install time).
install(CODE [[
  set(_prefix "${CMAKE_INSTALL_PREFIX}")
  set(_unitdir "lib/systemd/system")  # /usr/lib/systemd/system for the package (merged /usr)
  if(_prefix STREQUAL "/usr")
    set(_etc "/etc/smtp-gateway")
  else()
    set(_etc "${_prefix}/etc/smtp-gateway")
  endif()
  file(READ "${GATEWAY_SOURCE_DIR}/etc/smtp-gateway.service" _unit)
  string(REPLACE "/usr/local/bin/smtp-gateway" "${_prefix}/bin/smtp-gateway" _unit "${_unit}")
  string(REPLACE "/etc/smtp-gateway/" "${_etc}/" _unit "${_unit}")
  string(REPLACE "file:///usr/local/share/doc/smtp-gateway/edge.md" "man:smtp-gateway(8) file://${_prefix}/share/doc/smtp-gateway/deploy.md" _unit "${_unit}")
  file(WRITE "${GATEWAY_BINARY_DIR}/smtp-gateway.service.installed" "${_unit}")
  file(INSTALL "${GATEWAY_BINARY_DIR}/smtp-gateway.service.installed" DESTINATION "${CMAKE_INSTALL_PREFIX}/${_unitdir}"
       RENAME smtp-gateway.service)
]])
