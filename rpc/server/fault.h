/*
 * server/fault.h: the fault injector's pure parts (rule checks, matching,
 * the draw) and the hooks server.c gives it.
 *
 * The draw takes a rule and a random source and says what happens to one
 * call, so its unit tests (tests/unit/test_server_fault.c) seed the source
 * and count outcomes without a server.
 */
#ifndef H2RPC_SERVER_FAULT_H
#define H2RPC_SERVER_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "core/rand.h"
#include "h2rpc/interceptor.h"

#define H2RPC__FAULT_MAX_RULES 64
#define H2RPC__FAULT_MAX_METHOD 255
#define H2RPC__FAULT_MAX_DELAY_MS (3600 * 1000)

/* A rule as the injector keeps it: the method prefix copied inline. */
typedef struct h2rpc__fault_rule {
  char method[H2RPC__FAULT_MAX_METHOD + 1];
  size_t method_len;
  h2rpc_fault_rule rule; /* rule.method points at method */
} h2rpc__fault_rule;

typedef enum h2rpc__fault_kind {
  H2RPC__FAULT_NONE = 0,
  H2RPC__FAULT_ERROR,
  H2RPC__FAULT_DELAY,
  H2RPC__FAULT_HANG,
  H2RPC__FAULT_RESET
} h2rpc__fault_kind;

typedef struct h2rpc__fault_action {
  h2rpc__fault_kind kind;
  h2rpc_code code;  /* FAULT_ERROR: the status */
  int64_t delay_ms; /* FAULT_DELAY: the wait */
} h2rpc__fault_action;

/*
 * Checks a rule. Returns OK or INVALID_ARGUMENT, with err (may be NULL)
 * naming the field and the bound.
 */
h2rpc_code h2rpc__fault_rule_check(const h2rpc_fault_rule *rule,
                                   h2rpc_status *err);

/* Whether the rule has any fault at all (a rule without one is removed). */
int h2rpc__fault_rule_active(const h2rpc_fault_rule *rule);

/*
 * The rule among rules[0..n) whose method prefix matches `path` and is the
 * longest, or NULL.
 */
const h2rpc__fault_rule *h2rpc__fault_match(const h2rpc__fault_rule *rules,
                                            size_t n, const char *path);

/* One call's fate under `rule` (checked): one uniform draw decides the kind,
 * a second the delay. */
h2rpc__fault_action h2rpc__fault_draw(const h2rpc_fault_rule *rule,
                                      h2rpc__rand *rnd);

/* Frees an injector (server.c, when its server is freed). */
void h2rpc__fault_injector_free(h2rpc_fault_injector *fi);

/* From server.c: keeps fi to free with srv; whether srv has started. */
h2rpc_code h2rpc__server_adopt_injector(h2rpc_server *srv,
                                        h2rpc_fault_injector *fi);
int h2rpc__server_started(const h2rpc_server *srv);

#endif
