#ifndef FUNCD_NODE_H
#define FUNCD_NODE_H

// The C face of funcd's embedded Node.js. Everything V8 and libuv stays in funcd_node.cc; the
// Swift host sees an opaque handle, plain bytes and a few callbacks, all run on the one thread
// that owns the isolate and the event loop (the thread that called funcd_node_start), except the
// functions marked "any thread".

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct funcd_node funcd_node;

/// What a reply from the glue carries (`native.reply(id, kind, status, headers, body, error)`).
typedef enum {
    FUNCD_NODE_COMPLETE = 0, ///< the whole answer: status, headers, body
    FUNCD_NODE_HEAD = 1,     ///< a streamed answer starts: status, headers, first bytes
    FUNCD_NODE_CHUNK = 2,    ///< more bytes of a streamed answer
    FUNCD_NODE_END = 3,      ///< the streamed answer ends (body: last bytes, error: why it broke)
} funcd_node_reply_kind;

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
    /// Set when the handler failed: the stack trace for the log.
    const char *error;
    size_t error_length;
} funcd_node_reply;

typedef struct {
    void *context;
    /// The event loop was woken with funcd_node_wake: take the queued work.
    void (*wake)(void *context);
    /// The glue answered a call. Returns 0 when a streamed answer should pause (backpressure)
    /// until funcd_node_drain, 1 otherwise.
    int (*reply)(void *context, const funcd_node_reply *reply);
    /// Once per turn of the event loop, after its I/O: hand answers back.
    void (*turn)(void *context);
} funcd_node_callbacks;

/// Results of funcd_node_call.
typedef enum {
    FUNCD_NODE_CALLED = 0,     ///< the glue ran (its answer may come now or later)
    FUNCD_NODE_TERMINATED = 1, ///< funcd_node_terminate stopped the JavaScript
    FUNCD_NODE_EXITED = 2,     ///< the handler called process.exit(); see funcd_node_exit_code
} funcd_node_call_status;

/// Initialises Node on this thread, runs `bootstrap` (a function body given `process` and
/// `require`) and expects it to return the glue's `{call, cancel, drain}` object, or
/// `{error: "text"}`. On failure returns NULL and sets `*error` (free it with free()).
funcd_node *funcd_node_start(
    const char *argv0, const char *bootstrap, funcd_node_callbacks callbacks, char **error);

/// Runs the event loop until funcd_node_stop; returns Node's exit code.
int funcd_node_run(funcd_node *node);

/// The Node version (`18.20.4`).
const char *funcd_node_version(void);

/// How a call's request carries a CloudEvent (see FuncdCore's CloudEvents).
typedef enum {
    FUNCD_NODE_NO_EVENT = 0,
    FUNCD_NODE_BINARY_EVENT = 1,     ///< its attributes follow the trace in `facts`
    FUNCD_NODE_STRUCTURED_EVENT = 2, ///< the body is the event
} funcd_node_cloudevent;

/// Calls `glue.call(id, method, target, headers, body, remoteAddress, traceparent, tracestate,
/// cloudevent)`. `headers` as in funcd_node_reply; `remote_address`: the client's IP address,
/// NUL-terminated, or NULL for none. `facts`, length-prefixed UTF-8 names and values like
/// `headers`: the fields `traceparent` and `tracestate` (empty: none), then, for a
/// binary-mode event, its attributes, which become `cloudevent`'s [name, value, ...] array; a
/// structured event's `cloudevent` is true.
int funcd_node_call(
    funcd_node *node, uint64_t id, const char *method, size_t method_length, const char *target,
    size_t target_length, const char *headers, size_t headers_length, const uint8_t *body,
    size_t body_length, const char *remote_address, const char *facts, size_t facts_length,
    funcd_node_cloudevent cloudevent);

/// `glue.cancel(id)`: the call's deadline passed; its late answer is dropped.
void funcd_node_cancel(funcd_node *node, uint64_t id);

/// `glue.drain(id)`: a streamed answer that paused may go on.
void funcd_node_drain(funcd_node *node, uint64_t id);

/// The code passed to process.exit() by the last call that returned FUNCD_NODE_EXITED.
int funcd_node_exit_code(funcd_node *node);

/// Any thread: makes the loop call `callbacks.wake` soon (coalesced).
void funcd_node_wake(funcd_node *node);

/// Any thread: stops the JavaScript running now (V8 TerminateExecution).
void funcd_node_terminate(funcd_node *node);

/// Any thread: withdraws a termination that did not take (see docs/embedding-notes.md, "Node": timers).
void funcd_node_cancel_terminate(funcd_node *node);

/// How often the loop's heartbeat timer fires while it runs.
enum { funcd_node_heartbeat_milliseconds = 10 };

/// How long the heartbeat runs after the loop starts, a call starts or a termination, until
/// funcd_node_keep_beating_for says otherwise.
enum { funcd_node_default_beat_window_milliseconds = 60000 };

/// Any thread: CLOCK_MONOTONIC nanoseconds of the loop's last heartbeat. While the heartbeat
/// runs, a free loop beats every funcd_node_heartbeat_milliseconds; one that stopped beating is
/// held by a callback. It runs from the start of each call until the window after it (set the
/// window longer than any deadline, so that every deadline finds it running), and from a
/// funcd_node_terminate until the window after the loop is back; an idle loop does not beat.
uint64_t funcd_node_last_beat(funcd_node *node);

/// Any thread: CLOCK_MONOTONIC nanoseconds of the loop's last turn (its check phase). A loop
/// woken for a call turns soon after; one that has not turned since is held by a callback.
uint64_t funcd_node_last_turn(funcd_node *node);

/// Loop thread: sets the heartbeat's window, in milliseconds, and starts one now.
void funcd_node_keep_beating_for(funcd_node *node, uint64_t milliseconds);

/// Any thread: ends funcd_node_run soon.
void funcd_node_stop(funcd_node *node);

#ifdef __cplusplus
}
#endif

#endif
