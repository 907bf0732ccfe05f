'use strict';

// The request a handler finds in event.extensions.request: the calls of an express request that
// kubeless handlers use, built lazily from what the server handed over (method, target, a flat
// [name, value, ...] header list, and the body as a Buffer).

const { Readable } = require('stream');

// Headers whose repeats node's http module drops instead of joining (IncomingMessage).
const SINGLE = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host',
  'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards',
  'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]);

const EMPTY = Buffer.alloc(0);

class Request {
  constructor(method, url, rawHeaders, body) {
    this.method = method;
    this.url = url;
    this.originalUrl = url;
    this.rawHeaders = rawHeaders;
    this.body = body === undefined ? EMPTY : body;
    this.protocol = 'http';
    this._headers = undefined;
    this._query = undefined;
  }

  /** Header names lower-cased; repeats joined with ", " (set-cookie: an array), as node does. */
  get headers() {
    if (this._headers !== undefined) return this._headers;
    const headers = {};
    const raw = this.rawHeaders;
    for (let index = 0; index + 1 < raw.length; index += 2) {
      const name = raw[index].toLowerCase();
      const value = raw[index + 1];
      const seen = headers[name];
      if (seen === undefined) {
        headers[name] = name === 'set-cookie' ? [value] : value;
      } else if (name === 'set-cookie') {
        seen.push(value);
      } else if (!SINGLE.has(name)) {
        headers[name] = `${seen}, ${value}`;
      }
    }
    this._headers = headers;
    return headers;
  }

  set headers(value) {
    this._headers = value;
  }

  get path() {
    const mark = this.url.indexOf('?');
    return mark < 0 ? this.url : this.url.slice(0, mark);
  }

  get hostname() {
    const host = this.get('host');
    if (!host) return undefined;
    const colon = host.startsWith('[') ? host.indexOf(':', host.indexOf(']')) : host.indexOf(':');
    return colon < 0 ? host : host.slice(0, colon);
  }

  /**
   * The query string as express's default ("extended") parser gives it: the qs library itself
   * (Debian's node-qs, loaded on first use), so `a[b]=c` nests, `x[]=1&x[]=2` is an array and
   * qs's bounds hold (depth 5, 1,000 parameters, arrays up to index 20).
   */
  get query() {
    if (this._query !== undefined) return this._query;
    const mark = this.url.indexOf('?');
    const text = mark < 0 ? '' : this.url.slice(mark + 1);
    this._query = text === '' ? {} : queryParser()(text, { allowPrototypes: true });
    return this._query;
  }

  set query(value) {
    this._query = value;
  }

  /** `req.get(name)`: a header, case-insensitive; Referer and Referrer are one. */
  get(name) {
    const lower = String(name).toLowerCase();
    if (lower === 'referer' || lower === 'referrer') return this.headers.referer || this.headers.referrer;
    return this.headers[lower];
  }

  header(name) {
    return this.get(name);
  }

  /**
   * `req.is(type)`: the request's content type if it matches one of `types` (`json`,
   * `application/json`, `text/*`, `+json`), false if not, null when there is no body.
   */
  is(...types) {
    const list = Array.isArray(types[0]) ? types[0] : types;
    const header = this.get('content-type');
    // type-is: a request has a body when it says so (Transfer-Encoding, a Content-Length), even 0.
    const length = this.get('content-length');
    const hasBody = this.get('transfer-encoding') !== undefined || (length !== undefined && !Number.isNaN(Number(length)));
    if (!hasBody && this.body.length === 0) return null;
    if (!header) return false;
    const actual = mediaType(header);
    if (list.length === 0) return actual;
    for (const wanted of list) {
      if (typeMatches(String(wanted).toLowerCase(), actual)) return wanted.includes('/') || wanted.startsWith('+') ? actual : wanted;
    }
    return false;
  }

  /** The body as a readable stream, for code that pipes the request (busboy and the like). */
  pipe(destination, options) {
    return Readable.from([this.body]).pipe(destination, options);
  }
}

let parseQuery;

/**
 * qs's parse: the copy the image bundles beside the glue, else Debian's node-qs (its global
 * folder is not on an embedded Node's path: Debian derives it from the executable's prefix), or,
 * where neither is installed, a flat parse that says so once.
 */
function queryParser() {
  if (parseQuery !== undefined) return parseQuery;
  for (const name of ['qs', '/usr/share/nodejs/qs']) {
    try {
      parseQuery = require(name).parse;
      return parseQuery;
    } catch (error) {
      if (error.code !== 'MODULE_NOT_FOUND') throw error;
    }
  }
  process.stderr.write('funcd: node-qs is not installed: req.query is parsed flat (a[b]=c is not nested)\n');
  parseQuery = (text) => {
    const query = {};
    for (const [key, value] of new URLSearchParams(text)) {
      const seen = query[key];
      if (seen === undefined) query[key] = value;
      else if (Array.isArray(seen)) seen.push(value);
      else query[key] = [seen, value];
    }
    return query;
  };
  return parseQuery;
}

function mediaType(header) {
  const semicolon = header.indexOf(';');
  return (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
}

const SHORT = { json: 'application/json', html: 'text/html', text: 'text/plain', urlencoded: 'application/x-www-form-urlencoded', multipart: 'multipart/*' };

function typeMatches(wanted, actual) {
  if (SHORT[wanted]) wanted = SHORT[wanted];
  if (wanted.startsWith('+')) return actual.endsWith(wanted);
  if (!wanted.includes('/')) return actual.split('/')[1] === wanted;
  const [type, subtype] = wanted.split('/');
  const [actualType, actualSubtype] = actual.split('/');
  if (type !== '*' && type !== actualType) return false;
  if (subtype === '*') return true;
  if (subtype.startsWith('*+')) return actualSubtype !== undefined && actualSubtype.endsWith(subtype.slice(1));
  return subtype === actualSubtype;
}

module.exports = { Request, mediaType };
