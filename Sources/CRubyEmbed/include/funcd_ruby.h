#ifndef FUNCD_RUBY_H
#define FUNCD_RUBY_H

// The C face of funcd's embedded Ruby. Ruby's API is touched only in funcd_ruby.c, and only on
// threads Ruby owns; Swift hands calls over with plain bytes from any thread, and hears back
// through callbacks that Ruby threads make (holding the GVL: they must be quick).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What a reply from the glue carries.
typedef enum {
    FUNCD_RUBY_COMPLETE = 0, ///< the whole answer: status, headers, body (`Native.reply`)
    FUNCD_RUBY_HEAD = 1,     ///< a streamed answer starts: status, headers, first bytes (`Native.head`)
    FUNCD_RUBY_CHUNK = 2,    ///< more bytes of a streamed answer (`Native.chunk`)
    FUNCD_RUBY_END = 3,      ///< the streamed answer ends (body: last bytes, error: why it broke; `Native.finish`)
} funcd_ruby_reply_kind;

typedef struct {
    uint64_t id;
    int kind;
    int status;
    /// Header fields, each a name then a value, each of those its length (uint32, little-endian)
    /// followed by its bytes (FuncdCore's HeaderPacking): any byte may occur inside a value.
    const char *headers;
    size_t headers_length;
    const uint8_t *body;
    size_t body_length;
    /// Set when the handler failed: the backtrace for the log (`timeout` after an interrupt).
    const char *error;
    size_t error_length;
} funcd_ruby_reply;

typedef struct {
    void *context;
    /// Start-up is over: `error` is NULL when the handler is loaded and the call threads run.
    void (*started)(void *context, const char *error);
    /// A Ruby thread is about to run call `id`: returns 0 when it must be skipped (its
    /// deadline passed while it waited).
    int (*starting)(void *context, uint64_t id);
    /// A call's answer, or a part of a streamed one. Returns 0 when a streamed answer should
    /// pause (the client is behind): `Native.chunk` then waits, without the GVL, for
    /// funcd_ruby_resume (or a Thread#raise); 1 otherwise.
    int (*reply)(void *context, const funcd_ruby_reply *reply);
    /// A Ruby thread found no work and is about to wait: hand answers back.
    void (*idle)(void *context);
} funcd_ruby_callbacks;

/// Initialises Ruby on this thread (which must have a large stack and must be used for nothing
/// else), loads `glue` (runtimes/ruby/funcd/host.rb) and calls `Funcd::Host.boot(config_json)`,
/// starts `call_threads` Ruby threads and the interrupter thread, reports through `started`, and
/// never returns.
void funcd_ruby_run(const char *glue, const char *config_json, int call_threads, funcd_ruby_callbacks callbacks);

/// How a call's request carries a CloudEvent (see FuncdCore's CloudEvents).
typedef enum {
    FUNCD_RUBY_NO_EVENT = 0,
    FUNCD_RUBY_BINARY_EVENT = 1,     ///< its attributes follow the trace among the facts
    FUNCD_RUBY_STRUCTURED_EVENT = 2, ///< the body is the event
} funcd_ruby_cloudevent;

/// Any thread: queues a call (the bytes are copied); funcd_ruby_wake then lets a thread take it.
/// `headers` as in funcd_ruby_reply; its first `facts_offset` bytes are the request's fields,
/// the rest the call's facts, packed the same way (UTF-8): `traceparent`, `tracestate` (empty:
/// none), then a binary-mode event's attributes. `Native.take` gives the glue `[id, method,
/// target, headers, body, traceparent, tracestate, cloudevent]`, `cloudevent` nil, true
/// (structured) or [name, value, ...].
void funcd_ruby_submit(
    uint64_t id, const char *method, size_t method_length, const char *target, size_t target_length,
    const char *headers, size_t headers_length, size_t facts_offset, funcd_ruby_cloudevent cloudevent,
    const uint8_t *body, size_t body_length);

/// Any thread, once after queueing a batch of calls: wakes a waiting Ruby thread when none is
/// busy (a busy one takes the next call itself), else the monitor. Once per batch rather than
/// per call, because a Ruby thread woken by the first call of a batch would take the CPU from
/// the event loop still queueing the rest, answer that one call and hand it back alone: two
/// context switches per call instead of per batch.
void funcd_ruby_wake(void);

/// Any thread: the deadline of call `id` passed; Thread#raise it if it is running.
void funcd_ruby_interrupt(uint64_t id);

/// Any thread: the paused streamed answer of call `id` may go on.
void funcd_ruby_resume(uint64_t id);

/// The Ruby version (`3.1.2`).
const char *funcd_ruby_version(void);

#ifdef __cplusplus
}
#endif

#endif
