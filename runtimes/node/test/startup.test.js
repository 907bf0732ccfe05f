'use strict';

// What the glue loads of Node's own modules, which is most of funcd-node's cold start: Node 18
// compiles each built-in it loads and serialises its code cache, and this Node has no startup
// snapshot. A call answered with a string or an object must not wake the global Response (it
// loads undici, with crypto, web streams and worker_threads: 40 ms here), and the express-like
// response object, with node's http and stream modules, waits until a handler asks for it.
// Run alone in its process (node --test runs each file in its own), so nothing else loaded them.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { boot } = require('../funcd/host');
const { Recorder } = require('./recorder');

const loaded = (name) => process.moduleLoadList.includes(`NativeModule ${name}`);

/** The glue booted on fixtures/handlers.js' `handler`, answering into a Recorder. */
function started(handler) {
  const native = new Recorder();
  const glue = boot(native, { on() {}, stdout: process.stdout, stderr: process.stderr }, {
    modulePath: path.join(__dirname, 'fixtures', 'handlers.js'),
    handler,
    context: {},
  });
  assert.equal(glue.error, undefined);
  return { glue, native };
}

test('plain answers load neither undici nor http; the response object loads them on first use', async () => {
  const heavy = ['internal/deps/undici/undici', 'http', 'internal/webstreams/readablestream'];
  for (const name of heavy) assert.equal(loaded(name), false, `${name} loaded by requiring the glue`);
  const { glue, native } = started('echo');
  glue.call(1, 'POST', '/', ['content-type', 'application/json'], Buffer.from('{"a":1}'));
  glue.call(2, 'POST', '/', ['content-type', 'text/plain'], Buffer.from('text'));
  await native.finished(2);
  assert.equal(native.answer(1).body, '{"a":1}');
  assert.equal(native.answer(2).body, 'text');
  for (const name of heavy) assert.equal(loaded(name), false, `${name} loaded by a plain call`);

  const { glue: streamer, native: streaming } = started('sendStatus');
  streamer.call(3, 'GET', '/', [], undefined);
  await streaming.finished(3);
  assert.equal(streaming.answer(3).status, 418);
  assert.equal(streaming.answer(3).body, "I'm a Teapot");
  assert.equal(loaded('http'), true, 'sendStatus reads http.STATUS_CODES');
});
