# Include roots that make the build enforce the include direction (README, "Architecture").
#
# Sources include project headers by their path from the repository root ("gateway/dns/wire.hpp").
# There is no global include path to the repository root: each folder library gets its own root
# directory holding a symbolic link to its own folder only, and sees the others through the roots
# of the libraries it links (PUBLIC, so the allowed set is the closure of the arrows). An include
# against the direction names a folder that is not in any visible root, and fails to compile.
function(gateway_include_root target)
  set(root ${CMAKE_BINARY_DIR}/include-roots/${target})
  foreach(folder IN LISTS ARGN)
    get_filename_component(parent ${root}/${folder} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    if(NOT IS_SYMLINK ${root}/${folder})
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
    endif()
  endforeach()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${root})
  else()
    target_include_directories(${target} PUBLIC ${root})
  endif()
endfunction()

# gateway_folder_library(NAME FOLDER SOURCES a.cpp ... [DEPS gw_x ...] [LIBS ext ...])
# One static library for one folder of gateway/ (sources relative to that folder).
function(gateway_folder_library name folder)
  cmake_parse_arguments(L "" "" "SOURCES;DEPS;LIBS" ${ARGN})
  list(TRANSFORM L_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/${folder}/)
  add_library(${name} STATIC ${L_SOURCES})
  gateway_include_root(${name} ${folder})
  target_link_libraries(${name} PUBLIC ${L_DEPS} ${L_LIBS})
endfunction()
