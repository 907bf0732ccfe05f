// funcd's embedded Ruby: the only code that calls Ruby's C API. Ruby runs on the thread that
// calls funcd_ruby_run (it initialises the VM there and never returns); handlers run on Ruby
// Threads that wait for calls in `Funcd::Native.take` without holding the GVL, so that slow
// handlers overlap; timeouts are delivered by a Ruby Thread that waits in
// `Funcd::Native.next_interrupt` and calls Thread#raise. Every Ruby call from C that can raise
// runs under rb_protect, so Ruby's longjmps never cross a Swift frame. See
// ../../shared/EMBEDDING-NOTES.md ("Ruby").

#include "funcd_ruby.h"

#include <ruby.h>
#include <ruby/thread.h>
#include <ruby/version.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// MARK: - Calls and interrupts, handed over from any thread

struct call {
    struct call *next;
    uint64_t id;
    size_t method_length, target_length, headers_length, body_length;
    char bytes[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_available = PTHREAD_COND_INITIALIZER;
static pthread_cond_t interrupt_available = PTHREAD_COND_INITIALIZER;
static struct call *queue_head, *queue_tail;
static uint64_t *interrupts;
static size_t interrupt_count, interrupt_capacity;
static funcd_ruby_callbacks host;

void funcd_ruby_submit(uint64_t id, const char *method, size_t method_length, const char *target,
                       size_t target_length, const char *headers, size_t headers_length, const uint8_t *body,
                       size_t body_length) {
    struct call *call = malloc(sizeof(struct call) + method_length + target_length + headers_length + body_length);
    if (!call) abort();
    call->next = NULL;
    call->id = id;
    call->method_length = method_length;
    call->target_length = target_length;
    call->headers_length = headers_length;
    call->body_length = body_length;
    char *cursor = call->bytes;
    memcpy(cursor, method, method_length);
    cursor += method_length;
    memcpy(cursor, target, target_length);
    cursor += target_length;
    if (headers_length) memcpy(cursor, headers, headers_length);
    cursor += headers_length;
    if (body_length) memcpy(cursor, body, body_length);

    pthread_mutex_lock(&lock);
    if (queue_tail) queue_tail->next = call;
    else queue_head = call;
    queue_tail = call;
    pthread_cond_signal(&work_available);
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

const char *funcd_ruby_version(void) { return ruby_version; }

static struct call *pop_call_locked(void) {
    struct call *call = queue_head;
    if (call) {
        queue_head = call->next;
        if (!queue_head) queue_tail = NULL;
    }
    return call;
}

// MARK: - Waiting without the GVL

// What a Ruby thread waits for; `woken` is set by Ruby's unblocking function (Thread#raise,
// Thread#kill, process exit), which must make the wait return.
struct wait {
    struct call *call;
    uint64_t interrupt;
    int found;
    int woken;
};

static void *wait_for_call(void *argument) {
    struct wait *wait = argument;
    pthread_mutex_lock(&lock);
    while (!queue_head && !wait->woken) pthread_cond_wait(&work_available, &lock);
    wait->call = pop_call_locked();
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void unblock_call(void *argument) {
    struct wait *wait = argument;
    pthread_mutex_lock(&lock);
    wait->woken = 1;
    pthread_cond_broadcast(&work_available);
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

// MARK: - Funcd::Native, the glue's door to funcd

// Funcd::Native.take -> [id, method, target, headers, body], nil (woken without a call) or false
// (the call was skipped: its deadline passed while it waited).
static VALUE native_take(VALUE self) {
    (void)self;
    struct wait wait = {0};
    pthread_mutex_lock(&lock);
    wait.call = pop_call_locked();
    pthread_mutex_unlock(&lock);
    if (!wait.call) {
        host.idle(host.context);
        rb_thread_call_without_gvl(wait_for_call, &wait, unblock_call, &wait);
    }
    struct call *call = wait.call;
    if (!call) return Qnil;
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
    VALUE headers = rb_str_new(cursor, (long)call->headers_length);
    cursor += call->headers_length;
    VALUE body = rb_str_new(cursor, (long)call->body_length);
    free(call);
    return rb_ary_new_from_args(5, id, method, target, headers, body);
}

// Funcd::Native.reply(id, status, headers, body, error)
static VALUE native_reply(VALUE self, VALUE id, VALUE status, VALUE headers, VALUE body, VALUE error) {
    (void)self;
    funcd_ruby_reply reply = {0};
    reply.id = NUM2ULL(id);
    reply.status = NUM2INT(status);
    StringValue(headers);
    StringValue(body);
    reply.headers = RSTRING_PTR(headers);
    reply.headers_length = (size_t)RSTRING_LEN(headers);
    reply.body = (const uint8_t *)RSTRING_PTR(body);
    reply.body_length = (size_t)RSTRING_LEN(body);
    if (!NIL_P(error)) {
        StringValue(error);
        reply.error = RSTRING_PTR(error);
        reply.error_length = (size_t)RSTRING_LEN(error);
    }
    host.reply(host.context, &reply);
    RB_GC_GUARD(headers);
    RB_GC_GUARD(body);
    RB_GC_GUARD(error);
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
    int workers;
    VALUE host;
};

static VALUE require_and_boot(VALUE argument) {
    struct boot *boot = (struct boot *)argument;
    rb_require(boot->glue);
    VALUE funcd = rb_const_get(rb_cObject, rb_intern("Funcd"));
    VALUE host_class = rb_const_get(funcd, rb_intern("Host"));
    return rb_funcall(host_class, rb_intern("boot"), 1, rb_utf8_str_new_cstr(boot->config));
}

static VALUE run_workers(VALUE argument) {
    struct boot *boot = (struct boot *)argument;
    return rb_funcall(boot->host, rb_intern("run"), 1, INT2NUM(boot->workers));
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

void funcd_ruby_run(const char *glue, const char *config_json, int workers, funcd_ruby_callbacks callbacks) {
    host = callbacks;
    RUBY_INIT_STACK;
    ruby_init();
    // As the ruby command does: load path, encodings, RubyGems. The script itself never runs.
    char *arguments[] = {"funcd-ruby", "-e", "", NULL};
    ruby_options(3, arguments);
    ruby_script("funcd-ruby");

    VALUE funcd = rb_define_module("Funcd");
    VALUE native = rb_define_module_under(funcd, "Native");
    rb_define_module_function(native, "take", native_take, 0);
    rb_define_module_function(native, "reply", native_reply, 5);
    rb_define_module_function(native, "next_interrupt", native_next_interrupt, 0);

    struct boot boot = {glue, config_json, workers, Qnil};
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
    rb_protect(run_workers, (VALUE)&boot, &state);
    if (state) {
        rb_set_errinfo(Qnil);
        fprintf(stderr, "funcd: error: the Ruby worker threads ended\n");
    }
    never_return();
}
