'use strict';

// Header names and values a handler sets on event.extensions.response: refused as node's http
// refuses them (a TypeError with ERR_INVALID_HTTP_TOKEN or ERR_INVALID_CHAR), so that no byte of
// a value can end its field or start another; and the headers a handler is handed keep every byte.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { boot } = require('../funcd/host');
const { Response } = require('../funcd/response');
const { Recorder } = require('./recorder');

const INJECTION = '/home\0Set-Cookie\0session=attacker';
const BAD_VALUES = ['a\0b', 'a\rb', 'a\nb', 'a\r\nSet-Cookie: x=1', '\0', 'a\x01', 'a\x7f'];
const BAD_NAMES = ['', 'a b', 'a:b', 'a\0b', 'a\r\nb', 'é', '(x)', 'a/b'];

function response() {
  // A call that takes answers and does nothing with them.
  return new Response({ cancelled: false, stream: () => true, finishStream() {}, abortStream() {} });
}

function refusesValue(code) {
  return (error) => error instanceof TypeError && error.code === code && /^TypeError \[ERR_/.test(error.stack);
}

test('every way of setting a header refuses NUL, CR, LF and other controls in a value', () => {
  for (const value of BAD_VALUES) {
    const setters = [
      (r) => r.setHeader('X-A', value),
      (r) => r.setHeader('X-A', ['ok', value]),
      (r) => r.set('X-A', value),
      (r) => r.set({ 'X-A': value }),
      (r) => r.header('X-A', value),
      (r) => r.append('X-A', value),
      (r) => r.set('X-A', 'ok').append('X-A', value),
      (r) => r.location(value),
      (r) => r.redirect(value),
      (r) => r.redirect(301, value),
      (r) => r.writeHead(200, { 'X-A': value }),
      (r) => r.writeHead(200, 'OK', ['X-A', value]),
      (r) => r.type(`text/plain${value}`),
      (r) => r.contentType(`text/plain${value}`),
    ];
    for (const set of setters) {
      const subject = response();
      assert.throws(() => set(subject), refusesValue('ERR_INVALID_CHAR'), `${set} with ${JSON.stringify(value)}`);
      assert.ok(subject.flatHeaders().every((item) => !item.includes(value)), 'nothing of a refused value is kept');
    }
  }
});

test('every way of setting a header refuses a name that is not a token', () => {
  for (const name of BAD_NAMES) {
    const setters = [
      (r) => r.setHeader(name, 'v'),
      (r) => r.set(name, 'v'),
      (r) => r.set({ [name]: 'v' }),
      (r) => r.header(name, 'v'),
      (r) => r.append(name, 'v'),
      (r) => r.writeHead(200, { [name]: 'v' }),
      (r) => r.writeHead(200, [name, 'v']),
    ];
    for (const set of setters) {
      const subject = response();
      assert.throws(() => set(subject), refusesValue('ERR_INVALID_HTTP_TOKEN'), `${set} with ${JSON.stringify(name)}`);
      assert.deepEqual(subject.flatHeaders(), []);
    }
  }
});

test('values node accepts stay accepted: tabs, latin1, UTF-8 text, numbers', () => {
  const subject = response();
  subject.set('X-Tab', 'a\tb').set('X-Latin', 'caf\xe9 \xff').set('X-Text', '日本').set('X-N', 3);
  subject.location('/home?next=%00');
  subject.append('X-Tab', 'c');
  assert.deepEqual(subject.flatHeaders(), [
    'X-Tab', 'a\tb', 'X-Tab', 'c', 'X-Latin', 'caf\xe9 \xff', 'X-Text', '日本', 'X-N', '3', 'Location', '/home?next=%00',
  ]);
});

function start(handler) {
  const native = new Recorder();
  const glue = boot(native, { on() {}, stdout: process.stdout, stderr: process.stderr }, {
    modulePath: path.join(__dirname, 'fixtures', 'handlers.js'),
    handler,
    context: {},
  });
  return { glue, native };
}

test('a redirect to a target holding NUL is a 500 with the stack, never an injected header', async () => {
  const { glue, native } = start('redirects');
  glue.call(1, 'GET', `/?next=${encodeURIComponent(INJECTION)}`, [], undefined);
  await native.finished(1);
  const answer = native.answer(1);
  assert.equal(answer.status, 500);
  assert.match(answer.error, /TypeError \[ERR_INVALID_CHAR\]: Invalid character in header content \["Location"\]/);
  assert.equal(answer.headers['set-cookie'], undefined);
  assert.equal(answer.headers.location, undefined);
  glue.call(2, 'GET', '/?next=%2Fhome', [], undefined);
  await native.finished(2);
  assert.equal(native.answer(2).status, 302);
  assert.equal(native.answer(2).headers.location, '/home');
});

test('request and Kafka header values keep NUL, CR, LF and 0xFF, and the fields after them', async () => {
  const { glue, native } = start('headers');
  const awkward = 'a\0b\r\nc\xff';
  glue.call(1, 'GET', '/', ['x-awkward', awkward, 'content-type', 'text/plain', 'x-after', '1'], undefined);
  await native.finished(1);
  assert.deepEqual(JSON.parse(native.answer(1).body), { 'x-awkward': awkward, 'content-type': 'text/plain', 'x-after': '1' });

  const { kafkaExtensions } = require('../funcd/host');
  const headers = ['funcd-kafka-topic', 'orders', 'funcd-kafka-key', `k\0funcd-kafka-topic\0spoofed`, 'funcd-kafka-partition', '2',
    'funcd-kafka-offset', '41', 'funcd-kafka-header-trace', awkward];
  assert.deepEqual(kafkaExtensions(headers), {
    key: 'k\0funcd-kafka-topic\0spoofed', headers: { trace: awkward }, topic: 'orders', partition: 2, offset: 41,
  });
});
