/*
 * examples/common/flags.h: the command-line flags of h2rpc's programs.
 * Accepts "--name=value" and "--name value"; anything else is an error.
 */
#ifndef H2RPC_EXAMPLES_FLAGS_H
#define H2RPC_EXAMPLES_FLAGS_H

typedef struct h2rpc_flag {
  const char *name;   /* without the leading "--" */
  const char **value; /* receives a pointer into argv; keeps its default */
  const char *help;
} h2rpc_flag;

/*
 * Parses argv against flags (terminated by an entry with name NULL). Returns
 * 0, or -1 after printing a usage message to stderr (also for --help).
 */
int h2rpc_flags_parse(int argc, char **argv, const h2rpc_flag *flags);

/* Parses a non-negative integer flag value; -1 when it is not one. */
long h2rpc_flag_long(const char *value);

#endif
