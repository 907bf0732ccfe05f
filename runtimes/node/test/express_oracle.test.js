'use strict';

// funcd's Node event and request against express itself (Debian's node-express and
// node-body-parser), the oracle: a seeded stream of requests goes over real HTTP to an express app
// set up as kubeless's nodejs runtime set it up (body-parser raw for every type but
// multipart/form-data, then json and extended urlencoded), and the same requests are given to
// funcd's glue; `event.data`, `req.query`, `req.path`, `req.hostname`, `req.get` and `req.is`
// must agree.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const express = require('express');
const bodyParser = require('body-parser');
const { Request } = require('../funcd/request');
const { decodeData } = require('../funcd/host');

/** What a handler sees, made comparable (a Buffer as its base64 and a mark). */
function view(data, request) {
  return {
    data: Buffer.isBuffer(data) ? { buffer: data.toString('base64') } : data,
    dataType: Buffer.isBuffer(data) ? 'buffer' : typeof data,
    query: request.query,
    path: request.path,
    hostname: request.hostname,
    method: request.method,
    custom: request.get('X-Custom') ?? null,
    contentType: request.get('content-type') ?? null,
    is: ['json', 'application/json', 'text/*', 'urlencoded', 'multipart', '+json'].map((type) => request.is(type)),
  };
}

/** kubeless's runtime: body-parser, then data decoded as kubeless.js did. */
function kubelessApp() {
  const app = express();
  app.use(bodyParser.raw({ type: (req) => !req.is('multipart/form-data'), limit: '1mb' }));
  app.use(bodyParser.json({ limit: '1mb' }));
  app.use(bodyParser.urlencoded({ limit: '1mb', extended: true }));
  app.use((req, res) => {
    let data = req.body;
    if (!req.is('multipart/form-data') && req.body.length > 0) {
      data = req.is('application/json') ? JSON.parse(req.body.toString('utf-8')) : req.body.toString('utf-8');
    }
    // The headers as they arrived (node's client adds some): funcd's glue is given the same.
    res.json({ view: view(data, req), raw: req.rawHeaders });
  });
  return app;
}

/** funcd's glue given the same request, as funcd-node's host does (header names lower-cased). */
function funcdView(method, url, raw, body) {
  const flat = [];
  let contentType;
  let hasBody = false;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const lower = raw[index].toLowerCase();
    const value = raw[index + 1];
    flat.push(lower, value);
    if (lower === 'content-type') contentType = value;
    if (lower === 'content-length' || lower === 'transfer-encoding') hasBody = true;
  }
  const request = new Request(method, url, flat, body);
  return JSON.parse(JSON.stringify(view(decodeData(body, contentType, hasBody), request)));
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

function generated(rng) {
  const pick = (list) => list[Math.floor(rng() * list.length)];
  const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
  const pairs = Array.from({ length: Math.floor(rng() * 6) }, () => (rng() < 0.1 ? pick(KEYS) : `${pick(KEYS)}=${pick(VALUES)}`));
  const url = pick(['/', '/api', '/api/items', '/x.json']) + (pairs.length ? `?${pairs.join('&')}` : '');
  const headers = [['Host', pick(['fn.example:8080', 'localhost', 'fn.example'])]];
  if (rng() < 0.5) headers.push(['X-Custom', `v${Math.floor(rng() * 100)}`]);
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
      binary: '\u0000\u0001\u00ff',
      'vendor-json': '{"v":1}',
    };
    body = kind === 'binary' ? Buffer.from([0, 1, 255, 128]) : Buffer.from(bodies[kind]);
    headers.push(['Content-Type', types[kind]]);
    headers.push(['Content-Length', String(body.length)]);
  }
  return { method, url, headers, body };
}

function send(port, { method, url, headers, body }) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method, path: url, headers: Object.fromEntries(headers), agent: false }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    });
    request.on('error', reject);
    request.end(body);
  });
}

test('funcd agrees with express (as kubeless set it up) on 300 generated requests', async () => {
  const server = kubelessApp().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  try {
    const rng = random(20261206);
    for (let number = 0; number < 300; number += 1) {
      const sample = generated(rng);
      const { view: theirs, raw } = await send(port, sample);
      const ours = funcdView(sample.method, sample.url, raw, sample.body);
      assert.deepEqual(ours, theirs, `request ${number}: ${sample.method} ${sample.url} ${JSON.stringify(raw)}`);
    }
  } finally {
    server.close();
  }
});
