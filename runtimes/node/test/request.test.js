'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { Request } = require('../funcd/request');

const raw = ['host', 'example.com:8080', 'content-type', 'application/json; charset=utf-8', 'x-a', '1', 'x-a', '2', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'referer', 'http://r'];

test('method, url, path, query with repeated keys', () => {
  const request = new Request('GET', '/p/q?x=1&y=a&y=b&z=%20', raw, Buffer.from('{}'));
  assert.equal(request.method, 'GET');
  assert.equal(request.url, '/p/q?x=1&y=a&y=b&z=%20');
  assert.equal(request.path, '/p/q');
  assert.deepEqual(request.query, { x: '1', y: ['a', 'b'], z: ' ' });
  assert.equal(request.hostname, 'example.com');
});

test('headers as node gives them: joined repeats, set-cookie as an array', () => {
  const request = new Request('GET', '/', raw, undefined);
  assert.equal(request.headers['x-a'], '1, 2');
  assert.deepEqual(request.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(request.get('X-A'), '1, 2');
  assert.equal(request.get('Referrer'), 'http://r');
  assert.equal(request.header('content-type'), 'application/json; charset=utf-8');
  assert.equal(request.body.length, 0);
});

test('an ASCII body handed over as a string: request.body is its Buffer, made once; a set body replaces it', () => {
  const request = new Request('POST', '/', raw, '{"a":1}');
  assert.equal(request.is('json'), 'json');
  assert.ok(Buffer.isBuffer(request.body));
  assert.equal(request.body.toString('latin1'), '{"a":1}');
  assert.equal(request.body, request.body);
  request.body = 'replaced';
  assert.equal(request.body, 'replaced');
  const parsed = new Request('POST', '/', raw, '{"a":1}');
  parsed.body = { a: 1 };
  assert.deepEqual(parsed.body, { a: 1 });
  assert.equal(parsed.param('a'), 1);
  const empty = new Request('GET', '/', [], undefined);
  assert.equal(empty.is('json'), null);
});

test('is(): short names, full types, wildcards; null without a body', () => {
  const request = new Request('POST', '/', raw, Buffer.from('{}'));
  assert.equal(request.is('json'), 'json');
  assert.equal(request.is('application/json'), 'application/json');
  assert.equal(request.is('application/*'), 'application/json');
  assert.equal(request.is('html', 'json'), 'json');
  assert.equal(request.is('text/*'), false);
  assert.equal(new Request('GET', '/', [], undefined).is('json'), null);
});

test('pipe() streams the body', async () => {
  const { Writable } = require('stream');
  const chunks = [];
  const sink = new Writable({
    write(chunk, encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  await new Promise((resolve) => new Request('POST', '/', [], Buffer.from('body')).pipe(sink).on('finish', resolve));
  assert.equal(Buffer.concat(chunks).toString(), 'body');
});

test("express's req beyond the common calls: route '*' with every method, param(), socket, res, host", () => {
  const { Host } = require('../funcd/host');
  const { Recorder } = require('./recorder');
  let seen;
  const host = new Host(new Recorder(), (event) => {
    const request = event.extensions.request;
    seen = {
      route: request.route.path,
      all: Object.keys(request.route.methods).length > 30 && request.route.methods.get && request.route.methods.delete,
      param: [request.param('x'), request.param('0'), request.param('missing', 'fallback')],
      socket: [request.socket.remoteAddress, request.socket.remoteFamily, request.connection.remoteAddress],
      sameResponse: request.res === event.extensions.response,
      host: request.host,
      ip: request.ip,
    };
    return 'ok';
  }, {});
  host.call(1, 'GET', '/a%20b?x=1', ['host', 'fn.example:80'], undefined, '::1');
  assert.deepEqual(seen, {
    route: '*', all: true, param: ['1', '/a b', 'fallback'], socket: ['::1', 'IPv6', '::1'], sameResponse: true, host: 'fn.example', ip: '::1',
  });
  // Kafka calls come from no socket.
  assert.equal(new Request('POST', '/', [], undefined).ip, undefined);
  // A path express could not decode (it answered 400 before the handler): params has it as sent.
  assert.deepEqual(new Request('GET', '/%E0%A4%A', [], undefined).params, { 0: '/%E0%A4%A' });
});

test('accepts, fresh and range-parser load only when a handler first asks', () => {
  const { execFileSync } = require('child_process');
  const script = `
    const { Request } = require(${JSON.stringify(require.resolve('../funcd/request'))});
    const request = new Request('GET', '/p?a[b]=1', ['host', 'h', 'accept', 'text/html'], undefined, '127.0.0.1');
    void [request.headers, request.query, request.path, request.get('host'), request.is('json'), request.ip, request.xhr];
    const loaded = () => Object.keys(require.cache).filter((file) => /\\/(accepts|negotiator|mime-types|mime-db|fresh|range-parser)\\//.test(file)).length;
    const before = loaded();
    void [request.accepts('html'), request.fresh, request.range(10)];
    console.log(JSON.stringify([before, loaded() > 0]));`;
  assert.deepEqual(JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })), [0, true]);
});
