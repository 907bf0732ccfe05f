'use strict';

// funcd's Node event and request against express itself (Debian's node-express and
// node-body-parser), the oracle: a seeded stream of requests goes as raw bytes over a socket to an
// express app set up as kubeless's nodejs runtime set it up (body-parser raw for every type but
// multipart/form-data, then json and extended urlencoded, one `app.all('*')` route), and the same
// requests are given to funcd's glue as funcd-node gives them (header names lower-cased, each
// value's bytes as latin-1 characters, as node's http decodes them). What a handler sees must
// agree: `event.data`, the headers, `req.query`, `path`, `hostname`, `get`, `is`, `accepts*`,
// `ip`/`ips`, `protocol`, `secure`, `xhr`, `subdomains`, `fresh`/`stale` (against an ETag and
// Last-Modified the handler sets), `range`, `params`, `route`, `url`s and `cookies`.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const express = require('express');
const bodyParser = require('body-parser');
const { Host, decodeData } = require('../funcd/host');
const { Recorder } = require('./recorder');

/** undefined survives JSON as a mark, so that "absent" and "undefined" stay apart. */
function mark(value) {
  return value === undefined ? { undefined: true } : value;
}

/** What a handler sees, made comparable (a Buffer as its base64 and a mark). */
function view(data, request) {
  return {
    data: Buffer.isBuffer(data) ? { buffer: data.toString('base64') } : data,
    dataType: Buffer.isBuffer(data) ? 'buffer' : typeof data,
    headers: request.headers,
    rawValues: request.rawHeaders.filter((_, index) => index % 2 === 1),
    query: request.query,
    path: request.path,
    hostname: mark(request.hostname),
    method: request.method,
    custom: request.get('X-Custom') ?? null,
    latin: request.get('X-Latin') ?? null,
    contentType: request.get('content-type') ?? null,
    is: ['json', 'application/json', 'text/*', 'urlencoded', 'multipart', '+json'].map((type) => request.is(type)),
    accepts: [request.accepts(), request.accepts('json', 'html'), request.accepts(['text/plain', 'image/png']), request.accepts('application/xml'), request.accepts('text')],
    acceptsEncodings: [request.acceptsEncodings(), request.acceptsEncodings('gzip', 'deflate'), request.acceptsEncodings('br'), request.acceptsEncodings('identity')],
    acceptsCharsets: [request.acceptsCharsets(), request.acceptsCharsets('utf-8', 'iso-8859-1'), request.acceptsCharsets('utf-16')],
    acceptsLanguages: [request.acceptsLanguages(), request.acceptsLanguages('en', 'fr', 'de-DE'), request.acceptsLanguages(['es'])],
    ip: mark(request.ip),
    ips: request.ips,
    protocol: request.protocol,
    secure: request.secure,
    xhr: request.xhr,
    subdomains: request.subdomains,
    fresh: request.fresh,
    stale: request.stale,
    range: mark(request.range(1000)),
    rangeCombined: mark(request.range(1000, { combine: true })),
    params: request.params,
    route: { methods: request.route.methods },
    url: request.url,
    originalUrl: request.originalUrl,
    baseUrl: request.baseUrl,
    cookies: mark(request.cookies),
    signedCookies: mark(request.signedCookies),
  };
}

/** The response settings some requests ask for, before the handler looks at req.fresh. */
function prepare(request, response) {
  const etag = request.get('X-Set-ETag');
  const modified = request.get('X-Set-Last-Modified');
  const status = request.get('X-Set-Status');
  if (etag) response.set('ETag', etag);
  if (modified) response.set('Last-Modified', modified);
  if (status) response.status(Number(status));
}

/** kubeless's runtime: body-parser, then data decoded as kubeless.js did. */
function kubelessApp() {
  const app = express();
  app.use(bodyParser.raw({ type: (req) => !req.is('multipart/form-data'), limit: '1mb' }));
  app.use(bodyParser.json({ limit: '1mb' }));
  app.use(bodyParser.urlencoded({ limit: '1mb', extended: true }));
  // kubeless registered '*' (npm's express 4 turns it into the capture `(.*)` with
  // path-to-regexp 0.1); Debian's express runs on path-to-regexp 6, which spells it '(.*)'. The
  // route's path is the one thing that differs, so it is left out of the view.
  app.all('(.*)', (req, res) => {
    let data = req.body;
    if (!req.is('multipart/form-data') && req.body.length > 0) {
      data = req.is('application/json') ? JSON.parse(req.body.toString('utf-8')) : req.body.toString('utf-8');
    }
    prepare(req, res);
    const text = JSON.stringify({ view: view(data, req), remote: req.socket.remoteAddress });
    // Sent as it is (res.send would answer 304 to a fresh request, and status 304 has no body).
    res.status(200).set({ 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  });
  return app;
}

/** funcd's glue given the same request as funcd-node gives it, through Host.call. */
function funcdView(sample, remote) {
  const flat = [];
  // Each header value's bytes on the wire, one latin-1 character each (what funcd-node hands over).
  for (const [name, value] of sample.headers) flat.push(name.toLowerCase(), Buffer.from(value, 'latin1').toString('latin1'));
  const native = new Recorder();
  const host = new Host(native, (event) => {
    prepare(event.extensions.request, event.extensions.response);
    return { view: view(event.data, event.extensions.request) };
  }, {});
  host.call(1, sample.method, sample.url, flat, sample.body.length ? sample.body : undefined, remote);
  const answer = native.answer(1);
  assert.ok(answer.error === undefined, answer.error);
  return JSON.parse(answer.body).view;
}

function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'b', 'id', 'a[b]', 'arr[]', 'o[p][q]', 'x[0]', 'x[1]', 'x[25]', 'deep[1][2][3][4][5][6]', 'tag', 'a.b', 'k%5Bz%5D'];
const VALUES = ['1', 'two', '', 'a%20b', 'c+d', '%C3%A9', 'x=y', '%26'];
const PATHS = ['/', '/api', '/api/items', '/api/items/', '/x.json', '/a%20b', '/caf%C3%A9', '/a%2Fb', '//twice'];
const HOSTS = ['fn.example:8080', 'localhost', 'fn.example', 'a.b.fn.example', 'x.y.z.example.com:80', '10.0.0.7:8080', '[::1]:8080', ''];
const ACCEPT = ['*/*', 'text/html', 'application/json', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'application/json;q=0.5, text/html;q=0.7', 'text/*', 'image/*;q=0.1, text/plain', 'application/xml;q=0', ''];
const ENCODINGS = ['gzip', 'gzip, deflate, br', 'br;q=1.0, gzip;q=0.8, *;q=0.1', 'identity;q=0', '*', 'deflate;q=0', ''];
const CHARSETS = ['utf-8', 'iso-8859-1, utf-8;q=0.7', 'utf-16;q=0, *', '*;q=0.5', ''];
const LANGUAGES = ['en', 'fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5', 'de-DE', 'es, en-US;q=0.1', '*', ''];
const ETAGS = ['"v1"', 'W/"v1"', '"v2"'];
const DATES = ['Tue, 01 Dec 2026 10:00:00 GMT', 'Wed, 02 Dec 2026 10:00:00 GMT', 'not a date'];
// Header values with bytes 0x80-0xFF (obs-text): node's http gives them as latin-1 characters.
const LATIN = ['caf\u00e9', 'caf\u00e9 \u00fcber', '\u00ff\u00a0x', 'plain'];

function generated(rng) {
  const pick = (list) => list[Math.floor(rng() * list.length)];
  const maybe = (chance) => rng() < chance;
  // No HEAD: its answer has no body to carry the view back.
  const method = pick(['GET', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
  const pairs = Array.from({ length: Math.floor(rng() * 6) }, () => (maybe(0.1) ? pick(KEYS) : `${pick(KEYS)}=${pick(VALUES)}`));
  const url = pick(PATHS) + (pairs.length ? `?${pairs.join('&')}` : '');
  const headers = [['Host', pick(HOSTS)]];
  if (maybe(0.5)) headers.push(['X-Custom', `v${Math.floor(rng() * 100)}`]);
  if (maybe(0.6)) headers.push(['Accept', pick(ACCEPT)]);
  if (maybe(0.4)) headers.push(['Accept-Encoding', pick(ENCODINGS)]);
  if (maybe(0.3)) headers.push(['Accept-Charset', pick(CHARSETS)]);
  if (maybe(0.4)) headers.push(['Accept-Language', pick(LANGUAGES)]);
  if (maybe(0.1)) headers.push(['Accept', pick(ACCEPT)]); // a repeat, joined
  if (maybe(0.3)) headers.push(['X-Requested-With', pick(['XMLHttpRequest', 'xmlhttprequest', 'fetch'])]);
  if (maybe(0.3)) headers.push(['Cookie', pick(['a=1', 'session=abc; theme=dark', 's:signed=x'])]);
  if (maybe(0.3)) headers.push(['X-Latin', pick(LATIN)]);
  if (maybe(0.2)) headers.push(['X-Forwarded-For', pick(['203.0.113.9', '203.0.113.9, 10.0.0.1'])]);
  if (maybe(0.2)) headers.push(['X-Forwarded-Proto', 'https']);
  if (maybe(0.1)) headers.push(['X-Forwarded-Host', 'proxy.example']);
  if (maybe(0.3)) headers.push(['Range', pick(['bytes=0-99', 'bytes=0-99,50-150', 'bytes=-10', 'bytes=900-', 'bytes=2000-3000', 'items=1-2', 'bytes=x'])]);
  if (maybe(0.4)) headers.push(['If-None-Match', pick([...ETAGS, '*', '"v1", "v2"', 'W/"v2"'])]);
  if (maybe(0.3)) headers.push(['If-Modified-Since', pick(DATES)]);
  if (maybe(0.1)) headers.push(['Cache-Control', pick(['no-cache', 'max-age=0'])]);
  if (maybe(0.5)) headers.push(['X-Set-ETag', pick(ETAGS)]);
  if (maybe(0.4)) headers.push(['X-Set-Last-Modified', pick(DATES.slice(0, 2))]);
  if (maybe(0.2)) headers.push(['X-Set-Status', pick(['201', '304', '404', '500'])]);
  let body = Buffer.alloc(0);
  const kind = pick(['none', 'empty', 'json', 'text', 'form', 'multipart', 'binary', 'vendor-json']);
  if (method !== 'GET' && kind !== 'none') {
    const types = {
      empty: pick(['application/json', 'text/plain']),
      json: pick(['application/json', 'application/json; charset=utf-8']),
      text: 'text/plain',
      form: 'application/x-www-form-urlencoded',
      multipart: 'multipart/form-data; boundary=zz',
      binary: 'application/octet-stream',
      'vendor-json': 'application/vnd.api+json',
    };
    const bodies = {
      empty: '',
      json: pick(['{"a":1,"b":[true,null]}', '[1,2]', '"s"', '{}']),
      text: 'héllo wörld',
      form: 'a=1&b[c]=2',
      multipart: '--zz\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--zz--\r\n',
      binary: '',
      'vendor-json': '{"v":1}',
    };
    body = kind === 'binary' ? Buffer.from([0, 1, 255, 128]) : Buffer.from(bodies[kind]);
    headers.push(['Content-Type', types[kind]]);
    headers.push(['Content-Length', String(body.length)]);
  }
  headers.push(['Connection', 'close']);
  return { method, url, headers, body };
}

/** Sends `sample` as raw bytes (each header character one byte, as latin-1); resolves with the JSON answer. */
function send(port, { method, url, headers, body }) {
  return new Promise((resolve, reject) => {
    const head = `${method} ${url} HTTP/1.1\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
    const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body])));
    const chunks = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const answer = Buffer.concat(chunks).toString('utf8');
      const split = answer.indexOf('\r\n\r\n');
      if (!answer.startsWith('HTTP/1.1 200 ')) return reject(new Error(`express answered ${answer.slice(0, 200)}`));
      resolve(JSON.parse(answer.slice(split + 4)));
    });
  });
}

test('funcd agrees with express (as kubeless set it up) on 300 generated requests', async () => {
  const server = kubelessApp().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  const seen = { latin: 0, fresh: 0, accepts: 0, range: 0, xhr: 0 };
  try {
    const rng = random(20261206);
    for (let number = 0; number < 300; number += 1) {
      const sample = generated(rng);
      const { view: theirs, remote } = await send(port, sample);
      const ours = funcdView(sample, remote);
      assert.deepEqual(ours, theirs, `request ${number}: ${sample.method} ${sample.url} ${JSON.stringify(sample.headers)}`);
      // The oracle must have seen what the generator meant to test.
      if (/[\u0080-\u00ff]/.test(theirs.latin ?? '')) seen.latin += 1;
      if (theirs.fresh) seen.fresh += 1;
      if (typeof theirs.accepts[1] === 'string') seen.accepts += 1;
      if (Array.isArray(theirs.range)) seen.range += 1;
      if (theirs.xhr) seen.xhr += 1;
    }
  } finally {
    server.close();
  }
  for (const [what, count] of Object.entries(seen)) assert.ok(count >= 5, `only ${count} requests exercised ${what}`);
});
