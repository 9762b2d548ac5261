# h2rpc_generate(<target> PROTOS <a.proto>... [IMPORT_DIRS <dir>...]
#                [NANOPB_OPTIONS <file.options>...] [OUT_DIR <dir>]
#                [NO_LINK])
#
# Runs nanopb's generator and protoc-gen-h2rpc on each proto and adds the
# generated .pb.c and .h2rpc.c files to <target>, with OUT_DIR on its include
# path. PROTOS are named as protoc names them: relative to one of IMPORT_DIRS
# (default: the current source dir), e.g. "helloworld/v1/greeter.proto". The
# outputs keep that relative path, so imports across folders work. Options
# files are passed to nanopb (for example to mark fields over 64 KiB as
# h2rpc_bytes, see docs/codegen.md).
#
# NO_LINK leaves out the link to h2rpc::h2rpc (for h2rpc's own runtime, which
# compiles the protos it speaks itself: health, registry, etcd).
#
# Needs: protoc, nanopb's protoc-gen-nanopb, and the h2rpc::protoc-gen-h2rpc executable
# target (defined by h2rpc's own build and by its installed package).

function(h2rpc_generate target)
  cmake_parse_arguments(ARG "NO_LINK" "OUT_DIR" "PROTOS;IMPORT_DIRS;NANOPB_OPTIONS" ${ARGN})
  if(NOT ARG_PROTOS)
    message(FATAL_ERROR "h2rpc_generate(${target}): PROTOS is required")
  endif()
  if(NOT ARG_IMPORT_DIRS)
    set(ARG_IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  if(NOT ARG_OUT_DIR)
    set(ARG_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/h2rpc_gen)
  endif()
  file(MAKE_DIRECTORY ${ARG_OUT_DIR})

  set(include_flags "")
  foreach(dir IN LISTS ARG_IMPORT_DIRS)
    list(APPEND include_flags "-I${dir}")
  endforeach()
  set(option_flags "")
  set(option_deps "")
  foreach(opt IN LISTS ARG_NANOPB_OPTIONS)
    get_filename_component(opt_abs ${opt} ABSOLUTE)
    list(APPEND option_flags "--nanopb_opt=-f${opt_abs}")
    list(APPEND option_deps ${opt_abs})
  endforeach()

  set(generated "")
  foreach(proto IN LISTS ARG_PROTOS)
    set(proto_abs "")
    foreach(dir IN LISTS ARG_IMPORT_DIRS)
      if(NOT proto_abs AND EXISTS "${dir}/${proto}")
        set(proto_abs "${dir}/${proto}")
      endif()
    endforeach()
    if(NOT proto_abs)
      message(FATAL_ERROR "h2rpc_generate(${target}): ${proto} not found under ${ARG_IMPORT_DIRS}")
    endif()
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    set(outs ${ARG_OUT_DIR}/${stem}.pb.c ${ARG_OUT_DIR}/${stem}.pb.h
             ${ARG_OUT_DIR}/${stem}.h2rpc.c ${ARG_OUT_DIR}/${stem}.h2rpc.h)
    add_custom_command(
      OUTPUT ${outs}
      # One protoc run, both plugins. nanopb runs as a protoc plugin rather
      # than through nanopb_generator.py, whose bundled protoc is too old
      # for proto3 `optional`.
      COMMAND ${PROTOC} ${include_flags}
              --plugin=protoc-gen-nanopb=${NANOPB_PLUGIN}
              --nanopb_opt=-q ${option_flags} --nanopb_out=${ARG_OUT_DIR}
              --plugin=protoc-gen-h2rpc=$<TARGET_FILE:h2rpc::protoc-gen-h2rpc>
              --h2rpc_out=${ARG_OUT_DIR} ${proto_abs}
      DEPENDS ${proto_abs} ${option_deps} h2rpc::protoc-gen-h2rpc
      COMMENT "h2rpc: generating C for ${proto}"
      VERBATIM)
    list(APPEND generated ${ARG_OUT_DIR}/${stem}.pb.c ${ARG_OUT_DIR}/${stem}.h2rpc.c)
  endforeach()
  target_sources(${target} PRIVATE ${generated})
  target_include_directories(${target} PUBLIC ${ARG_OUT_DIR})
  if(NOT ARG_NO_LINK)
    target_link_libraries(${target} PUBLIC h2rpc::h2rpc)
  endif()
endfunction()
