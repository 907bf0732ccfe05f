'use strict';

// event.extensions.response: a real Writable with the express calls kubeless handlers use
// (status, set/setHeader, send, json, write, end, and pipe() into it). An answer given whole
// (send, json, end without an earlier write) goes out with a Content-Length; one written in
// pieces goes out as it is written, chunked, and pauses the writer when the client is slow.

const { Writable } = require('stream');

const SHORT_TYPES = {
  json: 'application/json', html: 'text/html', text: 'text/plain', txt: 'text/plain',
  xml: 'application/xml', js: 'text/javascript', css: 'text/css', csv: 'text/csv',
  bin: 'application/octet-stream', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg',
  gif: 'image/gif', svg: 'image/svg+xml', pdf: 'application/pdf', form: 'application/x-www-form-urlencoded',
};

function fullType(type) {
  if (type.includes('/')) return type;
  const known = SHORT_TYPES[type.replace(/^\./, '').toLowerCase()];
  return known || 'application/octet-stream';
}

// What node's http module accepts (validateHeaderName, validateHeaderValue): a name is an RFC 7230
// token; a value holds no control character but HTAB (no NUL, CR or LF: they would end the field
// or the head). Unlike node, characters above U+00FF are let through: funcd sends values as UTF-8.
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const INVALID_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** A TypeError shaped like node's own (`code`, and `TypeError [CODE]: ...` in its stack). */
function httpError(code, message) {
  const error = new TypeError(message);
  error.code = code;
  Object.defineProperty(error, 'name', { value: `TypeError [${code}]`, configurable: true });
  error.stack; // eslint-disable-line no-unused-expressions -- formats the stack with the code
  delete error.name;
  return error;
}

function checkName(name) {
  if (!TOKEN.test(name)) throw httpError('ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`);
}

function checkValue(name, value) {
  if (INVALID_VALUE.test(value)) throw httpError('ERR_INVALID_CHAR', `Invalid character in header content ["${name}"]`);
}

function withCharset(type) {
  return /^(text\/|application\/(json|javascript|xml))/.test(type) && !/charset=/i.test(type) ? `${type}; charset=utf-8` : type;
}

class Response extends Writable {
  /** `call` answers for the response: see host.js (`Call.send`). */
  constructor(call) {
    super({ highWaterMark: 64 * 1024 });
    this._call = call;
    this.statusCode = 200;
    this.statusMessage = undefined;
    this.locals = {};
    this.headersSent = false;
    this._fields = new Map();
    this._ending = false;
    this._whole = [];
    this._paused = null;
  }

  // MARK: status and headers

  status(code) {
    this.statusCode = Number(code);
    return this;
  }

  /** Every way of setting a header ends here; an invalid name or value throws as in node. */
  setHeader(name, value) {
    if (this.headersSent) throw new Error(`Cannot set header "${name}" after the response started`);
    const text = String(name);
    checkName(text);
    const values = Array.isArray(value) ? value.map(String) : String(value);
    if (Array.isArray(values)) for (const item of values) checkValue(text, item);
    else checkValue(text, values);
    this._fields.set(text.toLowerCase(), [text, values]);
    return this;
  }

  getHeader(name) {
    const field = this._fields.get(String(name).toLowerCase());
    return field === undefined ? undefined : field[1];
  }

  getHeaders() {
    const headers = {};
    for (const [lower, [, value]] of this._fields) headers[lower] = value;
    return headers;
  }

  getHeaderNames() {
    return [...this._fields.keys()];
  }

  hasHeader(name) {
    return this._fields.has(String(name).toLowerCase());
  }

  removeHeader(name) {
    this._fields.delete(String(name).toLowerCase());
  }

  /** express `res.set(field, value)` / `res.set({field: value})`; also `res.header`. */
  set(field, value) {
    if (typeof field === 'object' && field !== null) {
      for (const name of Object.keys(field)) this.set(name, field[name]);
      return this;
    }
    if (String(field).toLowerCase() === 'content-type' && !Array.isArray(value)) value = withCharset(fullType(String(value)));
    return this.setHeader(field, value);
  }

  header(field, value) {
    return this.set(field, value);
  }

  get(field) {
    return this.getHeader(field);
  }

  append(field, value) {
    const previous = this.getHeader(field);
    if (previous === undefined) return this.set(field, value);
    return this.setHeader(field, [].concat(previous, value));
  }

  type(type) {
    return this.set('Content-Type', type);
  }

  contentType(type) {
    return this.type(type);
  }

  location(url) {
    return this.set('Location', url);
  }

  writeHead(statusCode, message, headers) {
    if (typeof message !== 'string') headers = message;
    else this.statusMessage = message;
    this.statusCode = statusCode;
    if (headers) {
      const pairs = Array.isArray(headers) ? pairsOf(headers) : Object.entries(headers);
      for (const [name, value] of pairs) this.setHeader(name, value);
    }
    return this;
  }

  /** Header names and values as the server takes them: [name, value, name, value, ...]. */
  flatHeaders() {
    const flat = [];
    for (const [name, value] of this._fields.values()) {
      if (Array.isArray(value)) for (const item of value) flat.push(name, item);
      else flat.push(name, value);
    }
    return flat;
  }

  // MARK: whole answers

  send(body) {
    if (typeof body === 'number' && arguments.length === 1 && !this.hasHeader('content-type')) {
      // express 4 still reads res.send(404) as a status.
      return this.sendStatus(body);
    }
    if (body === undefined || body === null) return this.end();
    if (typeof body === 'string') {
      if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'text/html; charset=utf-8');
      return this.end(body);
    }
    if (Buffer.isBuffer(body) || ArrayBuffer.isView(body)) {
      if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'application/octet-stream');
      return this.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    }
    return this.json(body);
  }

  json(value) {
    if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'application/json; charset=utf-8');
    const text = JSON.stringify(value);
    return this.end(text === undefined ? '' : text);
  }

  sendStatus(code) {
    this.statusCode = code;
    if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'text/plain; charset=utf-8');
    // http is required here, not at the top: it loads net and the whole client and server.
    return this.end(require('http').STATUS_CODES[code] || String(code));
  }

  redirect(status, url) {
    if (url === undefined) [status, url] = [302, status];
    this.statusCode = status;
    this.setHeader('Location', url);
    return this.end();
  }

  /** Like node's ServerResponse: true once the answer has been ended. */
  get finished() {
    return this.writableEnded;
  }

  end(chunk, encoding, callback) {
    if (!this.headersSent) this._ending = true;
    super.end(chunk, encoding, callback);
    return this;
  }

  // MARK: Writable

  _write(chunk, encoding, callback) {
    if (this._call.cancelled) return callback();
    if (!this.headersSent && this._ending) {
      this._whole.push(chunk);
      return callback();
    }
    const more = this._call.stream(this, chunk);
    if (more) callback();
    else this._paused = callback;
  }

  _final(callback) {
    if (!this._call.cancelled) this._call.finishStream(this, this._whole.length === 1 ? this._whole[0] : Buffer.concat(this._whole));
    this._whole = [];
    callback();
  }

  _destroy(error, callback) {
    if (!this._call.cancelled && !this.writableFinished) this._call.abortStream(this, error);
    callback(error);
  }

  /** The client took what was written: let a paused writer go on. */
  _resumeWriting() {
    const callback = this._paused;
    this._paused = null;
    if (callback) callback();
  }
}

function pairsOf(flat) {
  const pairs = [];
  for (let index = 0; index + 1 < flat.length; index += 2) pairs.push([flat[index], flat[index + 1]]);
  return pairs;
}

module.exports = { Response };
