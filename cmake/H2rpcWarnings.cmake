# h2rpc_warnings(<target>): the project's warning set, attached per target.
function(h2rpc_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter)
  if(H2RPC_ENABLE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
