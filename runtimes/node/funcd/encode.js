'use strict';

// A handler's return value as an answer, the way the kubeless nodejs runtime sent it through
// express: a string as it is (no Content-Type, like res.end), undefined as an empty 200, any
// other object (null included) as JSON, other values JSON.stringify'd. funcd adds: bytes
// (Buffer, typed arrays, ArrayBuffer) as they are, and a WHATWG Response (global in Node 18)
// with its own status, headers and body.

const JSON_TYPE = ['Content-Type', 'application/json; charset=utf-8'];
const NONE = [];

/** `{status, headers: [name, value, ...], body}` for a plain return value. */
function encode(value) {
  switch (typeof value) {
    case 'string':
      return { status: 200, headers: NONE, body: value };
    case 'undefined':
      return { status: 200, headers: NONE, body: undefined };
    case 'object':
      if (value !== null) {
        if (ArrayBuffer.isView(value)) return { status: 200, headers: NONE, body: value };
        if (value instanceof ArrayBuffer) return { status: 200, headers: NONE, body: new Uint8Array(value) };
      }
      return { status: 200, headers: JSON_TYPE, body: JSON.stringify(value) };
    default: {
      // numbers, booleans; a BigInt throws here and the call fails with a 500, as in express.
      const text = JSON.stringify(value);
      return { status: 200, headers: NONE, body: text === undefined ? '' : text };
    }
  }
}

/**
 * Whether `value` is a WHATWG Response. The global `Response` is a lazy getter that loads undici
 * (40 ms of a cold start here, and crypto, web streams and worker_threads with it), so it is
 * read only for an object that already says it is one: a handler that made a Response has
 * loaded undici itself.
 */
function isFetchResponse(value) {
  return typeof value === 'object' && value !== null && value[Symbol.toStringTag] === 'Response' &&
    typeof Response === 'function' && value instanceof Response;
}

/** Reads a WHATWG Response: a promise of `{status, headers, body}`. */
async function fromFetchResponse(response) {
  const headers = [];
  for (const [name, value] of response.headers) headers.push(name, value);
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers, body };
}

module.exports = { encode, isFetchResponse, fromFetchResponse };
