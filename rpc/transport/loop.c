/*
 * transport/loop.c
 *
 * Writes are gathered: code that submits frames only marks its connection
 * dirty, and the prepare watcher, which libev runs just before the loop
 * blocks, flushes every dirty connection once. So a burst of calls started in
 * one pass leaves in one write per connection.
 */
#include "transport/loop.h"

#include "transport/conn.h"

static void on_prepare(struct ev_loop *ev, ev_prepare *w, int revents) {
  h2rpc__loop *loop = w->data;
  (void)ev;
  (void)revents;
  /* Flushing may mark connections dirty again (a write completing frees
   * room for more frames), so take the list first. */
  while (loop->dirty != NULL) {
    h2rpc__conn *list = loop->dirty;
    loop->dirty = NULL;
    while (list != NULL) {
      h2rpc__conn *c = list;
      list = c->dirty_next;
      c->dirty_next = NULL;
      c->dirty = 0;
      h2rpc__conn_flush(c);
    }
  }
  h2rpc__conn_reap(loop);
}

static void on_wake(struct ev_loop *ev, ev_async *w, int revents) {
  (void)ev;
  (void)revents;
  h2rpc__loop_drain(w->data);
}

int h2rpc__loop_init(h2rpc__loop *loop, struct ev_loop *ev) {
  loop->ev = ev;
  loop->dirty = NULL;
  loop->head = loop->tail = NULL;
  loop->reap_list = NULL;
  if (pthread_mutex_init(&loop->lock, NULL) != 0)
    return -1;
  loop->thread = pthread_self();
  loop->thread_known = 1;
  ev_prepare_init(&loop->flush_watcher, on_prepare);
  loop->flush_watcher.data = loop;
  ev_prepare_start(ev, &loop->flush_watcher);
  ev_async_init(&loop->wake, on_wake);
  loop->wake.data = loop;
  ev_async_start(ev, &loop->wake);
  /* Neither watcher should keep ev_run() alive on its own. */
  ev_unref(ev);
  ev_unref(ev);
  return 0;
}

void h2rpc__loop_destroy(h2rpc__loop *loop) {
  ev_ref(loop->ev);
  ev_ref(loop->ev);
  ev_prepare_stop(loop->ev, &loop->flush_watcher);
  ev_async_stop(loop->ev, &loop->wake);
  pthread_mutex_destroy(&loop->lock);
}

void h2rpc__loop_run(h2rpc__loop *loop) {
  ev_run(loop->ev, 0);
}

void h2rpc__loop_set_thread(h2rpc__loop *loop, pthread_t thread) {
  loop->thread = thread;
  loop->thread_known = 1;
}

int h2rpc__loop_on_thread(const h2rpc__loop *loop) {
  return loop->thread_known && pthread_equal(loop->thread, pthread_self());
}

void h2rpc__loop_post(h2rpc__loop *loop, h2rpc__task *task) {
  task->next = NULL;
  pthread_mutex_lock(&loop->lock);
  if (loop->tail != NULL)
    loop->tail->next = task;
  else
    loop->head = task;
  loop->tail = task;
  pthread_mutex_unlock(&loop->lock);
  ev_async_send(loop->ev, &loop->wake);
}

void h2rpc__loop_drain(h2rpc__loop *loop) {
  pthread_mutex_lock(&loop->lock);
  h2rpc__task *task = loop->head;
  loop->head = loop->tail = NULL;
  pthread_mutex_unlock(&loop->lock);
  while (task != NULL) {
    h2rpc__task *next = task->next; /* run() may free the task */
    task->run(task);
    task = next;
  }
}

void h2rpc__loop_want_flush(h2rpc__loop *loop, h2rpc__conn *c) {
  if (c->dirty)
    return;
  c->dirty = 1;
  c->dirty_next = loop->dirty;
  loop->dirty = c;
}
