/* transport/pipe.c: see pipe.h. */
#include "transport/pipe.h"

#include <stdlib.h>
#include <string.h>

/* What a queued incoming message costs, for the cap: its bytes, its header
 * and the 5-byte prefix it had on the wire, so a flood of empty messages
 * counts too. */
static size_t in_cost(const h2rpc__msg *m) {
  return m->len + sizeof(*m) + 5;
}

h2rpc__msg *h2rpc__msg_new(size_t len) {
  h2rpc__msg *m = malloc(sizeof(*m) + (len ? len : 1));
  if (m != NULL) {
    m->next = NULL;
    m->len = len;
  }
  return m;
}

static void free_list(h2rpc__msg *m) {
  while (m != NULL) {
    h2rpc__msg *next = m->next;
    free(m);
    m = next;
  }
}

int h2rpc__pipe_init(h2rpc__pipe *p, h2rpc__loop *loop,
                     void (*wake_run)(h2rpc__task *task)) {
  memset(p, 0, sizeof(*p));
  if (pthread_mutex_init(&p->mu, NULL) != 0)
    return -1;
  if (pthread_cond_init(&p->cv, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    return -1;
  }
  p->loop = loop;
  p->wake.run = wake_run;
  return 0;
}

void h2rpc__pipe_destroy(h2rpc__pipe *p) {
  free_list(p->out_head);
  free_list(p->in_head);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
}

/* Under p->mu. */
static void wake_loop(h2rpc__pipe *p) {
  if (p->wake_posted || p->ended)
    return;
  p->wake_posted = 1;
  h2rpc__loop_post(p->loop, &p->wake);
}

void h2rpc__pipe_poke(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  wake_loop(p);
  pthread_mutex_unlock(&p->mu);
}

int h2rpc__pipe_wake_pending(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  int pending = p->wake_posted;
  pthread_mutex_unlock(&p->mu);
  return pending;
}

void h2rpc__pipe_woken(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  p->wake_posted = 0;
  pthread_mutex_unlock(&p->mu);
}

/* Under p->mu: why a message cannot be queued now, or OK. */
static h2rpc_code refusal(h2rpc__pipe *p) {
  if (p->ended)
    return p->end_code == H2RPC_OK ? H2RPC_FAILED_PRECONDITION : p->end_code;
  if (p->out_closed)
    return H2RPC_FAILED_PRECONDITION;
  return H2RPC_OK;
}

/* Under p->mu. */
static void enqueue_out(h2rpc__pipe *p, h2rpc__msg *m) {
  m->next = NULL;
  if (p->out_tail != NULL)
    p->out_tail->next = m;
  else
    p->out_head = m;
  p->out_tail = m;
  p->out_bytes += m->len;
  wake_loop(p);
}

h2rpc_code h2rpc__pipe_send(h2rpc__pipe *p, h2rpc__msg *m) {
  pthread_mutex_lock(&p->mu);
  /* Room for one message is always made, so a message larger than the cap
   * still goes (alone). */
  while (!p->ended && !p->out_closed && p->out_bytes >= H2RPC__PIPE_OUT_CAP)
    pthread_cond_wait(&p->cv, &p->mu);
  h2rpc_code rc = refusal(p);
  if (rc == H2RPC_OK)
    enqueue_out(p, m);
  pthread_mutex_unlock(&p->mu);
  if (rc != H2RPC_OK)
    free(m);
  return rc;
}

h2rpc_code h2rpc__pipe_try_send(h2rpc__pipe *p, h2rpc__msg *m) {
  pthread_mutex_lock(&p->mu);
  h2rpc_code rc = refusal(p);
  if (rc == H2RPC_OK && p->out_bytes >= H2RPC__PIPE_OUT_CAP) {
    p->want_writable = 1;
    pthread_mutex_unlock(&p->mu);
    return H2RPC_RESOURCE_EXHAUSTED; /* not taken: the caller keeps m */
  }
  if (rc == H2RPC_OK)
    enqueue_out(p, m);
  pthread_mutex_unlock(&p->mu);
  if (rc != H2RPC_OK)
    free(m);
  return rc;
}

int h2rpc__pipe_take_writable(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  int writable = p->writable;
  p->writable = 0;
  pthread_mutex_unlock(&p->mu);
  return writable;
}

void h2rpc__pipe_close_send(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  if (!p->out_closed) {
    p->out_closed = 1;
    wake_loop(p);
  }
  pthread_mutex_unlock(&p->mu);
}

h2rpc__msg *h2rpc__pipe_recv(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  while (p->in_head == NULL && !p->in_ended && !p->ended)
    pthread_cond_wait(&p->cv, &p->mu);
  h2rpc__msg *m = p->in_head;
  if (m != NULL) {
    p->in_head = m->next;
    if (p->in_head == NULL)
      p->in_tail = NULL;
    p->in_bytes -= in_cost(m);
    /* The loop holds back window while we lag; tell it we caught up. */
    if (p->window_owed > 0 && p->in_bytes < H2RPC__PIPE_IN_CAP)
      wake_loop(p);
  }
  pthread_mutex_unlock(&p->mu);
  return m;
}

h2rpc_code h2rpc__pipe_wait_end(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  while (!p->ended)
    pthread_cond_wait(&p->cv, &p->mu);
  h2rpc_code code = p->end_code;
  pthread_mutex_unlock(&p->mu);
  return code;
}

size_t h2rpc__pipe_take_out(h2rpc__pipe *p, uint8_t *buf, size_t length,
                            int *eof, int *deferred) {
  size_t n = 0;
  *eof = 0;
  *deferred = 0;
  pthread_mutex_lock(&p->mu);
  while (n < length && p->out_head != NULL) {
    h2rpc__msg *m = p->out_head;
    size_t left = m->len - p->out_off;
    size_t take = left < length - n ? left : length - n;
    memcpy(buf + n, m->data + p->out_off, take);
    n += take;
    p->out_off += take;
    p->out_bytes -= take;
    if (p->out_off == m->len) {
      p->out_head = m->next;
      if (p->out_head == NULL)
        p->out_tail = NULL;
      p->out_off = 0;
      free(m);
    }
  }
  if (p->out_head == NULL) {
    if (p->out_closed)
      *eof = 1;
    else if (n == 0) {
      *deferred = 1;
      p->out_deferred = 1;
    }
  }
  if (n > 0) {
    pthread_cond_broadcast(&p->cv); /* room for blocked senders */
    if (p->want_writable && p->out_bytes < H2RPC__PIPE_OUT_CAP) {
      p->want_writable = 0;
      p->writable = 1;
      wake_loop(p); /* on_writable runs from the wake task */
    }
  }
  pthread_mutex_unlock(&p->mu);
  return n;
}

h2rpc_code h2rpc__pipe_put_in(h2rpc__pipe *p, const uint8_t *data, size_t len) {
  h2rpc__msg *m = h2rpc__msg_new(len);
  if (m == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  if (len > 0)
    memcpy(m->data, data, len);
  pthread_mutex_lock(&p->mu);
  if (p->in_tail != NULL)
    p->in_tail->next = m;
  else
    p->in_head = m;
  p->in_tail = m;
  p->in_bytes += in_cost(m);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return H2RPC_OK;
}

size_t h2rpc__pipe_received(h2rpc__pipe *p, size_t len) {
  pthread_mutex_lock(&p->mu);
  p->window_owed += len;
  size_t give = 0;
  if (p->in_bytes < H2RPC__PIPE_IN_CAP) {
    give = p->window_owed;
    p->window_owed = 0;
  }
  pthread_mutex_unlock(&p->mu);
  return give;
}

size_t h2rpc__pipe_window_to_return(h2rpc__pipe *p) {
  return h2rpc__pipe_received(p, 0);
}

int h2rpc__pipe_resume_out(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  int resume = p->out_deferred && (p->out_head != NULL || p->out_closed);
  if (resume)
    p->out_deferred = 0;
  pthread_mutex_unlock(&p->mu);
  return resume;
}

int h2rpc__pipe_has_out(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  int has = p->out_head != NULL;
  pthread_mutex_unlock(&p->mu);
  return has;
}

void h2rpc__pipe_close_out_quietly(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  p->out_closed = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

void h2rpc__pipe_in_end(h2rpc__pipe *p) {
  pthread_mutex_lock(&p->mu);
  p->in_ended = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

void h2rpc__pipe_end(h2rpc__pipe *p, h2rpc_code code) {
  pthread_mutex_lock(&p->mu);
  if (!p->ended) {
    p->ended = 1;
    p->end_code = code;
    p->in_ended = 1;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
}
