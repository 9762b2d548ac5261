/*
 * h2rpc: the command line for people operating h2rpc deployments. Faults
 * for chaos tests (`h2rpc fault`, cli_fault.c), and the registry commands,
 * against an h2rpc registry or etcd alike:
 *
 *   h2rpc registry ls [SERVICE]
 *   h2rpc registry watch SERVICE
 *   h2rpc registry register SERVICE ID ADDRESS [--weight=N] [--zone=Z]
 *                  [--version=V] [--ttl_ms=N]
 *   h2rpc registry deregister SERVICE ID
 *
 * each with --registry=registry://HOST:PORT or etcd://HOST:PORT (default:
 * the H2RPC_REGISTRY environment variable) and --timeout_ms=N. Exit status:
 * 0 done, 1 the registry refused or could not be reached, 2 bad usage.
 *
 * The commands go through the same code clients use: the admin operations
 * (h2rpc__registry_admin, h2rpc__etcd_admin) and, for watch, the resolvers
 * behind registry:// and etcd:// channel targets, on a libev loop of our
 * own; watch prints the difference between consecutive lists.
 */
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "discovery/resolver.h"
#include "flags.h"
#include "h2rpc/h2rpc.h"
#include "transport/loop.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

typedef struct scheme {
  const char *prefix;
  const h2rpc__registry_admin_ops *admin;
  const h2rpc__resolver_ops *resolver;
} scheme;

static const scheme schemes[] = {
    {"registry://", &h2rpc__registry_admin, &h2rpc__registry_resolver},
#ifndef H2RPC__NO_ETCD
    {"etcd://", &h2rpc__etcd_admin, &h2rpc__etcd_resolver},
#endif
};

static const char usage_text[] =
    "usage: h2rpc registry <command> [args] [flags]\n"
    "\n"
    "commands:\n"
    "  ls [SERVICE]                  list the instances of SERVICE (or of "
    "every service)\n"
    "  watch SERVICE                 print changes to SERVICE as they happen, "
    "until Ctrl-C\n"
    "  register SERVICE ID ADDRESS   add (or replace) an instance by hand\n"
    "  deregister SERVICE ID         remove an instance\n"
    "\n"
    "(and h2rpc fault set|clear|get --target=HOST:PORT: a server's injected "
    "faults;\n h2rpc fault --help)\n"
    "\n"
    "flags:\n"
    "  --registry=URL     registry://HOST:PORT (h2rpc-registry) or "
    "etcd://HOST:PORT;\n"
    "                     default: $H2RPC_REGISTRY\n"
    "  --timeout_ms=N     how long ls, register and deregister wait "
    "(default 5000)\n"
    "  register only:\n"
    "  --weight=N         1..1000000 (default 1)\n"
    "  --zone=Z --version=V\n"
    "  --ttl_ms=N         a lease of N ms that nothing renews (default 0: no "
    "lease,\n"
    "                     the instance stays until deregistered)\n"
    "\n"
    "exit status: 0 done, 1 the registry refused or could not be reached, "
    "2 bad usage\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "h2rpc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(h2rpc registry --help for usage)\n");
  return EXIT_USAGE;
}

/* ------------------------------------------------------------ arguments */

typedef struct args {
  const char *positional[8];
  int npositional;
  const char *registry, *timeout_ms, *weight, *zone, *version, *ttl_ms;
  int help;
} args;

/* Splits argv into positional arguments and --flags (--name=value or
 * --name value). 0, or EXIT_USAGE after a message. */
static int parse_args(int argc, char **argv, args *a) {
  struct {
    const char *name;
    const char **value;
  } flags[] = {{"registry", &a->registry}, {"timeout_ms", &a->timeout_ms},
               {"weight", &a->weight},     {"zone", &a->zone},
               {"version", &a->version},   {"ttl_ms", &a->ttl_ms}};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 ||
        strcmp(arg, "help") == 0) {
      a->help = 1;
      continue;
    }
    if (strncmp(arg, "--", 2) != 0) {
      if (a->npositional == (int)(sizeof(a->positional) / sizeof(char *)))
        return usage_error("too many arguments ('%s')", arg);
      a->positional[a->npositional++] = arg;
      continue;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    size_t f = 0;
    while (f < sizeof(flags) / sizeof(flags[0]) &&
           !(strlen(flags[f].name) == len &&
             strncmp(flags[f].name, name, len) == 0))
      f++;
    if (f == sizeof(flags) / sizeof(flags[0]))
      return usage_error("unknown flag %s", arg);
    if (eq != NULL)
      *flags[f].value = eq + 1;
    else if (i + 1 < argc)
      *flags[f].value = argv[++i];
    else
      return usage_error("flag %s needs a value", arg);
  }
  return 0;
}

/* Finds the scheme of url and copies its host:port into authority. */
static const scheme *parse_registry(const char *url, char *authority,
                                    size_t size) {
  for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
    size_t n = strlen(schemes[i].prefix);
    if (strncmp(url, schemes[i].prefix, n) != 0)
      continue;
    const char *host = url + n;
    size_t len = strcspn(host, "/");
    if (len == 0 || len >= size || (host[len] == '/' && host[len + 1] != '\0'))
      return NULL;
    memcpy(authority, host, len);
    authority[len] = '\0';
    return &schemes[i];
  }
  return NULL;
}

/* A flag that must be a number in [lo, hi], or its default when unset. */
static int number(const char *name, const char *value, long lo, long hi,
                  long dflt, long *out) {
  if (value == NULL) {
    *out = dflt;
    return 0;
  }
  long v = h2rpc_flag_long(value);
  if (v < lo || v > hi) {
    fprintf(stderr, "h2rpc: --%s must be a number in %ld..%ld\n", name, lo, hi);
    return EXIT_USAGE;
  }
  *out = v;
  return 0;
}

static int failed(const char *what, const h2rpc_status *err) {
  fprintf(stderr, "h2rpc: %s: %s: %s\n", what, h2rpc_code_name(err->code),
          h2rpc_status_text(err));
  return EXIT_FAILED;
}

/* ------------------------------------------------------------------ ls */

typedef struct ls_state {
  size_t count;
} ls_state;

static const char *or_dash(const char *s) {
  return s != NULL && s[0] != '\0' ? s : "-";
}

static void ls_one(const h2rpc__registry_entry *e, void *user_data) {
  ls_state *st = user_data;
  char lease[32];
  if (e->lease_ttl_ms > 0)
    snprintf(lease, sizeof(lease), "%" PRId64 "ms", e->lease_ttl_ms);
  else
    snprintf(lease, sizeof(lease), "-");
  printf("%-28s %-24s %-22s %6" PRIu32 " %-10s %-10s %s\n", e->service,
         e->endpoint->id ? e->endpoint->id : "-", e->endpoint->addr,
         e->endpoint->weight, or_dash(e->endpoint->zone),
         or_dash(e->endpoint->version), lease);
  st->count++;
}

static int cmd_ls(const scheme *sc, const char *authority, const args *a,
                  long timeout_ms) {
  if (a->npositional > 3)
    return usage_error("ls takes at most one SERVICE (got '%s' too)",
                       a->positional[3]);
  const char *service = a->npositional == 3 ? a->positional[2] : NULL;
  printf("%-28s %-24s %-22s %6s %-10s %-10s %s\n", "SERVICE", "ID", "ADDRESS",
         "WEIGHT", "ZONE", "VERSION", "LEASE");
  ls_state st = {0};
  int64_t revision = 0;
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc_code rc = sc->admin->list(authority, service, timeout_ms, ls_one, &st,
                                  &revision, &err);
  if (rc != H2RPC_OK) {
    int code = failed("ls", &err);
    h2rpc_status_reset(&err);
    return code;
  }
  fflush(stdout);
  fprintf(stderr, "%zu instance(s), revision %" PRId64 "\n", st.count,
          revision);
  return 0;
}

/* ------------------------------------------------------------ register */

static int cmd_register(const scheme *sc, const char *authority, const args *a,
                        long timeout_ms) {
  if (a->npositional != 5)
    return usage_error("%s", "register needs SERVICE ID ADDRESS");
  long weight, ttl;
  int rc = number("weight", a->weight, 1, 1000000, 1, &weight);
  if (rc == 0)
    rc = number("ttl_ms", a->ttl_ms, 0, 86400000, 0, &ttl);
  if (rc != 0)
    return rc;
  h2rpc_instance inst = {a->positional[2],
                         a->positional[3],
                         a->positional[4],
                         (uint32_t)weight,
                         a->zone,
                         a->version,
                         ttl};
  h2rpc_status err;
  h2rpc_status_init(&err);
  if (sc->admin->put(authority, &inst, timeout_ms, &err) != H2RPC_OK) {
    int code = failed("register", &err);
    h2rpc_status_reset(&err);
    return code;
  }
  printf("registered %s/%s at %s\n", inst.service, inst.instance_id,
         inst.address);
  if (ttl > 0)
    fprintf(stderr,
            "note: nothing renews this lease; the instance leaves in %ld "
            "ms\n",
            ttl);
  return 0;
}

static int cmd_deregister(const scheme *sc, const char *authority,
                          const args *a, long timeout_ms) {
  if (a->npositional != 4)
    return usage_error("%s", "deregister needs SERVICE ID");
  h2rpc_status err;
  h2rpc_status_init(&err);
  if (sc->admin->remove(authority, a->positional[2], a->positional[3],
                        timeout_ms, &err) != H2RPC_OK) {
    int code = failed("deregister", &err);
    h2rpc_status_reset(&err);
    return code;
  }
  printf("deregistered %s/%s\n", a->positional[2], a->positional[3]);
  return 0;
}

/* --------------------------------------------------------------- watch */

typedef struct watch_state {
  const char *service;
  h2rpc__endpoint_list last;
  int synced;  /* a list has arrived */
  int failing; /* the last report was an error */
} watch_state;

static const char *nz(const char *s) {
  return s != NULL ? s : "";
}

static int same_endpoint(const h2rpc__endpoint *x, const h2rpc__endpoint *y) {
  return strcmp(x->addr, y->addr) == 0 && x->weight == y->weight &&
         strcmp(nz(x->zone), nz(y->zone)) == 0 &&
         strcmp(nz(x->version), nz(y->version)) == 0;
}

static const h2rpc__endpoint *find_id(const h2rpc__endpoint_list *l,
                                      const char *id) {
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(nz(l->items[i].id), id) == 0)
      return &l->items[i];
  return NULL;
}

static void print_endpoint(char sign, const char *service,
                           const h2rpc__endpoint *e) {
  printf("%c %s %s %s weight=%" PRIu32 " zone=%s version=%s\n", sign, service,
         nz(e->id), e->addr, e->weight, or_dash(e->zone), or_dash(e->version));
}

static void on_list(const h2rpc__endpoint_list *list, const h2rpc_status *error,
                    void *user_data) {
  watch_state *w = user_data;
  if (list == NULL) {
    if (!w->failing)
      printf("! %s (keeping the last list)\n", h2rpc_status_text(error));
    w->failing = 1;
    fflush(stdout);
    return;
  }
  if (w->failing)
    printf("# reconnected\n");
  w->failing = 0;
  for (size_t i = 0; i < w->last.count; i++) {
    const h2rpc__endpoint *old = &w->last.items[i];
    if (find_id(list, nz(old->id)) == NULL)
      print_endpoint('-', w->service, old);
  }
  for (size_t i = 0; i < list->count; i++) {
    const h2rpc__endpoint *now = &list->items[i];
    const h2rpc__endpoint *old = find_id(&w->last, nz(now->id));
    if (old == NULL)
      print_endpoint('+', w->service, now);
    else if (!same_endpoint(old, now))
      print_endpoint('~', w->service, now);
  }
  if (!w->synced)
    printf("# %s: %zu instance(s)\n", w->service, list->count);
  w->synced = 1;
  fflush(stdout);
  /* Keep a copy for the next difference. */
  h2rpc__endpoint_list copy = {NULL, 0};
  for (size_t i = 0; i < list->count; i++) {
    const h2rpc__endpoint *e = &list->items[i];
    if (h2rpc__endpoint_list_add(&copy, e->addr, e->weight, e->id, e->zone,
                                 e->version) != 0) {
      fprintf(stderr, "h2rpc: out of memory\n");
      exit(EXIT_FAILED);
    }
  }
  h2rpc__endpoint_list_reset(&w->last);
  w->last = copy;
}

static void on_stop_signal(struct ev_loop *ev, ev_signal *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(ev, EVBREAK_ALL);
}

static int cmd_watch(const scheme *sc, const char *authority, const args *a) {
  if (a->npositional != 3)
    return usage_error("%s", "watch needs one SERVICE");
  struct ev_loop *ev = EV_DEFAULT;
  h2rpc__loop loop;
  if (h2rpc__loop_init(&loop, ev) != 0) {
    fprintf(stderr, "h2rpc: cannot set up the loop\n");
    return EXIT_FAILED;
  }
  ev_signal sigint, sigterm;
  ev_signal_init(&sigint, on_stop_signal, SIGINT);
  ev_signal_init(&sigterm, on_stop_signal, SIGTERM);
  ev_signal_start(ev, &sigint);
  ev_signal_start(ev, &sigterm);
  signal(SIGPIPE, SIG_IGN);
  watch_state w = {a->positional[2], {NULL, 0}, 0, 0};
  h2rpc__resolver *res;
  h2rpc_status err;
  h2rpc_status_init(&err);
  if (sc->resolver->start(&res, &loop, authority, w.service, on_list, &w,
                          &err) != H2RPC_OK) {
    int code = err.code == H2RPC_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAILED;
    failed("watch", &err);
    h2rpc_status_reset(&err);
    h2rpc__loop_destroy(&loop);
    return code;
  }
  ev_run(ev, 0);
  sc->resolver->free(res);
  h2rpc__loop_destroy(&loop);
  h2rpc__endpoint_list_reset(&w.last);
  return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "fault") == 0)
    return h2rpc__cli_fault(argc - 1, argv + 1);
  args a;
  memset(&a, 0, sizeof(a));
  int rc = parse_args(argc, argv, &a);
  if (rc != 0)
    return rc;
  if (a.help || a.npositional == 0) {
    fputs(usage_text, a.help ? stdout : stderr);
    return a.help ? 0 : EXIT_USAGE;
  }
  if (strcmp(a.positional[0], "registry") != 0)
    return usage_error("unknown command '%s' (try: h2rpc registry ls)",
                       a.positional[0]);
  if (a.npositional < 2)
    return usage_error("%s", "registry needs a command: ls, watch, register "
                             "or deregister");
  const char *cmd = a.positional[1];
  if (a.registry == NULL)
    a.registry = getenv("H2RPC_REGISTRY");
  if (a.registry == NULL || a.registry[0] == '\0')
    return usage_error("%s",
                       "no registry: pass --registry=registry://HOST:PORT "
                       "(or etcd://HOST:PORT), or set H2RPC_REGISTRY");
  char authority[300];
  const scheme *sc = parse_registry(a.registry, authority, sizeof(authority));
  if (sc == NULL) {
#ifdef H2RPC__NO_ETCD
    if (strncmp(a.registry, "etcd://", 7) == 0)
      return usage_error("%s", "this build has no etcd support");
#endif
    return usage_error("bad --registry '%s' (expected registry://HOST:PORT or "
                       "etcd://HOST:PORT)",
                       a.registry);
  }
  long timeout_ms;
  if ((rc = number("timeout_ms", a.timeout_ms, 1, 3600000, 5000,
                   &timeout_ms)) != 0)
    return rc;
  int is_register = strcmp(cmd, "register") == 0;
  if (!is_register && (a.weight || a.zone || a.version || a.ttl_ms))
    return usage_error("--weight, --zone, --version and --ttl_ms are for "
                       "register, not %s",
                       cmd);
  if (strcmp(cmd, "ls") == 0)
    return cmd_ls(sc, authority, &a, timeout_ms);
  if (strcmp(cmd, "watch") == 0)
    return cmd_watch(sc, authority, &a);
  if (is_register)
    return cmd_register(sc, authority, &a, timeout_ms);
  if (strcmp(cmd, "deregister") == 0)
    return cmd_deregister(sc, authority, &a, timeout_ms);
  return usage_error("unknown command 'registry %s' (ls, watch, register, "
                     "deregister)",
                     cmd);
}
