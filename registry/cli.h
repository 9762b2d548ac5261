/* registry/cli.h: the command groups of the h2rpc CLI beyond `registry`. */
#ifndef H2RPC_REGISTRY_CLI_H
#define H2RPC_REGISTRY_CLI_H

/* `h2rpc fault ...` (cli_fault.c): argv[0] is "fault". Returns the exit
 * status. */
int h2rpc__cli_fault(int argc, char **argv);

#endif
