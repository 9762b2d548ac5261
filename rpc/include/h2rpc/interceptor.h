/*
 * h2rpc/interceptor.h: server interceptors, and the fault injector built on
 * them for chaos tests.
 *
 * An interceptor is a pair of hooks that run around every call a server
 * takes: on_call before the handler (it may let the call go on, end it with
 * a status, hold it back for a while, or reset its stream) and on_done when
 * the call has ended (for metrics and logs). Rate limiters, auth checks,
 * access logs and fault injection are interceptors.
 *
 * The fault injector (h2rpc_fault_injector) makes a share of the calls of
 * chosen methods fail with a status, wait, hang until their deadline, or
 * have their stream reset, with rules that can be changed while the server
 * runs: from the program (h2rpc_fault_injector_set) or over the network
 * through the h2rpc.chaos.v1.FaultControl service (idl/h2rpc/chaos/v1/
 * fault.proto), which h2rpc_fault_injector_serve() adds to a server. See
 * docs/chaos.md.
 */
#ifndef H2RPC_INTERCEPTOR_H
#define H2RPC_INTERCEPTOR_H

#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/server.h"
#include "h2rpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- interceptors */

/*
 * Hooks around the calls of a server. Both run on the loop thread of the
 * call's connection and must not block.
 *
 * on_call runs once per call, after the request headers were validated and
 * the method found, right before the handler would start (for a unary call:
 * once its request message has arrived). It returns H2RPC_OK to let the call
 * go on; any other code ends the call with that status (a message can be
 * set with h2rpc_server_call_fail()) and neither the handler nor the later
 * interceptors run. It may also call h2rpc_server_call_delay() or
 * h2rpc_server_call_reset(). May be NULL.
 *
 * on_done runs exactly once per call that reached the interceptors, for
 * every interceptor (also one whose on_call did not run because an earlier
 * one ended the call), when the call is over: `code` is
 * the status the client was sent, or CANCELLED when the stream closed
 * before any status (the client cancelled, or the connection dropped);
 * elapsed_ns counts from the end of the request headers. May be NULL.
 */
typedef struct h2rpc_server_interceptor {
  h2rpc_code (*on_call)(h2rpc_server_call *call, void *user_data);
  void (*on_done)(h2rpc_server_call *call, h2rpc_code code, int64_t elapsed_ns,
                  void *user_data);
  void *user_data;
} h2rpc_server_interceptor;

/*
 * Adds an interceptor (copied) to srv; interceptors run in the order added.
 * Before h2rpc_server_start() only. Returns OK, FAILED_PRECONDITION after
 * start, INVALID_ARGUMENT when both hooks are NULL, RESOURCE_EXHAUSTED.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_add_interceptor(
    h2rpc_server *srv, const h2rpc_server_interceptor *ic) H2RPC_MUST_CHECK;

/*
 * From on_call: start the handler `ms` milliseconds later instead of now
 * (a timer on the loop; no thread waits). ms < 0 holds the call until its
 * deadline passes or the client cancels (a hang). The call's deadline and
 * cancellation apply meanwhile as they would to a running handler. When
 * several interceptors delay a call, the longest wait wins.
 */
H2RPC_EXTERN void h2rpc_server_call_delay(h2rpc_server_call *call, int64_t ms);

/*
 * From on_call: reset the call's stream (RST_STREAM with INTERNAL_ERROR)
 * instead of answering; the client sees the stream aborted. The on_call
 * hook should then return H2RPC_OK; nothing else runs for the call.
 */
H2RPC_EXTERN void h2rpc_server_call_reset(h2rpc_server_call *call);

/* ---------------------------------------------------------------- limits */

/*
 * Overload protection for one method or service: a rate limit (a token
 * bucket shared by every loop thread, lock-free) and a limit on calls in
 * flight. A call over either limit ends at once with RESOURCE_EXHAUSTED and
 * a message that names the limit, before any interceptor or the handler
 * runs; it is counted. A call meets the rule with the longest method prefix
 * that matches (as fault rules do). Calls of methods no rule matches are
 * not limited.
 */
typedef struct h2rpc_limit_rule {
  const char *method;      /* copied; "/pkg.Service/Method", a prefix, or ""
                            * (NULL) for every method */
  double rate_per_s;       /* sustained calls a second; 0: no rate limit */
  double burst;            /* calls at once above the rate; 0: max(1, rate) */
  uint32_t max_concurrent; /* calls in flight (handlers running or waiting);
                            * 0: no limit */
} h2rpc_limit_rule;

typedef struct h2rpc_limit_stats {
  uint64_t admitted;
  uint64_t rate_limited;        /* refused by the rate limit */
  uint64_t concurrency_limited; /* refused by max_concurrent */
  uint32_t in_flight;
} h2rpc_limit_stats;

/*
 * Adds a limit rule (copied). Before h2rpc_server_start() only. Returns OK,
 * FAILED_PRECONDITION after start, INVALID_ARGUMENT (a negative, NaN or
 * infinite rate or burst, a burst without a rate, no limit at all, a method
 * over 255 bytes, a second rule for the same method; err says which),
 * RESOURCE_EXHAUSTED (more than 64 rules). err may be NULL.
 */
H2RPC_EXTERN h2rpc_code
h2rpc_server_add_limit(h2rpc_server *srv, const h2rpc_limit_rule *rule,
                       h2rpc_status *err) H2RPC_MUST_CHECK;

/*
 * Copies the counters of the rule added for `method` (the same string).
 * Any thread. Returns OK, or NOT_FOUND when no rule has that method.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_limit_stats(h2rpc_server *srv,
                                                 const char *method,
                                                 h2rpc_limit_stats *out);

/* -------------------------------------------------------- fault injector */

/*
 * One fault rule: applies to the calls whose method path starts with
 * `method` ("/pkg.Service/Method" for one method, "/pkg.Service/" for a
 * service, "" or NULL for every method). Each call draws one number and
 * meets at most one fault, in this order: reset, hang, error, delay; the
 * rates (each 0..1) add up to at most 1.
 */
typedef struct h2rpc_fault_rule {
  const char *method;    /* copied; NULL or "" matches every method */
  double error_rate;     /* end the call with error_code */
  h2rpc_code error_code; /* 0 (OK) means UNAVAILABLE */
  double delay_rate;     /* start the handler after a delay drawn uniformly */
  int64_t delay_min_ms;  /* from [delay_min_ms, delay_max_ms] */
  int64_t delay_max_ms;
  double hang_rate;  /* hold the call until its deadline or cancel */
  double reset_rate; /* reset the stream */
} h2rpc_fault_rule;

/* What an injector has done so far (counters over every rule). */
typedef struct h2rpc_fault_stats {
  uint64_t calls;  /* calls the injector saw */
  uint64_t errors; /* ended with an injected status */
  uint64_t delays; /* delayed */
  uint64_t hangs;  /* held until deadline or cancel */
  uint64_t resets; /* streams reset */
} h2rpc_fault_stats;

typedef struct h2rpc_fault_injector h2rpc_fault_injector;

/*
 * Creates an injector with no rules (it lets every call through) and adds
 * it to srv as an interceptor; it is freed with the server. `seed` seeds
 * its random draws (0: from the clock). Before h2rpc_server_start() only.
 * Returns OK and sets *out (owned by the server), FAILED_PRECONDITION after
 * start, RESOURCE_EXHAUSTED.
 */
H2RPC_EXTERN h2rpc_code
h2rpc_fault_injector_new(h2rpc_fault_injector **out, h2rpc_server *srv,
                         uint64_t seed) H2RPC_MUST_CHECK;

/*
 * Sets the rule for rule->method, replacing the one for the same method
 * string, or (when every rate is 0) removing it. A call meets the rule with
 * the longest matching method prefix. Takes effect for calls that reach
 * their handler from now on. Any thread, while the server runs. Returns OK,
 * INVALID_ARGUMENT (a rate outside 0..1, rates adding up past 1, a negative
 * or inverted delay range, a delay over one hour, error_code out of range,
 * a method over 255 bytes; err says which), RESOURCE_EXHAUSTED (more than 64
 * rules). err may be NULL.
 */
H2RPC_EXTERN h2rpc_code
h2rpc_fault_injector_set(h2rpc_fault_injector *fi, const h2rpc_fault_rule *rule,
                         h2rpc_status *err) H2RPC_MUST_CHECK;

/* Removes every rule. Any thread. */
H2RPC_EXTERN void h2rpc_fault_injector_clear(h2rpc_fault_injector *fi);

/* Copies the counters. Any thread. */
H2RPC_EXTERN void h2rpc_fault_injector_stats(h2rpc_fault_injector *fi,
                                             h2rpc_fault_stats *out);

/*
 * Serves h2rpc.chaos.v1.FaultControl (Set, Clear, Get) on srv, so a chaos
 * test can change the rules of this injector from another process (for
 * example `h2rpc fault set`). The control service's own calls are never
 * faulted. Anyone who can reach the server can change its faults: serve it
 * only on servers under test. Before h2rpc_server_start() only. Returns
 * what h2rpc_server_register() returns.
 */
H2RPC_EXTERN h2rpc_code h2rpc_fault_injector_serve(
    h2rpc_fault_injector *fi, h2rpc_server *srv) H2RPC_MUST_CHECK;

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_INTERCEPTOR_H */
