'use strict';

// The glue funcd-node runs inside its embedded Node: loads the handler, turns each call the
// server hands over into the kubeless event, and answers through `native.reply`. One call is
// `call(id, method, target, headers, body, remoteAddress, traceparent, tracestate, cloudevent)`; its answer is one COMPLETE reply, or HEAD, CHUNK...,
// END when the handler streams through event.extensions.response. `cancel(id)` says the deadline
// passed (the caller has had its 408): whatever the handler does later is dropped.

const Module = require('module');
const { Request, mediaType, bodyText } = require('./request');
const { encode, isFetchResponse, fromFetchResponse } = require('./encode');
const cloudEvents = require('./cloudevents');

/**
 * Node's built-in modules, for the glue's own use. funcd-node hands boot() the `require` Node
 * gives its bootstrap, which loads a built-in as Node's internals do; a first public
 * `require('fs')` also builds the module's ES-module facade by reading every export, and
 * `fs.promises` among them loads streams and readline (8 ms of a cold start here). Tests load
 * the glue with Node's public require, which gives the same objects.
 */
let builtin = require;

const COMPLETE = 0;
const HEAD = 1;
const CHUNK = 2;
const END = 3;

const TEXT = ['Content-Type', 'text/plain; charset=utf-8'];
const HTML = ['Content-Type', 'text/html; charset=utf-8'];

/** A start-up failure whose message is the one line funcd prints. */
class LoadError extends Error {}

/** Loads `handlerName` from the CommonJS module file at `modulePath`, as kubeless did. */
function load(modulePath, handlerName) {
  modulePath = existingModule(modulePath);
  let exported;
  try {
    exported = Module.createRequire(modulePath)(modulePath);
  } catch (error) {
    throw new LoadError(describeLoadFailure(modulePath, error));
  }
  return pickHandler(modulePath, exported, handlerName, 'module.exports');
}

/**
 * Loads `handlerName` from the ES module at `modulePath` (`.mjs`, or `.js` under a package.json
 * saying "type": "module"): a promise, settled once the module and its imports have run,
 * top-level `await` included. `export function handler`, or a default export that is the
 * handler or holds it (as `module.exports` may in CommonJS).
 */
async function loadModule(modulePath, handlerName) {
  modulePath = existingModule(modulePath);
  let namespace;
  try {
    namespace = await import(builtin('url').pathToFileURL(modulePath).href);
  } catch (error) {
    throw new LoadError(describeLoadFailure(modulePath, error));
  }
  if (namespace[handlerName] === undefined && namespace.default !== undefined && namespace.default !== null) {
    return pickHandler(modulePath, namespace.default, handlerName, 'the default export');
  }
  return pickHandler(modulePath, namespace, handlerName, 'the exports');
}

function existingModule(modulePath) {
  modulePath = builtin('path').resolve(modulePath);
  if (!builtin('fs').existsSync(modulePath)) throw new LoadError(`${modulePath}: no such file`);
  return modulePath;
}

/** The handler in what a module exports: `exported[handlerName]`, or `exported` if it is a function without one. */
function pickHandler(modulePath, exported, handlerName, what) {
  const handler = typeof exported === 'function' && !(handlerName in exported) ? exported : exported && exported[handlerName];
  if (handler === undefined) {
    const names = exported && typeof exported === 'object' ? Object.keys(exported) : [];
    throw new LoadError(
      `${modulePath}: no function '${handlerName}' in ${what}` + (names.length ? ` (it has: ${names.join(', ')})` : ''));
  }
  if (typeof handler !== 'function') {
    throw new LoadError(`${modulePath}: '${handlerName}' is not a function (it is ${handler === null ? 'null' : typeof handler})`);
  }
  return handler;
}

/**
 * Whether Node runs `modulePath` as an ES module: `.mjs`, or `.js` when the nearest package.json
 * above the file's real location says "type": "module" (Node's own rule; it stops at a
 * node_modules folder).
 */
function isESModule(modulePath) {
  if (modulePath.endsWith('.mjs')) return true;
  if (!modulePath.endsWith('.js')) return false;
  const fs = builtin('fs');
  const path = builtin('path');
  let directory;
  try {
    directory = path.dirname(fs.realpathSync(modulePath));
  } catch {
    return false; // load() says the file is missing
  }
  for (;;) {
    if (path.basename(directory) === 'node_modules') return false;
    let text;
    try {
      text = fs.readFileSync(path.join(directory, 'package.json'), 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      try {
        return JSON.parse(text).type === 'module';
      } catch {
        return false; // require() then reports the broken package.json
      }
    }
    const parent = path.dirname(directory);
    if (parent === directory) return false;
    directory = parent;
  }
}

/** `file:line: Name: message` for an error thrown while the module loaded. */
function describeLoadFailure(modulePath, error) {
  if (!(error instanceof Error)) return `${modulePath}: the module threw ${String(error)} while loading`;
  const stack = String(error.stack || '');
  if (error.name === 'SyntaxError') {
    // Node puts "file:line" on the first line of a CommonJS syntax error's stack; an ES module's
    // has none (Node keeps it where JavaScript cannot read it).
    const first = stack.split('\n')[0];
    const where = /:\d+$/.test(first) ? first : syntaxErrorPlace(modulePath, error) || modulePath;
    return `${where}: SyntaxError: ${error.message}`;
  }
  // Frames name CommonJS files by path, ES modules by file: URL.
  const frame = stack.split('\n').find((line) => line.includes('(/') || /at \//.test(line) || line.includes('file:///'));
  const place = frame && /\(?(?:file:\/\/)?(\/[^()]+):(\d+):\d+\)?$/.exec(frame.trim());
  const where = place ? `${decodeURIComponentSafely(place[1])}:${place[2]}` : modulePath;
  if (error.code === 'MODULE_NOT_FOUND' || error.code === 'ERR_MODULE_NOT_FOUND') {
    // Node's message goes on with the require stack over several lines: the first says it.
    const folder = builtin('path').dirname(modulePath);
    return `${where}: ${error.name}: ${error.message.split('\n')[0]} (${error.code}) while loading ${modulePath}; ` +
      `looked in node_modules folders from ${folder} up, and NODE_PATH (${process.env.NODE_PATH || 'unset'}): npm install beside the handler adds it`;
  }
  return `${where}: ${error.name}: ${error.message}${error.code ? ` (${error.code})` : ''} while loading ${modulePath}`;
}

/**
 * Where an ES module's syntax error is: the file is compiled again as the body of an async
 * function, its `import`/`export` declarations and `import.meta` blanked out (lines and columns
 * kept), and when that finds the same error, its `file:line` is the module's.
 */
function syntaxErrorPlace(modulePath, error) {
  const blank = (text) => text.replace(/[^\n]/g, ' ');
  let source;
  try {
    source = builtin('fs').readFileSync(modulePath, 'utf8');
  } catch {
    return undefined;
  }
  source = source
    .replace(/^[ \t]*import\s*(?:[\w*{}\s,$]+?\s*from\s*)?(['"])[^'"\n]*\1\s*;?/gm, blank)
    .replace(/^([ \t]*)export\s*\{[^}]*\}\s*(?:from\s*(['"])[^'"\n]*\2)?\s*;?/gm, blank)
    .replace(/^([ \t]*)export\s+\*\s*(?:as\s+[\w$]+\s+)?from\s*(['"])[^'"\n]*\2\s*;?/gm, blank)
    .replace(/^([ \t]*)export\s+default\s+(?=(?:async\s+)?(?:function|class)\b)/gm, (text) => blank(text))
    .replace(/^([ \t]*)export\s+default\s+/gm, (text, indent) => `${indent}void ${' '.repeat(text.length - indent.length - 5)}`)
    .replace(/^([ \t]*)export\s+/gm, blank)
    .replace(/\bimport\.meta\b/g, '__funcdMeta');
  try {
    new (builtin('vm').Script)(`(async function () {"use strict";${source}\n})`, { filename: modulePath });
  } catch (scriptError) {
    const first = String(scriptError && scriptError.stack).split('\n')[0];
    if (scriptError.message === error.message && /:\d+$/.test(first)) return first;
  }
  return undefined;
}

function decodeURIComponentSafely(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** One call in flight; what the handler's response object answers through. */
class Call {
  constructor(host, id, request) {
    this.host = host;
    this.id = id;
    this.request = request;
    this.response = undefined;
    this.done = false;
    this.cancelled = false;
    /** The request was a structured CloudEvent: a returned event is answered as one. */
    this.structured = false;
  }

  responseObject() {
    // Loaded on first use: response.js needs node's stream module, which most handlers never
    // touch (8 ms of a cold start).
    if (this.response === undefined) this.response = new (require('./response').Response)(this);
    return this.response;
  }

  reply(kind, status, headers, body, error) {
    return this.host.native.reply(this.id, kind, status, headers, body, error);
  }

  complete(status, headers, body, error) {
    if (this.done || this.cancelled) return;
    this.done = true;
    this.host.calls.delete(this.id);
    this.reply(COMPLETE, status, headers, body, error);
  }

  /** The handler's function returned (or its promise settled) with `value`. */
  finish(value) {
    if (this.done || this.cancelled) return;
    const response = this.response;
    if (response !== undefined) {
      // The handler holds the response: a stream in progress (or piping) ends it by itself.
      if (response.headersSent || response.writableEnded || response.listenerCount('unpipe') > 0) return;
      if (value === undefined) response.end();
      else if (typeof value === 'string' || Buffer.isBuffer(value)) response.end(value);
      else if (isFetchResponse(value)) this.finishWithFetchResponse(value);
      else if (typeof value === 'object') response.json(value);
      else response.end(JSON.stringify(value));
      return;
    }
    if (isFetchResponse(value)) return this.finishWithFetchResponse(value);
    let answer;
    try {
      answer = (this.structured && cloudEvents.encodeEvent(value)) || encode(value);
    } catch (error) {
      return this.fail(error);
    }
    this.complete(answer.status, answer.headers, answer.body, undefined);
  }

  finishWithFetchResponse(value) {
    this.host.calls.set(this.id, this);
    fromFetchResponse(value).then(
      (answer) => this.complete(answer.status, answer.headers, answer.body, undefined),
      (error) => this.fail(error));
  }

  fail(error) {
    if (this.done || this.cancelled) return;
    const text = `Function failed to execute: ${error instanceof Error ? error.stack : String(error)}`;
    if (this.response !== undefined && this.response.headersSent) {
      this.abortStream(this.response, error);
      return;
    }
    this.complete(500, HTML, 'Internal Server Error', text);
  }

  // MARK: streamed answers (called by Response)

  /** Sends `chunk`, starting the answer first; false asks the writer to wait for drain. */
  stream(response, chunk) {
    if (!response.headersSent) {
      response.headersSent = true;
      this.host.calls.set(this.id, this);
      return this.reply(HEAD, response.statusCode, response.flatHeaders(), chunk, undefined);
    }
    return this.reply(CHUNK, 0, undefined, chunk, undefined);
  }

  finishStream(response, body) {
    if (this.done) return;
    if (!response.headersSent) {
      response.headersSent = true;
      this.complete(response.statusCode, response.flatHeaders(), body, undefined);
      return;
    }
    this.done = true;
    this.host.calls.delete(this.id);
    this.reply(END, 0, undefined, body.length ? body : undefined, undefined);
  }

  abortStream(response, error) {
    if (this.done) return;
    if (!response.headersSent) {
      this.fail(error || new Error('the response was destroyed before it started'));
      return;
    }
    this.done = true;
    this.host.calls.delete(this.id);
    const text = `Function failed while streaming: ${error instanceof Error ? error.stack : String(error || 'destroyed')}`;
    this.reply(END, 0, undefined, undefined, text);
  }
}

/** What `event.extensions` is: the request, and the response built only if a handler looks. */
class Extensions {
  constructor(call) {
    this._call = call;
    this.request = call.request;
  }

  get response() {
    return this._call.responseObject();
  }
}

class Host {
  constructor(native, handler, context) {
    this.native = native;
    this.handler = handler;
    this.context = context;
    /** Calls not answered when their handler returned, by id. */
    this.calls = new Map();
  }

  call(id, method, target, headers, body, remoteAddress, traceparent, tracestate, cloudevent) {
    const request = new Request(method, target, headers, body, remoteAddress);
    const call = new Call(this, id, request);
    call.structured = cloudevent === true;
    request._call = call;
    const event = {
      data: undefined,
      'event-type': undefined,
      'event-id': undefined,
      'event-time': undefined,
      'event-namespace': undefined,
      extensions: new Extensions(call),
    };
    let contentType;
    let hasBody = false;
    // The server lower-cases header names.
    for (let index = 0; index + 1 < headers.length; index += 2) {
      const name = headers[index];
      if (name === 'content-type') contentType = headers[index + 1];
      else if (name === 'content-length' || name === 'transfer-encoding') hasBody = true;
      else if (name.startsWith('event-') && name in event) event[name] = headers[index + 1];
    }
    if (event['event-namespace'] === KAFKA_NAMESPACE) {
      Object.assign(event.extensions, kafkaExtensions(headers));
      hasBody = true; // the kafka-trigger POSTed every message with its length
    }
    try {
      event.data = decodeData(request._bodyBytes(), contentType, hasBody);
    } catch (error) {
      call.complete(400, TEXT, `Request body is not valid JSON: ${error.message}\n`, `invalid JSON body: ${error.message}`);
      return;
    }
    if (cloudevent !== undefined) {
      try {
        cloudEvents.apply(event, cloudevent, request._bodyBytes());
      } catch (error) {
        if (!(error instanceof cloudEvents.CloudEventError)) throw error;
        call.complete(400, TEXT, `Invalid CloudEvent: ${error.message}\n`, `invalid CloudEvent: ${error.message}`);
        return;
      }
    }
    // A context per call: calls awaiting side by side each hold their own trace. (Object.assign:
    // node 18's object spread takes a slow path here, 2 µs a call.)
    const context = Object.assign({}, this.context);
    context.traceparent = traceparent;
    context.tracestate = tracestate;
    let result;
    try {
      result = this.handler(event, context);
    } catch (error) {
      call.fail(error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      this.calls.set(id, call);
      result.then((value) => call.finish(value), (error) => call.fail(error));
    } else {
      call.finish(result);
    }
    if (!call.done && call.response !== undefined) this.calls.set(id, call);
  }

  cancel(id) {
    const call = this.calls.get(id);
    if (call === undefined) return;
    this.calls.delete(id);
    call.cancelled = true;
    if (call.response !== undefined && !call.response.destroyed) call.response.destroy();
  }

  drain(id) {
    const call = this.calls.get(id);
    if (call !== undefined && call.response !== undefined) call.response._resumeWriting();
  }
}

const KAFKA_NAMESPACE = 'kafkatriggers.kubeless.io';
const KAFKA_PREFIX = 'funcd-kafka-';
const KAFKA_HEADER_PREFIX = 'funcd-kafka-header-';

/**
 * A Kafka message's topic, partition, offset, key, timestamp and headers, which funcd passes
 * as funcd-kafka-* headers (the HTTP server drops any a client sends).
 */
function kafkaExtensions(headers) {
  const found = { key: null, headers: {} };
  for (let index = 0; index + 1 < headers.length; index += 2) {
    const name = headers[index];
    if (name.startsWith(KAFKA_HEADER_PREFIX)) found.headers[name.slice(KAFKA_HEADER_PREFIX.length)] = headers[index + 1];
    else if (name.startsWith(KAFKA_PREFIX)) {
      const field = name.slice(KAFKA_PREFIX.length);
      found[field] = ['partition', 'offset', 'timestamp'].includes(field) ? Number(headers[index + 1]) : headers[index + 1];
    }
  }
  return found;
}

/**
 * `data` as kubeless's express runtime gave it (body-parser's raw parser, then its own decoding):
 * `{}` for a request without a body (no Content-Length, no Transfer-Encoding) and for
 * multipart/form-data (left to the handler, which reads the request); an empty Buffer for an
 * empty body; parsed JSON for application/json; else the body as a UTF-8 string. `body` is a
 * Buffer, or an ASCII body as the string of its bytes, which is its UTF-8 decoding already.
 */
function decodeData(body, contentType, hasBody = true) {
  const type = contentType === undefined ? '' : mediaType(contentType);
  if (type === 'multipart/form-data' || (!hasBody && body.length === 0)) return {};
  if (body.length === 0) return body;
  const text = bodyText(body);
  return type === 'application/json' ? JSON.parse(text) : text;
}

/** Keeps an error outside any call from ending the process: it is logged and serving goes on. */
function installProcessHooks(process) {
  process.on('uncaughtException', (error) => {
    process.stderr.write(`funcd: uncaught exception outside a call: ${error instanceof Error ? error.stack : String(error)}\n`);
  });
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`funcd: unhandled promise rejection: ${reason instanceof Error ? reason.stack : String(reason)}\n`);
  });
}

/**
 * Entry point, from the bootstrap funcd-node runs: returns `{call, cancel, drain}`, or
 * `{error}` with the one line that explains why the handler cannot be served. An ES module loads
 * asynchronously (its imports, its top-level await): then the answer is `{ready}`, a promise of
 * one of those two (and `module`, the file, for funcd-node's own messages), and funcd-node runs
 * the event loop until it settles before it serves.
 */
function boot(native, process, config) {
  if (config.require !== undefined) builtin = config.require;
  if (config.stdoutToStderr) {
    // `funcd invoke` prints the answer on stdout; whatever the handler logs goes to stderr.
    process.stdout.write = process.stderr.write.bind(process.stderr);
  }
  const failed = (error) => {
    if (error instanceof LoadError) return { error: error.message };
    return { error: `${config.modulePath}: ${error instanceof Error ? error.stack : String(error)}` };
  };
  try {
    const modulePath = builtin('path').resolve(config.modulePath);
    if (isESModule(modulePath)) {
      const ready = loadModule(modulePath, config.handler).then((handler) => serve(native, process, config, handler), failed);
      return { ready, module: modulePath };
    }
    return serve(native, process, config, load(config.modulePath, config.handler));
  } catch (error) {
    return failed(error);
  }
}

function serve(native, process, config, handler) {
  installProcessHooks(process);
  // One context object for every call, as kubeless passed it.
  const host = new Host(native, handler, { ...config.context });
  return {
    call: (id, method, target, headers, body, remoteAddress, traceparent, tracestate, cloudevent) =>
      host.call(id, method, target, headers, body, remoteAddress, traceparent, tracestate, cloudevent),
    cancel: (id) => host.cancel(id),
    drain: (id) => host.drain(id),
    host,
  };
}

module.exports = { boot, load, loadModule, isESModule, decodeData, kafkaExtensions, Host, LoadError, COMPLETE, HEAD, CHUNK, END };
