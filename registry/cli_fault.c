/*
 * h2rpc fault: changes the faults a server injects, through its
 * h2rpc.chaos.v1.FaultControl service (h2rpc_fault_injector_serve()).
 *
 *   h2rpc fault set --target=HOST:PORT [--method=/pkg.Service/[Method]]
 *                   [--error_rate=R] [--code=UNAVAILABLE|14]
 *                   [--delay_rate=R] [--delay_ms=MIN[-MAX]]
 *                   [--hang_rate=R] [--reset_rate=R]
 *   h2rpc fault clear --target=HOST:PORT
 *   h2rpc fault get --target=HOST:PORT
 *
 * set with every rate 0 removes the rule for --method. The server checks the
 * rule and answers INVALID_ARGUMENT naming the field; this prints it.
 * Exit status: 0 done, 1 the server refused or could not be reached,
 * 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flags.h"
#include "h2rpc/chaos/v1/fault.h2rpc.h"
#include "h2rpc/h2rpc.h"

static const char fault_usage[] =
    "usage: h2rpc fault set|clear|get --target=HOST:PORT [rule flags]\n"
    "rule flags (set): --method=/pkg.Service/[Method] (default: every "
    "method)\n"
    "  --error_rate=R --code=NAME|N   fail a share R (0..1) of the calls\n"
    "  --delay_rate=R --delay_ms=MIN[-MAX]   delay a share R\n"
    "  --hang_rate=R                  hold a share R until deadline/cancel\n"
    "  --reset_rate=R                 reset the stream of a share R\n";

static int bad(const char *what, const char *value) {
  fprintf(stderr, "h2rpc fault: bad %s '%s'\n%s", what, value, fault_usage);
  return 2;
}

static int parse_rate(const char *name, const char *value, double *out) {
  char *end;
  *out = value != NULL ? strtod(value, &end) : 0;
  if (value != NULL && (*end != '\0' || end == value))
    return bad(name, value);
  return 0;
}

/* A status code by name ("UNAVAILABLE") or number ("14"). */
static int parse_code(const char *value, int32_t *out) {
  if (value == NULL)
    return 0;
  char *end;
  long n = strtol(value, &end, 10);
  if (*end == '\0' && end != value) {
    *out = (int32_t)n; /* the server checks the range */
    return 0;
  }
  for (int c = 1; c <= H2RPC_CODE_MAX; c++)
    if (strcmp(h2rpc_code_name(c), value) == 0) {
      *out = c;
      return 0;
    }
  return bad("--code", value);
}

static int parse_delay(const char *value, int64_t *lo, int64_t *hi) {
  if (value == NULL)
    return 0;
  char *end;
  *lo = *hi = strtoll(value, &end, 10);
  if (*end == '-')
    *hi = strtoll(end + 1, &end, 10);
  if (*end != '\0' || end == value)
    return bad("--delay_ms", value);
  return 0;
}

static int refused(const char *verb, h2rpc_code rc, h2rpc_call_info *info) {
  fprintf(stderr, "h2rpc fault %s: %s: %s\n", verb, h2rpc_code_name(rc),
          h2rpc_status_text(&info->status));
  return 1;
}

static void print_rule(const h2rpc_chaos_v1_Rule *r) {
  printf("  %-32s error %.3f (%s)  delay %.3f (%lld-%lld ms)  hang %.3f  "
         "reset %.3f\n",
         r->method && r->method[0] ? r->method : "(every method)",
         r->error_rate,
         h2rpc_code_name(r->error_code ? r->error_code : H2RPC_UNAVAILABLE),
         r->delay_rate, (long long)r->delay_min_ms, (long long)r->delay_max_ms,
         r->hang_rate, r->reset_rate);
}

int h2rpc__cli_fault(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    fputs(fault_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *verb = argv[1];
  const char *target = NULL, *method = "", *error_rate = NULL, *code = NULL,
             *delay_rate = NULL, *delay_ms = NULL, *hang_rate = NULL,
             *reset_rate = NULL, *timeout = "5000";
  const h2rpc_flag flags[] = {
      {"target", &target, "the server, HOST:PORT"},
      {"method", &method, "method path or prefix"},
      {"error_rate", &error_rate, "share of calls to fail"},
      {"code", &code, "status of failed calls"},
      {"delay_rate", &delay_rate, "share of calls to delay"},
      {"delay_ms", &delay_ms, "MIN[-MAX] milliseconds"},
      {"hang_rate", &hang_rate, "share of calls to hold"},
      {"reset_rate", &reset_rate, "share of calls to reset"},
      {"timeout_ms", &timeout, "how long to wait for the server"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc - 1, argv + 1, flags) != 0)
    return 2;
  if (target == NULL)
    return bad("--target", "(missing)");
  h2rpc_chaos_v1_SetRequest set = h2rpc_chaos_v1_SetRequest_init_zero;
  set.has_rule = true;
  set.rule.method = (char *)method;
  int rc = parse_rate("--error_rate", error_rate, &set.rule.error_rate);
  if (rc == 0)
    rc = parse_code(code, &set.rule.error_code);
  if (rc == 0)
    rc = parse_rate("--delay_rate", delay_rate, &set.rule.delay_rate);
  if (rc == 0)
    rc = parse_delay(delay_ms, &set.rule.delay_min_ms, &set.rule.delay_max_ms);
  if (rc == 0)
    rc = parse_rate("--hang_rate", hang_rate, &set.rule.hang_rate);
  if (rc == 0)
    rc = parse_rate("--reset_rate", reset_rate, &set.rule.reset_rate);
  if (rc != 0)
    return rc;
  long timeout_ms = h2rpc_flag_long(timeout);
  if (timeout_ms < 1)
    return bad("--timeout_ms", timeout);

  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, NULL) != H2RPC_OK)
    return bad("--target", target);
  h2rpc_ctx *ctx;
  if (h2rpc_ctx_with_timeout(&ctx, NULL, timeout_ms) != H2RPC_OK) {
    h2rpc_channel_free(ch);
    return 1;
  }
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code code_rc;
  int exit_code = 0;
  if (strcmp(verb, "set") == 0) {
    h2rpc_chaos_v1_SetResponse resp;
    code_rc = h2rpc_chaos_v1_FaultControl_Set(ch, ctx, &set, &resp, &info);
    if (code_rc != H2RPC_OK)
      exit_code = refused(verb, code_rc, &info);
  } else if (strcmp(verb, "clear") == 0) {
    h2rpc_chaos_v1_ClearRequest req = h2rpc_chaos_v1_ClearRequest_init_zero;
    h2rpc_chaos_v1_ClearResponse resp;
    code_rc = h2rpc_chaos_v1_FaultControl_Clear(ch, ctx, &req, &resp, &info);
    if (code_rc != H2RPC_OK)
      exit_code = refused(verb, code_rc, &info);
  } else if (strcmp(verb, "get") == 0) {
    h2rpc_chaos_v1_GetRequest req = h2rpc_chaos_v1_GetRequest_init_zero;
    h2rpc_chaos_v1_GetResponse resp;
    code_rc = h2rpc_chaos_v1_FaultControl_Get(ch, ctx, &req, &resp, &info);
    if (code_rc != H2RPC_OK) {
      exit_code = refused(verb, code_rc, &info);
    } else {
      printf("%u rule(s); calls %llu, errors %llu, delays %llu, hangs %llu, "
             "resets %llu\n",
             (unsigned)resp.rules_count, (unsigned long long)resp.calls,
             (unsigned long long)resp.errors, (unsigned long long)resp.delays,
             (unsigned long long)resp.hangs, (unsigned long long)resp.resets);
      for (pb_size_t i = 0; i < resp.rules_count; i++)
        print_rule(&resp.rules[i]);
      h2rpc_message_release(h2rpc_chaos_v1_GetResponse_fields, &resp);
    }
  } else {
    exit_code = bad("command", verb);
  }
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  h2rpc_channel_free(ch);
  return exit_code;
}
