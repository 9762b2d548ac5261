/*
 * emit.h: writing the generated header and source of one file.
 *
 * For foo/bar.proto the plugin writes foo/bar.h2rpc.h and foo/bar.h2rpc.c
 * (docs/codegen.md shows what they contain). Output depends on the model
 * only: no timestamps, no paths of the machine, so two runs are identical.
 */
#ifndef CG_EMIT_H
#define CG_EMIT_H

#include "model.h"

/* The output names: stem + ".h2rpc.h" / ".h2rpc.c". Malloc'd or NULL. */
char *cg_header_name(const cg_file *f);
char *cg_source_name(const cg_file *f);

/* The contents of the header / source of f. Malloc'd, or NULL when memory
 * is short. */
char *cg_emit_header(const cg_file *f);
char *cg_emit_source(const cg_file *f);

#endif /* CG_EMIT_H */
