# gateway_plugin(NAME SOURCES a.cpp b.cpp [LIBS lib...])
# A plugin is an OBJECT library, so its self-registration (GW_REGISTER_PLUGIN) is always linked in.
function(gateway_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(plugin_${name} OBJECT ${P_SOURCES})
  # A plugin sees its own folder, gateway/core and the leaves; never another plugin, gateway/smtp,
  # gateway/upstream or lua/ (cmake/Layers.cmake).
  gateway_include_root(plugin_${name} plugins/${name})
  target_link_libraries(plugin_${name} PUBLIC gw_core gw_dns gw_store gw_observe gw_config ${P_LIBS})
  set_property(GLOBAL APPEND PROPERTY GATEWAY_PLUGIN_TARGETS plugin_${name})
endfunction()
