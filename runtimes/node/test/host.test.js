'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { boot, load, decodeData, LoadError } = require('../funcd/host');
const { Recorder, HEAD } = require('./recorder');

const FIXTURES = path.join(__dirname, 'fixtures');
const CONTEXT = { 'function-name': 'f', timeout: 3, runtime: 'nodejs18', 'memory-limit': '128Mi' };

function start(handler, native = new Recorder()) {
  const glue = boot(native, { on() {}, stdout: process.stdout, stderr: process.stderr }, {
    modulePath: path.join(FIXTURES, 'handlers.js'),
    handler,
    context: CONTEXT,
  });
  assert.equal(glue.error, undefined);
  return { glue, native };
}

function header(name, value) {
  return [name, value];
}

test('JSON data is parsed and answered as JSON', async () => {
  const { glue, native } = start('echo');
  glue.call(1, 'POST', '/', [...header('content-type', 'application/json; charset=utf-8')], Buffer.from('{"a":[1]}'));
  await native.finished(1);
  const answer = native.answer(1);
  assert.equal(answer.status, 200);
  assert.equal(answer.body, '{"a":[1]}');
  assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8');
});

test('a non-JSON body is a string, no body {} (as body-parser left it), event headers and context pass through', async () => {
  const { glue, native } = start('event');
  glue.call(1, 'POST', '/', ['event-id', 'e1', 'event-type', 't', 'content-type', 'text/plain'], Buffer.from('héllo'));
  glue.call(2, 'GET', '/', [], undefined);
  const first = JSON.parse(native.answer(1).body);
  assert.equal(first.event.data, 'héllo');
  assert.equal(first.event['event-id'], 'e1');
  assert.equal(first.event['event-type'], 't');
  assert.deepEqual(first.context, CONTEXT);
  assert.deepEqual(JSON.parse(native.answer(2).body).event.data, {});
});

test('invalid JSON is a 400 that names the problem, not a handler failure', () => {
  const { glue, native } = start('echo');
  glue.call(1, 'POST', '/', ['content-type', 'application/json'], Buffer.from('{nope'));
  const answer = native.answer(1);
  assert.equal(answer.status, 400);
  assert.match(answer.body, /not valid JSON/);
});

test('return values: string as is, bytes, undefined empty, booleans stringified', () => {
  const { native } = start('text');
  const cases = { text: 'text', bytes: 'hi', nothing: '', boolean: 'true' };
  let id = 0;
  for (const [handler, expected] of Object.entries(cases)) {
    const { glue } = start(handler, native);
    glue.call(++id, 'GET', '/', [], undefined);
    const answer = native.answer(id);
    assert.equal(answer.status, 200, handler);
    assert.equal(answer.body, expected, handler);
    assert.equal(answer.headers['content-type'], undefined, handler);
  }
});

test('a thrown exception and a BigInt result are 500s with the stack for the log', () => {
  for (const handler of ['throws', 'bigint']) {
    const { glue, native } = start(handler);
    glue.call(1, 'GET', '/', [], undefined);
    const answer = native.answer(1);
    assert.equal(answer.status, 500, handler);
    assert.equal(answer.body, 'Internal Server Error');
    assert.match(answer.error, handler === 'throws' ? /TypeError: bad input/ : /BigInt/);
  }
});

test('promises and WHATWG Responses are awaited', async () => {
  const { glue, native } = start('later');
  glue.call(1, 'GET', '/', [], undefined);
  assert.equal((await native.finished(1)).body.toString(), 'later');
  const fetched = start('fetch');
  fetched.glue.call(2, 'GET', '/', [], undefined);
  await fetched.native.finished(2);
  const answer = fetched.native.answer(2);
  assert.equal(answer.status, 418);
  assert.equal(answer.body, '{"ok":1}');
  assert.equal(answer.headers['content-type'], 'application/json');
});

test('writes through the response stream: head with status and headers, then chunks, then end', async () => {
  const { glue, native } = start('streams');
  glue.call(1, 'GET', '/', [], undefined);
  await native.finished(1);
  const answer = native.answer(1);
  assert.equal(answer.streamed, true);
  assert.equal(answer.status, 206);
  assert.equal(answer.headers['x-part'], '1');
  assert.equal(answer.body, 'abc');
});

test('send() and an untouched response give whole answers', async () => {
  const sends = start('sends');
  sends.glue.call(1, 'GET', '/', [], undefined);
  await sends.native.finished(1);
  assert.deepEqual([sends.native.answer(1).status, sends.native.answer(1).body, sends.native.answer(1).streamed], [404, 'missing', false]);
  assert.equal(sends.native.answer(1).headers['content-type'], 'text/html; charset=utf-8');
  const untouched = start('untouched');
  untouched.glue.call(2, 'GET', '/', [], undefined);
  await untouched.native.finished(2);
  assert.deepEqual([untouched.native.answer(2).status, untouched.native.answer(2).body], [200, '']);
});

test('a streaming handler that returned keeps its call open until the response ends', async () => {
  const { glue, native } = start('writesLater');
  glue.call(1, 'GET', '/', [], undefined);
  assert.equal(native.replies.length, 1);
  assert.equal(native.replies[0].kind, HEAD);
  await native.finished(1);
  assert.equal(native.answer(1).body, '12');
});

test('a handler failing after its stream started ends the stream with the error', async () => {
  const { glue, native } = start('fails');
  glue.call(1, 'GET', '/', [], undefined);
  const end = await native.finished(1);
  assert.match(end.error, /broke mid-stream/);
});

test('a paused stream goes on after drain; cancel drops what comes later', async () => {
  const native = new Recorder({ pauseFirst: true });
  const { glue } = start('writesLater', native);
  glue.call(1, 'GET', '/', [], undefined);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(native.replies.length, 1, 'paused after the first write');
  glue.drain(1);
  await native.finished(1);
  assert.equal(native.answer(1).body, '12');

  const cancelled = start('writesLater');
  cancelled.glue.call(2, 'GET', '/', [], undefined);
  cancelled.glue.cancel(2);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(cancelled.native.replies.length, 1, 'nothing after the cancel');
});

test('load: a module that is the handler, and one clear line for each way loading fails', () => {
  assert.equal(typeof load(path.join(FIXTURES, 'default_export.js'), 'anything'), 'function');
  const failures = [
    ['missing.js', 'handler', /missing\.js: no such file/],
    ['handlers.js', 'nope', /no function 'nope' in module.exports \(it has: echo,/],
    ['not_function.js', 'handler', /'handler' is not a function \(it is string\)/],
    ['bad_syntax.js', 'handler', /bad_syntax\.js:\d+: SyntaxError/],
  ];
  for (const [file, handler, message] of failures) {
    assert.throws(() => load(path.join(FIXTURES, file), handler), (error) => error instanceof LoadError && message.test(error.message));
  }
  const booted = boot(new Recorder(), process, { modulePath: path.join(FIXTURES, 'missing.js'), handler: 'h', context: {} });
  assert.match(booted.error, /no such file/);
});

test('decodeData: JSON by media type only; no body and multipart/form-data {}; an empty body an empty Buffer', () => {
  assert.deepEqual(decodeData(Buffer.from('[1]'), 'application/json'), [1]);
  assert.equal(decodeData(Buffer.from('[1]'), 'text/plain'), '[1]');
  assert.deepEqual(decodeData(Buffer.from('--x'), 'multipart/form-data; boundary=x'), {});
  assert.deepEqual(decodeData(Buffer.alloc(0), undefined, false), {});
  const empty = decodeData(Buffer.alloc(0), 'application/json', true);
  assert.ok(Buffer.isBuffer(empty) && empty.length === 0);
  assert.equal(decodeData(Buffer.from('--x'), 'multipart/mixed; boundary=x'), '--x');
});

test('decodeData: an ASCII body passed as the string of its bytes decodes as its Buffer does', () => {
  for (const [text, type] of [['{"a":[1,"x"]}', 'application/json'], ['a=1&b=2', 'application/x-www-form-urlencoded'], ['plain', undefined]]) {
    assert.deepEqual(decodeData(text, type), decodeData(Buffer.from(text, 'latin1'), type));
  }
  assert.deepEqual(decodeData('--x', 'multipart/form-data; boundary=x'), {});
  assert.throws(() => decodeData('{nope', 'application/json'), SyntaxError);
});

test('a structured CloudEvent reads the same from a Buffer body and from an ASCII body passed as a string', () => {
  const { glue, native } = start('event');
  const document = '{"specversion":"1.0","id":"c1","source":"/s","type":"t.created","data":{"n":1}}';
  const headers = ['content-type', 'application/cloudevents+json'];
  glue.call(1, 'POST', '/', headers, Buffer.from(document), undefined, undefined, undefined, true);
  glue.call(2, 'POST', '/', headers, document, undefined, undefined, undefined, true);
  const [first, second] = [1, 2].map((id) => JSON.parse(native.answer(id).body).event);
  assert.deepEqual(first.data, { n: 1 });
  assert.equal(first['event-id'], 'c1');
  assert.deepEqual(second, first);
});

test('a Kafka message gets topic, partition, offset, key, timestamp and headers under extensions', () => {
  const { glue, native } = start('event');
  const { kafkaExtensions } = require('../funcd/host');
  const headers = ['event-namespace', 'kafkatriggers.kubeless.io', 'funcd-kafka-topic', 'orders', 'funcd-kafka-partition', '2',
    'funcd-kafka-offset', '41', 'funcd-kafka-key', 'k', 'funcd-kafka-timestamp', '1700000000000', 'funcd-kafka-header-trace', 'abc'];
  assert.deepEqual(kafkaExtensions(headers),
    { topic: 'orders', partition: 2, offset: 41, key: 'k', timestamp: 1700000000000, headers: { trace: 'abc' } });
  glue.call(1, 'POST', '/', headers, Buffer.from('plain'));
  assert.equal(JSON.parse(native.answer(1).body).event.data, 'plain');
});
