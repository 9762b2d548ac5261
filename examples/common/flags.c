/* examples/common/flags.c */
#include "flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(const char *prog, const h2rpc_flag *flags) {
  fprintf(stderr, "usage: %s", prog);
  for (const h2rpc_flag *f = flags; f->name != NULL; f++)
    fprintf(stderr, " [--%s=...]", f->name);
  fprintf(stderr, "\n");
  for (const h2rpc_flag *f = flags; f->name != NULL; f++)
    fprintf(stderr, "  --%-20s %s (default: %s)\n", f->name, f->help,
            *f->value ? *f->value : "none");
}

int h2rpc_flags_parse(int argc, char **argv, const h2rpc_flag *flags) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--help") == 0) {
      if (strcmp(arg, "--help") != 0)
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], arg);
      usage(argv[0], flags);
      return -1;
    }
    arg += 2;
    const char *eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    const h2rpc_flag *f = flags;
    while (f->name != NULL && !(strlen(f->name) == name_len &&
                                strncmp(f->name, arg, name_len) == 0))
      f++;
    if (f->name == NULL) {
      fprintf(stderr, "%s: unknown flag --%.*s\n", argv[0], (int)name_len, arg);
      usage(argv[0], flags);
      return -1;
    }
    if (eq != NULL) {
      *f->value = eq + 1;
    } else if (i + 1 < argc) {
      *f->value = argv[++i];
    } else {
      fprintf(stderr, "%s: flag --%s needs a value\n", argv[0], f->name);
      return -1;
    }
  }
  return 0;
}

long h2rpc_flag_long(const char *value) {
  if (value == NULL || *value == '\0')
    return -1;
  char *end;
  long v = strtol(value, &end, 10);
  if (*end != '\0' || v < 0)
    return -1;
  return v;
}
