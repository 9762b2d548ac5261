/*
 * transport/loop.h: per-loop state shared by the connections of one loop:
 * the list of connections with output to flush before the loop sleeps, and
 * the queue through which other threads hand work to the loop.
 */
#ifndef H2RPC_TRANSPORT_LOOP_H
#define H2RPC_TRANSPORT_LOOP_H

#include <ev.h>
#include <pthread.h>

typedef struct h2rpc__conn h2rpc__conn;

/* A unit of work handed to a loop; embedded in its owner, so posting
 * allocates nothing. */
typedef struct h2rpc__task h2rpc__task;
struct h2rpc__task {
  void (*run)(h2rpc__task *task);
  h2rpc__task *next;
};

typedef struct h2rpc__loop {
  struct ev_loop *ev;
  ev_prepare flush_watcher; /* flushes dirty connections once per pass */
  ev_async wake;            /* other threads' wake-up; coalesced by libev */
  h2rpc__conn *dirty;       /* connections with output pending */
  pthread_mutex_t lock;     /* guards the task queue only */
  h2rpc__task *head, *tail;
  h2rpc__conn *reap_list; /* closed connections to free at a safe point */
  pthread_t thread;       /* the thread running this loop */
  int thread_known;
} h2rpc__loop;

/* Sets up per-loop state on `ev`; the calling thread is taken as the loop
 * thread until h2rpc__loop_set_thread() says otherwise. Returns 0 or -1. */
int h2rpc__loop_init(h2rpc__loop *loop, struct ev_loop *ev);

/* Stops the watchers and frees the queue lock. Tasks still queued are
 * dropped: the owner drains or fails them before this. */
void h2rpc__loop_destroy(h2rpc__loop *loop);

/* Runs the loop on the calling thread until ev_break(). */
void h2rpc__loop_run(h2rpc__loop *loop);

/* Records which thread runs the loop. Call before any other thread can ask
 * h2rpc__loop_on_thread() (e.g. right after pthread_create). */
void h2rpc__loop_set_thread(h2rpc__loop *loop, pthread_t thread);

/* Non-zero when called on the loop's thread. Any thread. */
int h2rpc__loop_on_thread(const h2rpc__loop *loop);

/* Queues `task` to run on the loop thread. Any thread. */
void h2rpc__loop_post(h2rpc__loop *loop, h2rpc__task *task);

/* Runs every queued task now (loop thread). */
void h2rpc__loop_drain(h2rpc__loop *loop);

/* Marks c as having output to flush at the end of this loop pass. */
void h2rpc__loop_want_flush(h2rpc__loop *loop, h2rpc__conn *c);

#endif
