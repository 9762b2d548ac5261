# Locates h2rpc's dependencies (Debian 12 packages; scripts/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)

find_path(LIBEV_INCLUDE_DIR ev.h REQUIRED)
find_library(LIBEV_LIBRARY ev REQUIRED)
add_library(h2rpc_libev INTERFACE)
target_include_directories(h2rpc_libev INTERFACE ${LIBEV_INCLUDE_DIR})
target_link_libraries(h2rpc_libev INTERFACE ${LIBEV_LIBRARY})

# nanopb: Debian ships the runtime as a static library built with
# PB_ENABLE_MALLOC, so every translation unit that includes pb.h must see it.
find_path(NANOPB_INCLUDE_DIR pb.h REQUIRED)
find_library(NANOPB_LIBRARY NAMES libprotobuf-nanopb.a protobuf-nanopb REQUIRED)
find_program(NANOPB_GENERATOR NAMES nanopb_generator nanopb_generator.py REQUIRED)
find_program(NANOPB_PLUGIN NAMES protoc-gen-nanopb REQUIRED)
find_program(PROTOC protoc REQUIRED)
add_library(h2rpc_nanopb INTERFACE)
target_include_directories(h2rpc_nanopb INTERFACE ${NANOPB_INCLUDE_DIR})
target_compile_definitions(h2rpc_nanopb INTERFACE PB_ENABLE_MALLOC=1)
target_link_libraries(h2rpc_nanopb INTERFACE ${NANOPB_LIBRARY})

# Where the standard protos live.
find_path(PROTOBUF_INCLUDE_DIR google/protobuf/descriptor.proto
  PATHS /usr/include REQUIRED)
set(GRPC_PROTO_DIR /usr/share/grpc-proto CACHE PATH "grpc-proto root")
