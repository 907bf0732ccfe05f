// funcd's embedded Ruby: the only code that calls Ruby's C API. Ruby runs on the thread that
// calls funcd_ruby_run (it initialises the VM there and never returns); handlers run on Ruby
// Threads that wait for calls in `Funcd::Native.take` without holding the GVL, so that slow
// handlers overlap; timeouts are delivered by a Ruby Thread that waits in
// `Funcd::Native.next_interrupt` and calls Thread#raise. Every Ruby call from C that can raise
// runs under rb_protect, so Ruby's longjmps never cross a Swift frame. See
// docs/embedding-notes.md ("Ruby").

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // gettid
#endif

#include "funcd_ruby.h"

#include <ruby.h>
#include <ruby/thread.h>
#include <ruby/version.h>

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// MARK: - Calls and interrupts, handed over from any thread

static uint64_t monotonic_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

struct call {
    struct call *next;
    uint64_t id;
    uint64_t queued_at;
    size_t method_length, target_length, headers_length, facts_offset, body_length;
    funcd_ruby_cloudevent cloudevent;
    char bytes[];
};

// Waking a Ruby thread per call makes them all fight for the GVL (a third of the throughput
// lost with 16 threads). So a batch of calls (funcd_ruby_wake) wakes a waiting thread only
// when no thread is busy with a call (a busy one takes the next call itself when it is done);
// and a monitor wakes one more when the queue has made no progress for a millisecond while
// every busy thread is blocked (sleeping in the kernel, not running or waiting for a CPU): a
// handler in sleep or I/O then holds up the others for a millisecond at most, and a busy core
// does not look like a stall.
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t interrupt_available = PTHREAD_COND_INITIALIZER;
static pthread_cond_t monitor_wake;
static struct call *queue_head, *queue_tail;
static int busy_threads;     // took a call and have not come back for the next
static pid_t busy_tids[1024];
static clockid_t busy_clocks[1024];   // each busy thread's CPU-time clock
static uint64_t busy_cpu_seen[1024];  // its CPU time when the monitor last looked
static int waiting_threads;  // blocked in wait_for_call
static int wakeups_pending;  // signalled and not yet awake: counted as busy, or each call would wake one
static uint64_t calls_taken;
// When a call was last taken (monotonic ns): the monitor's tick grows only while that is recent.
static uint64_t last_taken_at;
static int monitor_idle;     // the monitor sleeps until a submit wakes it
struct wait;
static struct wait *idle_top;  // the stack of threads waiting for a call
static void wake_idle_locked(void);
static __thread int holding_call;
static uint64_t *interrupts;
static size_t interrupt_count, interrupt_capacity;
// Streamed answers that paused and may go on (funcd_ruby_resume), until their writer sees it.
static pthread_cond_t resume_available = PTHREAD_COND_INITIALIZER;
static uint64_t *resumes;
static size_t resume_count, resume_capacity;
static funcd_ruby_callbacks host;

// A packed length (FuncdCore's HeaderPacking: uint32, little-endian).
static size_t packed_length(const char *bytes) {
    const unsigned char *b = (const unsigned char *)bytes;
    return (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
}

// The call's facts (see funcd_ruby_submit) as Ruby strings: the trace, and into `attributes`
// (when asked for) a binary event's names and values. GVL held.
static void read_facts(const char *facts, size_t length, VALUE *traceparent, VALUE *tracestate, VALUE *attributes) {
    if (attributes) *attributes = rb_ary_new();
    size_t at = 0;
    int field = 0;
    while (length - at >= 8) {
        size_t name_length = packed_length(facts + at);
        if (length - at - 4 < name_length + 4) break;
        const char *name = facts + at + 4;
        size_t value_length = packed_length(name + name_length);
        const char *value = name + name_length + 4;
        if ((size_t)(facts + length - value) < value_length) break;
        at = (size_t)(value + value_length - facts);
        // By place: the trace's two fields (an empty tracestate is none), then attributes.
        if (field == 0) {
            *traceparent = rb_utf8_str_new(value, (long)value_length);
        } else if (field == 1) {
            if (value_length) *tracestate = rb_utf8_str_new(value, (long)value_length);
        } else if (attributes) {
            rb_ary_push(*attributes, rb_utf8_str_new(name, (long)name_length));
            rb_ary_push(*attributes, rb_utf8_str_new(value, (long)value_length));
        } else {
            break;
        }
        field++;
    }
}

void funcd_ruby_submit(uint64_t id, const char *method, size_t method_length, const char *target,
                       size_t target_length, const char *headers, size_t headers_length, size_t facts_offset,
                       funcd_ruby_cloudevent cloudevent, const uint8_t *body, size_t body_length) {
    struct call *call = malloc(sizeof(struct call) + method_length + target_length + headers_length + body_length);
    if (!call) abort();
    call->next = NULL;
    call->id = id;
    call->method_length = method_length;
    call->target_length = target_length;
    call->headers_length = headers_length;
    call->facts_offset = facts_offset <= headers_length ? facts_offset : headers_length;
    call->cloudevent = cloudevent;
    call->body_length = body_length;
    char *cursor = call->bytes;
    memcpy(cursor, method, method_length);
    cursor += method_length;
    memcpy(cursor, target, target_length);
    cursor += target_length;
    if (headers_length) memcpy(cursor, headers, headers_length);
    cursor += headers_length;
    if (body_length) memcpy(cursor, body, body_length);

    call->queued_at = monotonic_nanoseconds();

    pthread_mutex_lock(&lock);
    if (queue_tail) queue_tail->next = call;
    else queue_head = call;
    queue_tail = call;
    pthread_mutex_unlock(&lock);
}

void funcd_ruby_wake(void) {
    pthread_mutex_lock(&lock);
    if (queue_head) {
        int woke = 0;
        if (busy_threads + wakeups_pending == 0 && idle_top) {
            wake_idle_locked();
            woke = 1;
        }
        // The monitor watches a busy thread; and when the woken thread will take more than one
        // call of this batch, it must hand back the answers that thread parks before a long one.
        if (monitor_idle && (!woke || queue_head->next)) {
            monitor_idle = 0;
            pthread_cond_signal(&monitor_wake);
        }
    }
    pthread_mutex_unlock(&lock);
}

void funcd_ruby_interrupt(uint64_t id) {
    pthread_mutex_lock(&lock);
    if (interrupt_count == interrupt_capacity) {
        interrupt_capacity = interrupt_capacity ? interrupt_capacity * 2 : 16;
        interrupts = realloc(interrupts, interrupt_capacity * sizeof(uint64_t));
        if (!interrupts) abort();
    }
    interrupts[interrupt_count++] = id;
    pthread_cond_signal(&interrupt_available);
    pthread_mutex_unlock(&lock);
}

// The most resumes kept: a resume that comes after its stream ended (a late drain) is never
// taken, so without a bound they would pile up. Live streams are at most FUNC_CONCURRENCY
// (4096) with one resume each, so the oldest entry beyond this is a stale one.
#define RESUME_LIMIT 8192

void funcd_ruby_resume(uint64_t id) {
    pthread_mutex_lock(&lock);
    if (resume_count == RESUME_LIMIT) {
        memmove(resumes, resumes + 1, (RESUME_LIMIT - 1) * sizeof(uint64_t));
        resume_count--;
    }
    if (resume_count == resume_capacity) {
        resume_capacity = resume_capacity ? resume_capacity * 2 : 16;
        resumes = realloc(resumes, resume_capacity * sizeof(uint64_t));
        if (!resumes) abort();
    }
    resumes[resume_count++] = id;
    pthread_cond_broadcast(&resume_available);
    pthread_mutex_unlock(&lock);
}

// Takes `id` out of the resumes; true when it was there. Called with the lock held.
static int take_resume_locked(uint64_t id) {
    for (size_t index = 0; index < resume_count; index++) {
        if (resumes[index] == id) {
            // Order kept: the first entry is the oldest (see RESUME_LIMIT).
            memmove(resumes + index, resumes + index + 1, (resume_count - index - 1) * sizeof(uint64_t));
            resume_count--;
            return 1;
        }
    }
    return 0;
}

const char *funcd_ruby_version(void) { return ruby_version; }

static struct call *pop_call_locked(void) {
    struct call *call = queue_head;
    if (call) {
        queue_head = call->next;
        if (!queue_head) queue_tail = NULL;
        calls_taken++;
        last_taken_at = monotonic_nanoseconds();
        if (busy_threads < (int)(sizeof busy_tids / sizeof busy_tids[0])) {
            busy_tids[busy_threads] = gettid();
            if (pthread_getcpuclockid(pthread_self(), &busy_clocks[busy_threads]) != 0)
                busy_clocks[busy_threads] = CLOCK_THREAD_CPUTIME_ID;
            busy_cpu_seen[busy_threads] = 0;
        }
        busy_threads++;
    }
    return call;
}

static void leave_busy_locked(void) {
    pid_t self = gettid();
    int count = busy_threads < (int)(sizeof busy_tids / sizeof busy_tids[0]) ? busy_threads : (int)(sizeof busy_tids / sizeof busy_tids[0]);
    for (int index = 0; index < count; index++) {
        if (busy_tids[index] == self) {
            busy_tids[index] = busy_tids[count - 1];
            busy_clocks[index] = busy_clocks[count - 1];
            busy_cpu_seen[index] = busy_cpu_seen[count - 1];
            break;
        }
    }
    busy_threads--;
}

// True when the thread is running or runnable ('R' in /proc/self/task/TID/stat).
static int thread_is_running(pid_t tid) {
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *file = fopen(path, "r");
    if (!file) return 0;
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = 0;
    char *close = strrchr(text, ')');
    return close && close[1] == ' ' && close[2] == 'R';
}

static uint64_t cpu_nanoseconds(clockid_t clock) {
    struct timespec time;
    if (clock_gettime(clock, &time) != 0) return 0;
    return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

// True when no busy thread got anywhere since the monitor last looked: none is running or
// waiting for a CPU, and none used CPU time (a thread that sleeps on a lock for a moment
// between bursts of work is not blocked). Called with the lock held.
static int busy_threads_all_blocked_locked(void) {
    int count = busy_threads < (int)(sizeof busy_tids / sizeof busy_tids[0]) ? busy_threads : (int)(sizeof busy_tids / sizeof busy_tids[0]);
    int blocked = 1;
    for (int index = 0; index < count; index++) {
        uint64_t used = cpu_nanoseconds(busy_clocks[index]);
        if (used != busy_cpu_seen[index]) {
            busy_cpu_seen[index] = used;
            blocked = 0;
        } else if (thread_is_running(busy_tids[index])) {
            blocked = 0;
        }
    }
    return blocked;
}

// Queued calls that see no progress for this long get another Ruby thread woken.
#define STALL_NANOSECONDS 1000000u
// The monitor's longest tick, reached by doubling while each look finds the queue moving (a fast
// handler under load): each wake-up of the monitor costs CPU and, on a shared core, preempts the
// call thread. A call that blocks after such a run is seen this much later at most.
#define LONGEST_TICK_NANOSECONDS (4 * STALL_NANOSECONDS)

// The monitor: a plain thread (it never touches Ruby) that wakes one more Ruby thread when
// queued calls see no progress for a millisecond.
static void *monitor(void *unused) {
    (void)unused;
    uint64_t tick = STALL_NANOSECONDS;
    uint64_t taken = calls_taken;
    int handed_back = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        // Idle after a whole tick with nothing queued or taken, and nothing running whose thread
        // may have answers parked (they were handed back below). Idling whenever the queue ran dry
        // got the monitor woken by the next batch, once every 30 calls of a fast handler under load.
        if (!queue_head && calls_taken == taken && (busy_threads == 0 || handed_back)) {
            monitor_idle = 1;
            while (monitor_idle) pthread_cond_wait(&monitor_wake, &lock);
            tick = STALL_NANOSECONDS;
            taken = calls_taken;
            handed_back = 0;
            continue;
        }
        taken = calls_taken;
        handed_back = 0;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(tick / 1000000000u);
        until.tv_nsec += (long)(tick % 1000000000u);
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec += 1;
            until.tv_nsec -= 1000000000;
        }
        // Only the clock wakes it here: submits do not signal a monitor that is watching.
        while (pthread_cond_timedwait(&monitor_wake, &lock, &until) == 0) {}
        // The lock is held from the wait to here: the first three tests cannot change under the
        // last two.
        uint64_t now = monotonic_nanoseconds();
        if (queue_head && calls_taken == taken && idle_top && now - queue_head->queued_at >= STALL_NANOSECONDS &&
            busy_threads_all_blocked_locked()) {
            wake_idle_locked();
        }
        // Twice as long while the queue moves (a call was taken within the stall threshold); a
        // millisecond again as soon as it has not.
        int settled = !queue_head || now - last_taken_at < STALL_NANOSECONDS;
        tick = settled ? (tick * 2 < LONGEST_TICK_NANOSECONDS ? tick * 2 : LONGEST_TICK_NANOSECONDS) : STALL_NANOSECONDS;
        if (calls_taken == taken && busy_threads > 0) {
            // No call was taken for a whole tick while one ran. A thread hands its parked answers
            // back only when it goes idle, so those it answered before this long call would wait
            // for its end (a second, in a test, for two quick calls queued before a sleep).
            pthread_mutex_unlock(&lock);
            host.idle(host.context);
            pthread_mutex_lock(&lock);
            handed_back = 1;
        }
    }
    return NULL;
}

static void start_monitor(void) {
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&monitor_wake, &attributes);
    pthread_condattr_destroy(&attributes);
    pthread_t thread;
    pthread_attr_t thread_attributes;
    pthread_attr_init(&thread_attributes);
    pthread_attr_setstacksize(&thread_attributes, 256 * 1024);
    pthread_attr_setdetachstate(&thread_attributes, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &thread_attributes, monitor, NULL) != 0) abort();
    pthread_attr_destroy(&thread_attributes);
}

// MARK: - Waiting without the GVL

// What a Ruby thread waits for; `woken` is set by Ruby's unblocking function (Thread#raise,
// Thread#kill, process exit), which must make the wait return.
struct wait {
    struct call *call;
    uint64_t interrupt;
    int found;
    int woken;
    // For waiting for calls: each waiter has its own condition and sits on a stack, so that the
    // thread woken is the one that went idle last (its caches are warm; with one shared
    // condition, the threads took turns and each call ran on a cold thread: 2.5x slower).
    pthread_cond_t condition;
    struct wait *below;
    int signalled;
    int queued;  // on the idle stack, or signalled and not yet awake
};

static void push_idle_locked(struct wait *wait) {
    wait->signalled = 0;
    wait->queued = 1;
    wait->below = idle_top;
    idle_top = wait;
    waiting_threads++;
}

static void remove_idle_locked(struct wait *wait) {
    for (struct wait **link = &idle_top; *link; link = &(*link)->below) {
        if (*link == wait) {
            *link = wait->below;
            waiting_threads--;
            return;
        }
    }
}

// Wakes the thread that went idle last; the caller counts it in wakeups_pending.
static void wake_idle_locked(void) {
    struct wait *wait = idle_top;
    if (!wait) return;
    idle_top = wait->below;
    waiting_threads--;
    wait->signalled = 1;
    wakeups_pending++;
    pthread_cond_signal(&wait->condition);
}

// Ends a thread's turn on the idle stack: taken off it, or (when signalled) no longer counted
// as a wakeup on its way.
static void leave_idle_locked(struct wait *wait) {
    if (!wait->queued) return;
    wait->queued = 0;
    if (wait->signalled) wakeups_pending--;
    else remove_idle_locked(wait);
}

// Arrives on the idle stack (native_take put it there), perhaps signalled already.
static void *wait_for_call(void *argument) {
    struct wait *wait = argument;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!wait->signalled && !wait->woken) pthread_cond_wait(&wait->condition, &lock);
        leave_idle_locked(wait);
        wait->call = pop_call_locked();
        if (wait->call || wait->woken) break;
        push_idle_locked(wait);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void unblock_call(void *argument) {
    struct wait *wait = argument;
    pthread_mutex_lock(&lock);
    wait->woken = 1;
    pthread_cond_signal(&wait->condition);
    pthread_mutex_unlock(&lock);
}

static void *wait_for_interrupt(void *argument) {
    struct wait *wait = argument;
    pthread_mutex_lock(&lock);
    while (!interrupt_count && !wait->woken) pthread_cond_wait(&interrupt_available, &lock);
    if (interrupt_count) {
        wait->interrupt = interrupts[0];
        memmove(interrupts, interrupts + 1, (interrupt_count - 1) * sizeof(uint64_t));
        interrupt_count--;
        wait->found = 1;
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void unblock_interrupt(void *argument) {
    struct wait *wait = argument;
    pthread_mutex_lock(&lock);
    wait->woken = 1;
    pthread_cond_broadcast(&interrupt_available);
    pthread_mutex_unlock(&lock);
}

// A writer whose streamed answer paused waits here for funcd_ruby_resume(id).
struct drain_wait {
    uint64_t id;
    int woken;
};

static void *wait_for_resume(void *argument) {
    struct drain_wait *wait = argument;
    pthread_mutex_lock(&lock);
    while (!take_resume_locked(wait->id) && !wait->woken) pthread_cond_wait(&resume_available, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void unblock_resume(void *argument) {
    struct drain_wait *wait = argument;
    pthread_mutex_lock(&lock);
    wait->woken = 1;
    pthread_cond_broadcast(&resume_available);
    pthread_mutex_unlock(&lock);
}

// MARK: - Funcd::Native, the glue's door to funcd

// Funcd::Native.take -> [id, method, target, headers, body], nil (woken without a call) or false
// (the call was skipped: its deadline passed while it waited).
static VALUE native_take(VALUE self) {
    (void)self;
    struct wait wait = {0};
    pthread_cond_init(&wait.condition, NULL);
    pthread_mutex_lock(&lock);
    int had_call = holding_call;
    if (had_call) leave_busy_locked();
    holding_call = 0;
    wait.call = pop_call_locked();
    // A thread that goes from one call straight into the next hands its parked answers back
    // only when it goes idle, so the monitor must be watching (it hands them back after a tick
    // without progress). funcd_ruby_wake cannot see to it: a call submitted by one event loop
    // can be taken here before that loop's wake, which then finds the queue empty; the answer
    // before it then waited for the whole of the next call (a second behind a sleep).
    if (wait.call && had_call && monitor_idle) {
        monitor_idle = 0;
        pthread_cond_signal(&monitor_wake);
    }
    // With nothing queued, this thread goes on the idle stack before it lets go of the lock.
    // Handing back the answers (host.idle) wakes the event loop, which can run at once and
    // submit the next calls; they must wake this thread. When it was not on the stack yet they
    // woke another, which then took calls beside it and fought it for the GVL: Ruby's echo ran
    // on three threads with 0.4-0.5 context switches per call in the event loop.
    if (!wait.call) push_idle_locked(&wait);
    pthread_mutex_unlock(&lock);
    if (!wait.call) {
        host.idle(host.context);
        // RB_NOGVL_INTR_FAIL: with an interrupt pending, rb_nogvl returns without calling
        // wait_for_call (rather than raising with this frame's `wait` still on the stack); the
        // thread then leaves the idle stack, passes on a wakeup meant for it, and takes the
        // interrupt below, as rb_thread_call_without_gvl would have.
        rb_nogvl(wait_for_call, &wait, unblock_call, &wait, RB_NOGVL_INTR_FAIL);
        pthread_mutex_lock(&lock);
        if (wait.queued) {
            int was_signalled = wait.signalled;
            leave_idle_locked(&wait);
            if (was_signalled && queue_head && busy_threads + wakeups_pending == 0) wake_idle_locked();
        }
        pthread_mutex_unlock(&lock);
        rb_thread_check_ints();
    }
    pthread_cond_destroy(&wait.condition);
    struct call *call = wait.call;
    if (!call) return Qnil;
    holding_call = 1;
    if (!host.starting(host.context, call->id)) {
        free(call);
        return Qfalse;
    }
    const char *cursor = call->bytes;
    VALUE id = ULL2NUM(call->id);
    VALUE method = rb_usascii_str_new(cursor, (long)call->method_length);
    cursor += call->method_length;
    VALUE target = rb_utf8_str_new(cursor, (long)call->target_length);
    cursor += call->target_length;
    VALUE headers = rb_str_new(cursor, (long)call->facts_offset);
    VALUE traceparent = Qnil, tracestate = Qnil, attributes = Qnil;
    read_facts(cursor + call->facts_offset, call->headers_length - call->facts_offset, &traceparent, &tracestate,
               call->cloudevent == FUNCD_RUBY_BINARY_EVENT ? &attributes : NULL);
    cursor += call->headers_length;
    VALUE body = rb_str_new(cursor, (long)call->body_length);
    VALUE cloudevent = call->cloudevent == FUNCD_RUBY_BINARY_EVENT       ? attributes
                       : call->cloudevent == FUNCD_RUBY_STRUCTURED_EVENT ? Qtrue
                                                                         : Qnil;
    free(call);
    return rb_ary_new_from_args(8, id, method, target, headers, body, traceparent, tracestate, cloudevent);
}

// Hands one reply of `kind` to funcd; returns what the callback said (0: pause).
static int send_reply(int kind, VALUE id, VALUE status, VALUE headers, VALUE body, VALUE error) {
    funcd_ruby_reply reply = {0};
    reply.kind = kind;
    reply.id = NUM2ULL(id);
    reply.status = NIL_P(status) ? 0 : NUM2INT(status);
    if (!NIL_P(headers)) {
        StringValue(headers);
        reply.headers = RSTRING_PTR(headers);
        reply.headers_length = (size_t)RSTRING_LEN(headers);
    }
    StringValue(body);
    reply.body = (const uint8_t *)RSTRING_PTR(body);
    reply.body_length = (size_t)RSTRING_LEN(body);
    if (!NIL_P(error)) {
        StringValue(error);
        reply.error = RSTRING_PTR(error);
        reply.error_length = (size_t)RSTRING_LEN(error);
    }
    int more = host.reply(host.context, &reply);
    RB_GC_GUARD(headers);
    RB_GC_GUARD(body);
    RB_GC_GUARD(error);
    return more;
}

// Funcd::Native.reply(id, status, headers, body, error): the whole answer.
static VALUE native_reply(VALUE self, VALUE id, VALUE status, VALUE headers, VALUE body, VALUE error) {
    (void)self;
    send_reply(FUNCD_RUBY_COMPLETE, id, status, headers, body, error);
    return Qnil;
}

// Funcd::Native.head(id, status, headers, body): a streamed answer starts with these bytes.
static VALUE native_head(VALUE self, VALUE id, VALUE status, VALUE headers, VALUE body) {
    (void)self;
    send_reply(FUNCD_RUBY_HEAD, id, status, headers, body, Qnil);
    return Qnil;
}

// Funcd::Native.chunk(id, body): more bytes of a streamed answer. When the client is behind,
// returns only once it has caught up (or the thread is interrupted: Thread#raise at the
// deadline), waiting without the GVL.
static VALUE native_chunk(VALUE self, VALUE id, VALUE body) {
    (void)self;
    if (send_reply(FUNCD_RUBY_CHUNK, id, Qnil, Qnil, body, Qnil)) return Qnil;
    struct drain_wait wait = {NUM2ULL(id), 0};
    rb_thread_call_without_gvl(wait_for_resume, &wait, unblock_resume, &wait);
    return Qnil;
}

// Funcd::Native.finish(id, body, error): the streamed answer ends (error: why it broke off).
static VALUE native_finish(VALUE self, VALUE id, VALUE body, VALUE error) {
    (void)self;
    send_reply(FUNCD_RUBY_END, id, Qnil, Qnil, body, error);
    // A resume that came after the last pause is not waited for by anyone.
    pthread_mutex_lock(&lock);
    take_resume_locked(NUM2ULL(id));
    pthread_mutex_unlock(&lock);
    return Qnil;
}

// Funcd::Native.next_interrupt -> the id of a call whose deadline passed, or nil.
static VALUE native_next_interrupt(VALUE self) {
    (void)self;
    struct wait wait = {0};
    rb_thread_call_without_gvl(wait_for_interrupt, &wait, unblock_interrupt, &wait);
    return wait.found ? ULL2NUM(wait.interrupt) : Qnil;
}

// MARK: - Start-up

struct boot {
    const char *glue;
    const char *config;
    int call_threads;
    VALUE host;
};

static VALUE require_and_boot(VALUE argument) {
    struct boot *boot = (struct boot *)argument;
    rb_require(boot->glue);
    VALUE funcd = rb_const_get(rb_cObject, rb_intern("Funcd"));
    VALUE host_class = rb_const_get(funcd, rb_intern("Host"));
    return rb_funcall(host_class, rb_intern("boot"), 1, rb_utf8_str_new_cstr(boot->config));
}

static VALUE run_call_threads(VALUE argument) {
    struct boot *boot = (struct boot *)argument;
    return rb_funcall(boot->host, rb_intern("run"), 1, INT2NUM(boot->call_threads));
}

// The message of the exception a protected call raised, backtrace included.
static VALUE describe_error(VALUE ignored) {
    (void)ignored;
    VALUE error = rb_errinfo();
    VALUE message = rb_funcall(error, rb_intern("full_message"), 0);
    return rb_funcall(message, rb_intern("to_s"), 0);
}

static void never_return(void) {
    for (;;) pause();
}

static void report_failure(const char *fallback) {
    int state = 0;
    VALUE text = rb_protect(describe_error, Qnil, &state);
    rb_set_errinfo(Qnil);
    host.started(host.context, state || !RB_TYPE_P(text, T_STRING) ? fallback : StringValueCStr(text));
}

void funcd_ruby_run(const char *glue, const char *config_json, int call_threads, funcd_ruby_callbacks callbacks) {
    host = callbacks;
    start_monitor();
    // As the ruby command's main does: the C library's character type from the environment, so
    // that ruby_options below derives Encoding.default_external from LANG/LC_ALL (UTF-8 under
    // C.UTF-8) instead of the C locale's US-ASCII.
    setlocale(LC_CTYPE, "");
    RUBY_INIT_STACK;
    ruby_init();
    // As the ruby command does: load path and encodings. The script itself never runs. RubyGems
    // is left for the glue to load on first need (runtimes/ruby/funcd/lazy_gems.rb): its start-up
    // is half of a cold start.
    char *arguments[] = {"funcd-ruby", "--disable-gems", "-e", "", NULL};
    ruby_options(4, arguments);
    ruby_script("funcd-ruby");

    VALUE funcd = rb_define_module("Funcd");
    VALUE native = rb_define_module_under(funcd, "Native");
    rb_define_module_function(native, "take", native_take, 0);
    rb_define_module_function(native, "reply", native_reply, 5);
    rb_define_module_function(native, "head", native_head, 4);
    rb_define_module_function(native, "chunk", native_chunk, 2);
    rb_define_module_function(native, "finish", native_finish, 3);
    rb_define_module_function(native, "next_interrupt", native_next_interrupt, 0);

    struct boot boot = {glue, config_json, call_threads, Qnil};
    int state = 0;
    VALUE booted = rb_protect(require_and_boot, (VALUE)&boot, &state);
    if (state) {
        report_failure("the Ruby glue failed to load");
        never_return();
    }
    if (RB_TYPE_P(booted, T_STRING)) {
        host.started(host.context, StringValueCStr(booted));
        never_return();
    }
    boot.host = booted;
    rb_gc_register_mark_object(booted);
    host.started(host.context, NULL);
    rb_protect(run_call_threads, (VALUE)&boot, &state);
    if (state) {
        rb_set_errinfo(Qnil);
        fprintf(stderr, "funcd: error: the Ruby call threads ended\n");
    }
    never_return();
}
