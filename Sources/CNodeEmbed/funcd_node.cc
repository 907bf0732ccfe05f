// funcd's embedded Node.js: the only C++ in funcd. It follows the phases of Node's own
// test/embedding/embedtest.cc (process init, platform, CommonEnvironmentSetup, LoadEnvironment,
// SpinEventLoop), all on the thread that calls funcd_node_start, and adds the three things a
// function server needs: a thread-safe wake-up (uv_async), a native `reply` function the glue
// answers through, and loop-turn bookkeeping that lets another thread tell a stuck loop from an
// idle one. See docs/embedding-notes.md ("Node") for the traps handled here.

#include "funcd_node.h"

#include <node.h>
#include <node_buffer.h>
#include <pthread.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace {

uint64_t monotonic_nanoseconds() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return uint64_t(now.tv_sec) * 1000000000u + uint64_t(now.tv_nsec);
}

// Header fields travel as a length (uint32, little-endian) before each name and each value.
void append_length(std::string &buffer, size_t length) {
    auto value = uint32_t(length);
    char bytes[4] = {char(value & 0xff), char((value >> 8) & 0xff), char((value >> 16) & 0xff),
                     char((value >> 24) & 0xff)};
    buffer.append(bytes, 4);
}

// A JavaScript value's text as one length-prefixed field of `buffer`.
void append_field(v8::Isolate *isolate, std::string &buffer, v8::Local<v8::Value> value) {
    v8::String::Utf8Value text(isolate, value);
    size_t length = *text ? size_t(text.length()) : 0;
    append_length(buffer, length);
    if (length) buffer.append(*text, length);
}

uint32_t read_length(const char *bytes) {
    auto *unsigned_bytes = reinterpret_cast<const unsigned char *>(bytes);
    return uint32_t(unsigned_bytes[0]) | uint32_t(unsigned_bytes[1]) << 8 | uint32_t(unsigned_bytes[2]) << 16 |
           uint32_t(unsigned_bytes[3]) << 24;
}

char *copy_string(const std::string &text) {
    char *copy = static_cast<char *>(malloc(text.size() + 1));
    if (copy) memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
}

// V8 and Node allow one platform per process.
std::unique_ptr<node::MultiIsolatePlatform> platform;

// Whether every byte is below 0x80; eight at a time.
bool all_ascii(const uint8_t *bytes, size_t length) {
    uint64_t seen = 0;
    size_t at = 0;
    for (; length - at >= 8; at += 8) {
        uint64_t word;
        memcpy(&word, bytes + at, 8);
        seen |= word;
    }
    for (; at < length; at++) seen |= bytes[at];
    return (seen & 0x8080808080808080ULL) == 0;
}

void on_heartbeat(uv_timer_t *handle);

}  // namespace

struct funcd_node {
    funcd_node_callbacks callbacks{};
    std::unique_ptr<node::CommonEnvironmentSetup> setup;
    std::unique_ptr<v8::Locker> locker;
    v8::Isolate *isolate = nullptr;
    node::Environment *env = nullptr;
    v8::Global<v8::Object> glue;
    v8::Global<v8::Function> call;
    v8::Global<v8::Function> cancel;
    v8::Global<v8::Function> drain;

    uv_async_t wake_handle{};
    uv_prepare_t prepare_handle{};
    uv_check_t check_handle{};
    uv_timer_t heartbeat_handle{};

    // Written by the heartbeat timer: while it keeps beating, the loop is not stuck in a callback.
    std::atomic<uint64_t> last_beat{0};
    // The timer beats only while someone may ask whether the loop is held: until `beat_window`
    // after the last call started (every deadline falls inside it), and again after a
    // termination (`beat_wanted`, any thread), whose watcher waits for a beat. An idle worker
    // then sleeps instead of waking a hundred times a second. The window and its end are in the
    // loop's milliseconds (uv_now: no clock read per call) and, like `beating`, loop-thread only.
    uint64_t beat_window = 0;
    uint64_t beat_until = 0;
    bool beating = false;
    std::atomic<bool> beat_wanted{false};
    // When the loop last went round (its check phase, after I/O), idle or not: a call submitted
    // after it has not been looked at yet.
    std::atomic<uint64_t> last_turn{0};
    // MakeCallback swallows a termination (it returns Undefined, and V8 has cancelled it), so
    // whether JavaScript was terminated, and which call it was aimed at, is tracked here. Each
    // entry into the glue gets an epoch; `in_call` holds the current one (0: none).
    std::atomic<bool> terminate_requested{false};
    std::atomic<uint64_t> terminate_target{0};
    std::atomic<uint64_t> in_call{0};
    uint64_t epoch = 0;
    bool exit_called = false;
    uint64_t exit_target = 0;
    int exit_code = 0;
    std::string scratch;
    std::string error_scratch;

    v8::Local<v8::Context> context() const { return setup->context(); }

    // Loop thread: the heartbeat runs (again) for at least beat_window from now.
    void keep_beating() {
        beat_until = uv_now(heartbeat_handle.loop) + beat_window;
        if (beating) return;
        beating = true;
        uv_timer_start(&heartbeat_handle, on_heartbeat, funcd_node_heartbeat_milliseconds,
                       funcd_node_heartbeat_milliseconds);
    }

    // Turns a JavaScript string or byte view into bytes; strings are written into `buffer`.
    void bytes(v8::Local<v8::Value> value, std::string &buffer, const uint8_t **data, size_t *length) {
        *data = nullptr;
        *length = 0;
        if (value->IsArrayBufferView()) {
            *data = reinterpret_cast<const uint8_t *>(node::Buffer::Data(value));
            *length = node::Buffer::Length(value);
        } else if (value->IsString()) {
            auto text = value.As<v8::String>();
            // A one-byte string (V8's Latin-1 form; JSON.stringify of ASCII data makes one) whose
            // characters are all ASCII is its own UTF-8: copied out as it is, it skips WriteUtf8's
            // encoding character by character (0.6-1.2 µs of a 1 KiB answer in the profile).
            // Latin-1 characters past ASCII need two bytes each: those go the long way.
            size_t units = size_t(text->Length());
            if (text->IsOneByte()) {
                if (buffer.size() < units) buffer.resize(units);
                auto out = reinterpret_cast<uint8_t *>(buffer.data());
                text->WriteOneByte(isolate, out, 0, int(units), v8::String::NO_NULL_TERMINATION);
                if (all_ascii(out, units)) {
                    *data = out;
                    *length = units;
                    return;
                }
            }
            // UTF-8 takes at most three bytes per UTF-16 unit (a surrogate pair's four bytes are
            // two units), so one pass writes a usual answer into room for that, where Utf8Length
            // would be a second pass over it. The scratch only grows, so that room is zeroed
            // once; past 1 MiB the exact size is counted first, so that one large answer does not
            // leave three times its size behind.
            size_t most = units * 3;
            if (most > (size_t(1) << 20)) most = size_t(text->Utf8Length(isolate));
            if (buffer.size() < most) buffer.resize(most);
            int written = text->WriteUtf8(
                isolate, buffer.data(), int(most), nullptr,
                v8::String::NO_NULL_TERMINATION | v8::String::REPLACE_INVALID_UTF8);
            *data = reinterpret_cast<const uint8_t *>(buffer.data());
            *length = size_t(written);
        }
    }

    // Calls `function` of the glue as entry `mine`; then withdraws a termination that stopped
    // it and says what happened.
    int enter(v8::Local<v8::Function> function, int argc, v8::Local<v8::Value> *argv) {
        withdraw_stale_termination();
        uint64_t mine = ++epoch;
        in_call.store(mine, std::memory_order_release);
        node::MakeCallback(isolate, glue.Get(isolate), function, argc, argv, {0, 0});
        in_call.store(0, std::memory_order_release);
        if (!terminate_requested.exchange(false)) return FUNCD_NODE_CALLED;
        isolate->CancelTerminateExecution();
        if (exit_called && exit_target == mine) {
            exit_called = false;
            return FUNCD_NODE_EXITED;
        }
        return terminate_target.load() == mine ? FUNCD_NODE_TERMINATED : FUNCD_NODE_CALLED;
    }

    // Called where no JavaScript runs (the loop beats, or a call is about to start): a
    // termination still standing was aimed at code that has ended (a spin in a microtask leaves
    // it pending), and must not hit what runs next.
    void withdraw_stale_termination() {
        if (!terminate_requested.exchange(false)) return;
        isolate->CancelTerminateExecution();
        if (exit_called) {
            exit_called = false;
            fprintf(stderr, "funcd: process.exit(%d) outside a call was ignored; funcd goes on serving\n", exit_code);
        }
    }

    std::string exception_text(v8::TryCatch &trying) {
        if (!trying.HasCaught()) return "";
        v8::Local<v8::Value> shown = trying.Exception();
        v8::Local<v8::Value> stack;
        if (trying.StackTrace(context()).ToLocal(&stack) && stack->IsString()) shown = stack;
        v8::String::Utf8Value text(isolate, shown);
        return *text ? std::string(*text, size_t(text.length())) : "unknown JavaScript exception";
    }
};

namespace {

// native.reply(id, kind, status, headers, body, error) -> Boolean (false: pause a stream)
void reply(const v8::FunctionCallbackInfo<v8::Value> &info) {
    auto *node = static_cast<funcd_node *>(info.Data().As<v8::External>()->Value());
    v8::Isolate *isolate = node->isolate;
    v8::Local<v8::Context> context = node->context();
    funcd_node_reply answer{};
    answer.id = uint64_t(info[0]->IntegerValue(context).FromMaybe(0));
    answer.kind = info[1]->Int32Value(context).FromMaybe(FUNCD_NODE_COMPLETE);
    answer.status = info[2]->Int32Value(context).FromMaybe(500);

    // [name, value, ...] from the glue, each string as its UTF-8 bytes behind its length (see
    // funcd_node_reply): any byte a value holds stays inside it.
    std::string headers;
    if (info[3]->IsArray()) {
        auto list = info[3].As<v8::Array>();
        uint32_t count = list->Length();
        for (uint32_t index = 0; index + 1 < count; index += 2) {
            v8::Local<v8::Value> name, value;
            if (!list->Get(context, index).ToLocal(&name) || !list->Get(context, index + 1).ToLocal(&value)) break;
            append_field(isolate, headers, name);
            append_field(isolate, headers, value);
        }
    }
    answer.headers = headers.data();
    answer.headers_length = headers.size();
    node->bytes(info[4], node->scratch, &answer.body, &answer.body_length);
    const uint8_t *error = nullptr;
    node->bytes(info[5], node->error_scratch, &error, &answer.error_length);
    answer.error = reinterpret_cast<const char *>(error);

    int more = node->callbacks.reply(node->callbacks.context, &answer);
    info.GetReturnValue().Set(more != 0);
}

void on_wake(uv_async_t *handle) {
    auto *node = static_cast<funcd_node *>(handle->data);
    if (node->beat_wanted.exchange(false)) node->keep_beating();
    node->callbacks.wake(node->callbacks.context);
}

// Before the loop waits for I/O (the wait may be long) and after it: hand answers back.
void on_prepare(uv_prepare_t *handle) {
    auto *node = static_cast<funcd_node *>(handle->data);
    node->callbacks.turn(node->callbacks.context);
}

void on_check(uv_check_t *handle) {
    auto *node = static_cast<funcd_node *>(handle->data);
    node->last_turn.store(monotonic_nanoseconds(), std::memory_order_release);
    node->callbacks.turn(node->callbacks.context);
}

// A loop stuck in any callback (a call, a timer, a promise continuation, I/O) stops beating.
void on_heartbeat(uv_timer_t *handle) {
    auto *node = static_cast<funcd_node *>(handle->data);
    node->last_beat.store(monotonic_nanoseconds(), std::memory_order_release);
    // A termination that hit JavaScript outside any call (a timer, a promise continuation) is
    // over once the loop beats again: withdraw it so that it cannot hit the next call.
    if (node->in_call.load() == 0) node->withdraw_stale_termination();
    if (uv_now(handle->loop) >= node->beat_until && !node->beat_wanted.load()) {
        node->beating = false;
        uv_timer_stop(handle);
    }
}

v8::Local<v8::String> one_byte(v8::Isolate *isolate, const char *text, size_t length,
                               v8::NewStringType type = v8::NewStringType::kNormal) {
    return v8::String::NewFromOneByte(isolate, reinterpret_cast<const uint8_t *>(text), type, int(length))
        .ToLocalChecked();
}

// The body as the glue's call() takes it: an ASCII body (JSON, forms, most text) as a one-byte
// string, whose characters are its bytes; the glue decodes event.data from it directly and makes
// request.body's Buffer only if a handler reads it. Any other body as a Buffer. A Buffer made here
// costs a backing store, an ArrayBuffer and a prototype change, and the glue then decoded it into
// a string again: a 1 KiB text body cost the JavaScript thread 1.9 µs that way, 1.1 µs this way.
v8::Local<v8::Value> body_value(v8::Isolate *isolate, const uint8_t *body, size_t length) {
    if (length == 0) return v8::Undefined(isolate);
    if (length <= size_t(v8::String::kMaxLength) && all_ascii(body, length)) {
        return one_byte(isolate, reinterpret_cast<const char *>(body), length);
    }
    return node::Buffer::Copy(isolate, reinterpret_cast<const char *>(body), length).ToLocalChecked();
}

bool function_property(funcd_node *node, v8::Local<v8::Object> object, const char *name,
                       v8::Global<v8::Function> &out) {
    v8::Local<v8::Value> value;
    if (!object->Get(node->context(), one_byte(node->isolate, name, strlen(name))).ToLocal(&value) ||
        !value->IsFunction())
        return false;
    out.Reset(node->isolate, value.As<v8::Function>());
    return true;
}

// An ES-module handler loads asynchronously (its imports are read, its top-level await runs):
// the glue answers `{ready: promise, module: path}`, and the event loop runs here, before
// anything is served, until the promise settles. False, with `error` set, when it cannot (the
// module called process.exit, the promise was rejected, or nothing is left that could settle it).
bool settle(funcd_node *node, v8::Local<v8::Promise> promise, const std::string &module, std::string &error) {
    v8::Isolate *isolate = node->isolate;
    uv_loop_t *loop = node->setup->event_loop();
    while (promise->State() == v8::Promise::kPending && !node->exit_called) {
        bool more = uv_run(loop, UV_RUN_ONCE) != 0;
        platform->DrainTasks(isolate);
        if (node->exit_called || promise->State() != v8::Promise::kPending) break;
        if (!more && !uv_loop_alive(loop)) {
            error = module + ": its top-level await never settled (nothing is left that could settle it)";
            return false;
        }
    }
    if (node->exit_called) {
        error = module + ": the module called process.exit(" + std::to_string(node->exit_code) + ") while loading";
        return false;
    }
    if (promise->State() == v8::Promise::kRejected) {
        v8::Local<v8::Value> reason = promise->Result();
        v8::Local<v8::Value> shown = reason;
        if (reason->IsObject()) {
            v8::Local<v8::Value> stack;
            if (reason.As<v8::Object>()->Get(node->context(), one_byte(isolate, "stack", 5)).ToLocal(&stack) &&
                stack->IsString())
                shown = stack;
        }
        v8::String::Utf8Value text(isolate, shown);
        error = module + ": " + (*text ? std::string(*text, size_t(text.length())) : "the module failed to load");
        return false;
    }
    return true;
}

funcd_node *start(const char *argv0, const char *bootstrap, funcd_node_callbacks callbacks, std::string &error) {
    // Named for `top -H`, /proc and the test that counts its wake-ups while idle.
    pthread_setname_np(pthread_self(), "funcd-js");
    // A call terminated inside a timer or promise callback leaves that callback's async context
    // on Node's stack; with the default checks Node then aborts the process. funcd recovers from
    // such a termination, so the checks stay off (they come back if a handler enables async_hooks).
    std::vector<std::string> arguments{argv0, "--no-force-async-hooks-checks"};
    auto initialized = node::InitializeOncePerProcess(
        arguments, {node::ProcessInitializationFlags::kNoInitializeV8,
                    node::ProcessInitializationFlags::kNoInitializeNodeV8Platform,
                    node::ProcessInitializationFlags::kNoDefaultSignalHandling,
                    node::ProcessInitializationFlags::kNoStdioInitialization,
                    node::ProcessInitializationFlags::kNoPrintHelpOrVersionOutput});
    if (!initialized->errors().empty() || initialized->early_return()) {
        for (const auto &line : initialized->errors()) error += line + "; ";
        if (error.empty()) error = "Node.js refused to initialise";
        return nullptr;
    }
    platform = node::MultiIsolatePlatform::Create(2);
    v8::V8::InitializePlatform(platform.get());
    v8::V8::Initialize();

    auto *node = new funcd_node();
    node->callbacks = callbacks;
    std::vector<std::string> errors;
    node->setup = node::CommonEnvironmentSetup::Create(
        platform.get(), &errors, initialized->args(), initialized->exec_args());
    if (!node->setup) {
        for (const auto &line : errors) error += line + "; ";
        return nullptr;
    }
    node->isolate = node->setup->isolate();
    node->env = node->setup->env();
    v8::Isolate *isolate = node->isolate;

    // This thread owns the isolate for the life of the process.
    node->locker = std::make_unique<v8::Locker>(isolate);
    isolate->Enter();
    v8::HandleScope handles(isolate);
    v8::Local<v8::Context> context = node->context();
    context->Enter();

    auto native = v8::Object::New(isolate);
    auto reply_function = v8::FunctionTemplate::New(isolate, reply, v8::External::New(isolate, node))
                              ->GetFunction(context)
                              .ToLocalChecked();
    native->Set(context, one_byte(isolate, "reply", 5), reply_function).Check();
    native->Set(context, one_byte(isolate, "version", 7), one_byte(isolate, NODE_VERSION_STRING, strlen(NODE_VERSION_STRING)))
        .Check();
    context->Global()->Set(context, one_byte(isolate, "__funcdNative", 13), native).Check();

    // process.exit() in a handler ends that handler, not the server (see NodeHost).
    node::SetProcessExitHandler(node->env, [node](node::Environment *, int code) {
        node->exit_called = true;
        node->exit_code = code;
        node->exit_target = node->in_call.load();
        node->terminate_target.store(node->exit_target);
        node->terminate_requested.store(true);
        node->isolate->TerminateExecution();
    });

    v8::Local<v8::Value> value;
    {
        v8::TryCatch trying(isolate);
        v8::MaybeLocal<v8::Value> loaded = node::LoadEnvironment(node->env, bootstrap);
        if (node->exit_called) {
            error = "the module called process.exit(" + std::to_string(node->exit_code) + ") while loading";
            return nullptr;
        }
        if (!loaded.ToLocal(&value) || !value->IsObject()) {
            error = node->exception_text(trying);
            if (error.empty()) error = "the JavaScript glue did not start";
            return nullptr;
        }
    }
    auto glue = value.As<v8::Object>();
    v8::Local<v8::Value> ready;
    // Outside the TryCatch: while the loop runs, an exception in a callback is Node's to report.
    if (glue->Get(context, one_byte(isolate, "ready", 5)).ToLocal(&ready) && ready->IsPromise()) {
        v8::Local<v8::Value> module;
        std::string module_path = "the handler module";
        if (glue->Get(context, one_byte(isolate, "module", 6)).ToLocal(&module) && module->IsString()) {
            v8::String::Utf8Value text(isolate, module);
            if (*text) module_path.assign(*text, size_t(text.length()));
        }
        if (!settle(node, ready.As<v8::Promise>(), module_path, error)) return nullptr;
        value = ready.As<v8::Promise>()->Result();
        if (!value->IsObject()) {
            error = "the JavaScript glue did not start";
            return nullptr;
        }
        glue = value.As<v8::Object>();
    }
    v8::Local<v8::Value> failure;
    if (glue->Get(context, one_byte(isolate, "error", 5)).ToLocal(&failure) && failure->IsString()) {
        v8::String::Utf8Value text(isolate, failure);
        error = *text ? std::string(*text, size_t(text.length())) : "the handler did not load";
        return nullptr;
    }
    if (!function_property(node, glue, "call", node->call) || !function_property(node, glue, "cancel", node->cancel) ||
        !function_property(node, glue, "drain", node->drain)) {
        error = "the JavaScript glue lacks call/cancel/drain";
        return nullptr;
    }
    node->glue.Reset(isolate, glue);

    uv_loop_t *loop = node->setup->event_loop();
    node->wake_handle.data = node;
    node->prepare_handle.data = node;
    node->check_handle.data = node;
    node->heartbeat_handle.data = node;
    uv_async_init(loop, &node->wake_handle, on_wake);
    uv_prepare_init(loop, &node->prepare_handle);
    uv_prepare_start(&node->prepare_handle, on_prepare);
    uv_check_init(loop, &node->check_handle);
    uv_check_start(&node->check_handle, on_check);
    uv_unref(reinterpret_cast<uv_handle_t *>(&node->prepare_handle));
    uv_unref(reinterpret_cast<uv_handle_t *>(&node->check_handle));
    uv_timer_init(loop, &node->heartbeat_handle);
    uv_unref(reinterpret_cast<uv_handle_t *>(&node->heartbeat_handle));
    node->beat_window = funcd_node_default_beat_window_milliseconds;
    node->keep_beating();
    node->last_beat.store(monotonic_nanoseconds());
    return node;
}

}  // namespace

extern "C" {

funcd_node *funcd_node_start(const char *argv0, const char *bootstrap, funcd_node_callbacks callbacks, char **error) {
    std::string message;
    funcd_node *node = nullptr;
    try {
        node = start(argv0, bootstrap, callbacks, message);
    } catch (const std::exception &exception) {
        message = exception.what();
        node = nullptr;
    } catch (...) {
        message = "Node.js failed to start";
        node = nullptr;
    }
    if (!node && error) *error = copy_string(message);
    return node;
}

int funcd_node_run(funcd_node *node) {
    try {
        return node::SpinEventLoop(node->env).FromMaybe(1);
    } catch (...) {
        return 1;
    }
}

const char *funcd_node_version(void) { return NODE_VERSION_STRING; }

int funcd_node_call(funcd_node *node, uint64_t id, const char *method, size_t method_length, const char *target,
                    size_t target_length, const char *headers, size_t headers_length, const uint8_t *body,
                    size_t body_length, const char *remote_address, const char *facts, size_t facts_length,
                    funcd_node_cloudevent cloudevent) {
    node->keep_beating();
    v8::Isolate *isolate = node->isolate;
    v8::HandleScope handles(isolate);

    // The trace, then a binary event's attributes: UTF-8, not one byte per character.
    v8::Local<v8::Value> traceparent = v8::Undefined(isolate);
    v8::Local<v8::Value> tracestate = v8::Undefined(isolate);
    std::vector<v8::Local<v8::Value>> attributes;
    int field = 0;
    for (size_t at = 0; facts_length - at >= 8;) {
        size_t name_length = read_length(facts + at);
        if (facts_length - at - 4 < name_length + 4) break;
        const char *name = facts + at + 4;
        size_t value_length = read_length(name + name_length);
        const char *value = name + name_length + 4;
        if (size_t(facts + facts_length - value) < value_length) break;
        at = size_t(value + value_length - facts);
        auto text = v8::String::NewFromUtf8(isolate, value, v8::NewStringType::kNormal, int(value_length))
                        .ToLocalChecked();
        // By place: the trace's two fields (an empty tracestate is none), then attributes.
        if (field == 0) {
            traceparent = text;
        } else if (field == 1) {
            if (value_length) tracestate = text;
        } else {
            attributes.push_back(
                v8::String::NewFromUtf8(isolate, name, v8::NewStringType::kInternalized, int(name_length))
                    .ToLocalChecked());
            attributes.push_back(text);
        }
        field++;
    }
    v8::Local<v8::Value> event = v8::Undefined(isolate);
    if (cloudevent == FUNCD_NODE_BINARY_EVENT) {
        event = v8::Array::New(isolate, attributes.data(), attributes.size());
    } else if (cloudevent == FUNCD_NODE_STRUCTURED_EVENT) {
        event = v8::True(isolate);
    }

    // Length-prefixed names and values (see funcd_node_reply) become [name, value, ...]: each
    // byte one character (latin1), as node's http gives header values; names are interned.
    std::vector<v8::Local<v8::Value>> fields;
    fields.reserve(24);
    size_t offset = 0;
    bool name = true;
    while (headers_length - offset >= 4) {
        size_t length = read_length(headers + offset);
        offset += 4;
        if (headers_length - offset < length) break;
        fields.push_back(one_byte(
            isolate, headers + offset, length, name ? v8::NewStringType::kInternalized : v8::NewStringType::kNormal));
        offset += length;
        name = !name;
    }
    // A name whose value was cut off (no correct writer does that) is not passed on.
    if (!name) fields.pop_back();
    v8::Local<v8::Value> arguments[9] = {
        v8::Number::New(isolate, double(id)),
        one_byte(isolate, method, method_length, v8::NewStringType::kInternalized),
        one_byte(isolate, target, target_length),
        v8::Array::New(isolate, fields.data(), fields.size()),
        body_value(isolate, body, body_length),
        // Internalized: calls come from few addresses, so this finds the string already made.
        remote_address ? one_byte(isolate, remote_address, strlen(remote_address), v8::NewStringType::kInternalized)
                             .As<v8::Value>()
                       : v8::Undefined(isolate).As<v8::Value>(),
        traceparent,
        tracestate,
        event,
    };
    return node->enter(node->call.Get(isolate), 9, arguments);
}

void funcd_node_cancel(funcd_node *node, uint64_t id) {
    v8::Isolate *isolate = node->isolate;
    v8::HandleScope handles(isolate);
    v8::Local<v8::Value> arguments[1] = {v8::Number::New(isolate, double(id))};
    node->enter(node->cancel.Get(isolate), 1, arguments);
}

void funcd_node_drain(funcd_node *node, uint64_t id) {
    v8::Isolate *isolate = node->isolate;
    v8::HandleScope handles(isolate);
    v8::Local<v8::Value> arguments[1] = {v8::Number::New(isolate, double(id))};
    node->enter(node->drain.Get(isolate), 1, arguments);
}

int funcd_node_exit_code(funcd_node *node) { return node->exit_code; }

void funcd_node_wake(funcd_node *node) { uv_async_send(&node->wake_handle); }

void funcd_node_terminate(funcd_node *node) {
    node->terminate_target.store(node->in_call.load());
    node->terminate_requested.store(true);
    node->isolate->TerminateExecution();
    // Whoever terminates watches for the next beat: the loop starts beating when it is back.
    node->beat_wanted.store(true);
    uv_async_send(&node->wake_handle);
}

void funcd_node_keep_beating_for(funcd_node *node, uint64_t milliseconds) {
    node->beat_window = milliseconds;
    node->keep_beating();
}

void funcd_node_cancel_terminate(funcd_node *node) { node->isolate->CancelTerminateExecution(); }

uint64_t funcd_node_last_beat(funcd_node *node) { return node->last_beat.load(std::memory_order_acquire); }

uint64_t funcd_node_last_turn(funcd_node *node) { return node->last_turn.load(std::memory_order_acquire); }

void funcd_node_stop(funcd_node *node) { node::Stop(node->env); }

}  // extern "C"
