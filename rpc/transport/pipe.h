/*
 * transport/pipe.h: the message pipe between a streaming call's user thread
 * and its loop.
 *
 * A streaming call (client or server side) is driven by a thread that blocks
 * (send waits for room, recv waits for a message) while its HTTP/2 stream
 * lives on a loop. The pipe is the only state they share, under one mutex:
 *
 *   out: encoded messages the user queued, read by the stream's nghttp2 data
 *        provider on the loop. Bounded: send blocks while `out_bytes` is at
 *        the cap, so a slow reader holds the writer back (flow control)
 *        instead of the queue growing.
 *   in:  messages the loop deframed, taken by recv. Bounded too: while the
 *        user has `in_cap` bytes unread, the loop stops returning HTTP/2
 *        window to the peer (nghttp2_session_consume), so the peer stops.
 *
 * The user side wakes the loop through `wake` (a task posted to the loop):
 * the loop then resumes a deferred data provider and returns window.
 */
#ifndef H2RPC_TRANSPORT_PIPE_H
#define H2RPC_TRANSPORT_PIPE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "h2rpc/status.h"
#include "transport/loop.h"

/* Default caps: enough for a full window's worth of small messages. */
#define H2RPC__PIPE_OUT_CAP (256 * 1024)
#define H2RPC__PIPE_IN_CAP (256 * 1024)

typedef struct h2rpc__msg h2rpc__msg;
struct h2rpc__msg {
  h2rpc__msg *next;
  size_t len; /* bytes in data */
  uint8_t data[];
};

typedef struct h2rpc__pipe {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* user side waits here */
  /* user -> loop */
  h2rpc__msg *out_head, *out_tail;
  size_t out_off;    /* bytes of out_head already handed to nghttp2 */
  size_t out_bytes;  /* queued, not yet handed over */
  int out_closed;    /* the user half-closed: no more sends */
  int out_deferred;  /* the data provider is waiting for data */
  int want_writable; /* try_send found the queue full */
  int writable;      /* ...and it has room again: tell the user */
  /* loop -> user */
  h2rpc__msg *in_head, *in_tail;
  size_t in_bytes;    /* cost of the unread messages (see in_cost) */
  size_t window_owed; /* received bytes not yet returned to the peer */
  int in_ended;       /* no more messages will arrive */
  /* the end */
  int ended; /* the stream is over; status is final */
  h2rpc_code end_code;
  /* wake-up of the loop; posted at most once at a time */
  h2rpc__loop *loop;
  h2rpc__task wake;
  int wake_posted;
} h2rpc__pipe;

/* Sets up the pipe; `wake_run` runs on the loop when the user side needs it
 * (see above). Returns 0 or -1. */
int h2rpc__pipe_init(h2rpc__pipe *p, h2rpc__loop *loop,
                     void (*wake_run)(h2rpc__task *task));

/* Frees queued messages and the lock. Neither side may use it afterwards. */
void h2rpc__pipe_destroy(h2rpc__pipe *p);

/* --- user thread --- */

/* Queues an encoded message (prefix included; taken over on OK). Blocks while
 * the queue is full. Returns OK, FAILED_PRECONDITION after close_send, or the
 * end code once the stream has ended (the message is then freed). */
h2rpc_code h2rpc__pipe_send(h2rpc__pipe *p, h2rpc__msg *m);

/* As h2rpc__pipe_send but never waits: RESOURCE_EXHAUSTED when the queue is
 * full (the message is then not taken; h2rpc__pipe_take_writable tells when
 * there is room). */
h2rpc_code h2rpc__pipe_try_send(h2rpc__pipe *p, h2rpc__msg *m);

/* Whether a full queue has room again since try_send failed, clearing it. */
int h2rpc__pipe_take_writable(h2rpc__pipe *p);

/* Half-closes the sending side. */
void h2rpc__pipe_close_send(h2rpc__pipe *p);

/* Waits for the next message. Returns it (the caller frees it), or NULL once
 * no more will come. */
h2rpc__msg *h2rpc__pipe_recv(h2rpc__pipe *p);

/* Wakes the loop (stream_wake runs there) unless the stream has ended. */
void h2rpc__pipe_poke(h2rpc__pipe *p);

/* Waits until the stream has ended; returns the end code. */
h2rpc_code h2rpc__pipe_wait_end(h2rpc__pipe *p);

/* --- loop thread --- */

/* Copies up to `length` bytes of queued output into buf. Sets *eof when the
 * user has half-closed and everything was handed over; returns 0 with
 * *deferred set when there is nothing to hand over yet. */
size_t h2rpc__pipe_take_out(h2rpc__pipe *p, uint8_t *buf, size_t length,
                            int *eof, int *deferred);

/* Delivers a received message (copied). Returns OK, or RESOURCE_EXHAUSTED
 * when memory runs out. */
h2rpc_code h2rpc__pipe_put_in(h2rpc__pipe *p, const uint8_t *data, size_t len);

/* Accounts `len` received DATA bytes; returns how many the loop should give
 * back to the peer now (nghttp2_session_consume): all that is owed while the
 * user keeps up, 0 while it has in_cap bytes unread. Partial messages do not
 * count as unread, so a message larger than the window always completes. */
size_t h2rpc__pipe_received(h2rpc__pipe *p, size_t len);

/* Window bytes to return to the peer now that the user caught up (0 while
 * it still lags), clearing what it returns. */
size_t h2rpc__pipe_window_to_return(h2rpc__pipe *p);

/* Whether the data provider is deferred and has data again, clearing the
 * flag: the loop then calls nghttp2_session_resume_data(). */
int h2rpc__pipe_resume_out(h2rpc__pipe *p);

/* Non-zero when output is queued. */
int h2rpc__pipe_has_out(h2rpc__pipe *p);

/* Marks the sending side closed from the loop, without posting a wake-up
 * (the loop acts on it itself). */
void h2rpc__pipe_close_out_quietly(h2rpc__pipe *p);

/* No more messages will arrive (peer half-closed or stream over). */
void h2rpc__pipe_in_end(h2rpc__pipe *p);

/* The stream is over with `code`; wakes every waiter. First call wins. */
void h2rpc__pipe_end(h2rpc__pipe *p, h2rpc_code code);

/* Whether a wake task is queued (the owner must not be freed before it
 * runs). */
int h2rpc__pipe_wake_pending(h2rpc__pipe *p);

/* Marks the wake task as run (call first thing in wake_run). */
void h2rpc__pipe_woken(h2rpc__pipe *p);

/* Allocates a message of len bytes (data uninitialized), or NULL. */
h2rpc__msg *h2rpc__msg_new(size_t len);

#endif
