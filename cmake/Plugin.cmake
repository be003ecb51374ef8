# gateway_plugin(NAME SOURCES a.cpp b.cpp [LIBS lib...])
# A plugin is an OBJECT library, so its self-registration (GW_REGISTER_PLUGIN) is always linked in.
function(gateway_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(plugin_${name} OBJECT ${P_SOURCES})
  target_link_libraries(plugin_${name} PUBLIC gateway_core ${P_LIBS})
  set_property(GLOBAL APPEND PROPERTY GATEWAY_PLUGIN_TARGETS plugin_${name})
endfunction()
