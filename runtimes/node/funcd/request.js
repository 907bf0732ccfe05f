'use strict';

// The request a handler finds in event.extensions.request: the calls of an express request that
// kubeless handlers use, built lazily from what the server handed over (method, target, a flat
// [name, value, ...] header list, and the body: a Buffer, or a string of its bytes for an ASCII
// body, made a Buffer on first use).


// Headers whose repeats node's http module drops instead of joining (IncomingMessage).
const SINGLE = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host',
  'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards',
  'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]);

const EMPTY = Buffer.alloc(0);

let route;

/**
 * What express's `app.all('*', ...)` route (kubeless's one route) looks like to a handler: its
 * path and every method (app.all registers each; its stack of express layers is left out).
 */
function kubelessRoute() {
  if (route === undefined) {
    const methods = {};
    for (const method of require('http').METHODS) methods[method.toLowerCase()] = true;
    route = Object.freeze({ path: '*', methods: Object.freeze(methods), stack: Object.freeze([]) });
  }
  return route;
}

class Request {
  /** `remoteAddress`: the client's address as the server's socket has it (undefined: none, Kafka). */
  constructor(method, url, rawHeaders, body, remoteAddress) {
    this.method = method;
    this.url = url;
    this.originalUrl = url;
    this.rawHeaders = rawHeaders;
    // funcd-node passes an ASCII body as a string whose characters are its bytes (see
    // #_bodyBytes); it becomes request.body's Buffer on first use.
    this._body = body === undefined ? EMPTY : body;
    this._bodyIsText = typeof body === 'string';
    this.protocol = 'http';
    this._remoteAddress = remoteAddress;
    /** The call this request belongs to (host.js sets it): req.res and req.fresh look at its response. */
    this._call = undefined;
    this._headers = undefined;
    this._query = undefined;
    this._params = undefined;
  }

  /** The body's bytes as a Buffer, as body-parser's raw parser left it in kubeless's express. */
  get body() {
    if (this._bodyIsText) {
      this._body = Buffer.from(this._body, 'latin1');
      this._bodyIsText = false;
    }
    return this._body;
  }

  /** A handler or middleware may set it (a string too, kept as it is), as body-parser does. */
  set body(value) {
    this._body = value;
    this._bodyIsText = false;
  }

  /**
   * The bytes funcd handed over, without making a Buffer of a string: the string itself (its
   * characters are the bytes, all ASCII), or the Buffer; what request.body is until it is set.
   */
  _bodyBytes() {
    return this._body;
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
    if (!hasBody && this._bodyBytes().length === 0) return null;
    if (!header) return false;
    const actual = mediaType(header);
    if (list.length === 0) return actual;
    for (const wanted of list) {
      if (typeMatches(String(wanted).toLowerCase(), actual)) return wanted.includes('/') || wanted.startsWith('+') ? actual : wanted;
    }
    return false;
  }

  // MARK: what else express's req answers (its app's settings as kubeless left them)

  /** No TLS in funcd (a pod's TLS ends before it), and trust proxy is off: X-Forwarded-Proto is not read. */
  get secure() {
    return false;
  }

  /** The client's address: the socket's (trust proxy off, so X-Forwarded-For is not read). */
  get ip() {
    return this._remoteAddress;
  }

  /** X-Forwarded-For's addresses, which express gives only when proxies are trusted: []. */
  get ips() {
    return [];
  }

  /** The hostname's labels but the last two, most general first; [] for an IP address. */
  get subdomains() {
    const hostname = this.hostname;
    if (!hostname) return [];
    const labels = require('net').isIP(hostname) ? [hostname] : hostname.split('.').reverse();
    return labels.slice(2);
  }

  /** express's deprecated alias of hostname. */
  get host() {
    return this.hostname;
  }

  get xhr() {
    return String(this.get('X-Requested-With') || '').toLowerCase() === 'xmlhttprequest';
  }

  /** Nothing is mounted: the whole URL is the app's. */
  get baseUrl() {
    return '';
  }

  get route() {
    return kubelessRoute();
  }

  /** `app.all('*')`'s one capture: `{0: path}`, decoded as express decodes route parameters. */
  get params() {
    if (this._params !== undefined) return this._params;
    const path = this.path;
    let decoded;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      decoded = path; // express answered 400 before the handler ran; funcd gives the path as sent
    }
    this._params = { 0: decoded };
    return this._params;
  }

  set params(value) {
    this._params = value;
  }

  /** express's deprecated req.param(): route parameter, then body, then query. */
  param(name, defaultValue) {
    const params = this.params || {};
    const body = this.body || {};
    const query = this.query || {};
    if (params[name] != null && Object.prototype.hasOwnProperty.call(params, name)) return params[name];
    if (body[name] != null) return body[name];
    if (query[name] != null) return query[name];
    return defaultValue;
  }

  /** The response of this call (event.extensions.response), as express links them. */
  get res() {
    return this._call === undefined ? undefined : this._call.responseObject();
  }

  /** The socket's face that code reads without express: its remote address. */
  get socket() {
    const address = this._remoteAddress;
    const family = address === undefined ? undefined : address.includes(':') ? 'IPv6' : 'IPv4';
    return { remoteAddress: address, remoteFamily: family, encrypted: undefined };
  }

  get connection() {
    return this.socket;
  }

  /**
   * Content negotiation as express does it (the `accepts` library itself, loaded on first use):
   * `accepts('json', 'html')` is the best of the offered types for the Accept header, or false.
   */
  accepts(...types) {
    const negotiator = library('accepts')(this);
    return negotiator.types(...types);
  }

  acceptsEncodings(...encodings) {
    const negotiator = library('accepts')(this);
    return negotiator.encodings(...encodings);
  }

  acceptsCharsets(...charsets) {
    const negotiator = library('accepts')(this);
    return negotiator.charsets(...charsets);
  }

  acceptsLanguages(...languages) {
    const negotiator = library('accepts')(this);
    return negotiator.languages(...languages);
  }

  // express 4's deprecated singular names.
  acceptsEncoding(...encodings) {
    return this.acceptsEncodings(...encodings);
  }

  acceptsCharset(...charsets) {
    return this.acceptsCharsets(...charsets);
  }

  acceptsLanguage(...languages) {
    return this.acceptsLanguages(...languages);
  }

  /** The Range header parsed for a body of `size` bytes (range-parser): undefined without one. */
  range(size, options) {
    const range = this.get('Range');
    if (!range) return undefined;
    return library('range-parser')(size, range, options);
  }

  /**
   * Whether the client's cached copy is current (the `fresh` library): only for GET and HEAD, a
   * 2xx or 304 status, against the ETag and Last-Modified the handler set on the response.
   */
  get fresh() {
    if (this.method !== 'GET' && this.method !== 'HEAD') return false;
    const response = this._call === undefined ? undefined : this._call.response;
    const status = response === undefined ? 200 : response.statusCode;
    if ((status < 200 || status >= 300) && status !== 304) return false;
    return library('fresh')(this.headers, {
      etag: response === undefined ? undefined : response.get('ETag'),
      'last-modified': response === undefined ? undefined : response.get('Last-Modified'),
    });
  }

  get stale() {
    return !this.fresh;
  }

  /** The body as a readable stream, for code that pipes the request (busboy and the like). */
  pipe(destination, options) {
    return require('stream').Readable.from([this.body]).pipe(destination, options);
  }
}

/**
 * A module the image bundles beside the glue, else Debian's copy (its global folder is not on an
 * embedded Node's path: Debian derives it from the executable's prefix); undefined when neither
 * is installed. Loaded only when a handler first needs it.
 */
function bundled(name) {
  for (const place of [name, `/usr/share/nodejs/${name}`]) {
    try {
      return require(place);
    } catch (error) {
      if (error.code !== 'MODULE_NOT_FOUND') throw error;
    }
  }
  return undefined;
}

const libraries = new Map();

/** `bundled(name)`, or an error naming the Debian package to install. */
function library(name) {
  let found = libraries.get(name);
  if (found === undefined) {
    found = bundled(name);
    if (found === undefined) throw new Error(`funcd: Debian's node-${name} is not installed (neither beside the glue nor in /usr/share/nodejs)`);
    libraries.set(name, found);
  }
  return found;
}

let parseQuery;

/**
 * qs's parse (see bundled()), or, where qs is not installed, a flat parse that says so once.
 */
function queryParser() {
  if (parseQuery !== undefined) return parseQuery;
  const qs = bundled('qs');
  if (qs !== undefined) {
    parseQuery = qs.parse;
    return parseQuery;
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

/**
 * The UTF-8 text of a body as Request#_bodyBytes gives it: a Buffer decoded, or an ASCII body's
 * string, which is its decoding already.
 */
function bodyText(bytes) {
  return typeof bytes === 'string' ? bytes : bytes.toString('utf8');
}

module.exports = { Request, mediaType, bodyText };
