# Manual pages and bash completion, made at build time from the CLI's own help
# (packaging/gen-man.sh: help2man on `shunt [COMMAND...] --help` for every command
# `shunt completion commands` lists, and `shunt completion bash`), so they follow the code.
if(SHUNT_BUILD_MAN)
  find_program(HELP2MAN help2man)
  if(NOT HELP2MAN)
    message(FATAL_ERROR "help2man not found: install it (scripts/install-deps.sh) or configure with -DSHUNT_BUILD_MAN=OFF")
  endif()
  set(SHUNT_MAN_BUILD ${PROJECT_BINARY_DIR}/man)
  add_custom_command(OUTPUT ${SHUNT_MAN_BUILD}/stamp
    COMMAND ${CMAKE_COMMAND} -E env HELP2MAN=${HELP2MAN}
            bash ${PROJECT_SOURCE_DIR}/packaging/gen-man.sh $<TARGET_FILE:shunt_cli> ${SHUNT_MAN_BUILD} ${PROJECT_VERSION}
    DEPENDS shunt_cli ${PROJECT_SOURCE_DIR}/packaging/gen-man.sh
    COMMENT "Generating manual pages and bash completion" VERBATIM)
  add_custom_target(shunt_man ALL DEPENDS ${SHUNT_MAN_BUILD}/stamp)
  install(DIRECTORY ${SHUNT_MAN_BUILD}/man1 DESTINATION ${CMAKE_INSTALL_MANDIR})
  install(FILES ${SHUNT_MAN_BUILD}/shunt.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
          RENAME shunt)
endif()
