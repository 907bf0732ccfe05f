'use strict';

// ES-module handlers: `.mjs`, or `.js` under a package.json with "type": "module". boot() then
// answers {ready}, a promise settled once the module (its imports, its top-level await) has run;
// funcd-node serves only after it settles (see Tests/FuncdEndToEndTests/NodeTests).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { boot, loadModule, isESModule, LoadError } = require('../funcd/host');
const { Recorder } = require('./recorder');

const FIXTURES = path.join(__dirname, 'fixtures');
const PROCESS = { on() {}, stdout: process.stdout, stderr: process.stderr };

async function started(file, handler = 'handler') {
  const native = new Recorder();
  const booted = boot(native, PROCESS, { modulePath: path.join(FIXTURES, file), handler, context: {} });
  assert.ok(booted.ready instanceof Promise, 'an ES module boots asynchronously');
  return { glue: await booted.ready, native };
}

async function answer(file, handler, data) {
  const { glue, native } = await started(file, handler);
  assert.equal(glue.error, undefined);
  glue.call(1, 'POST', '/', ['content-type', 'text/plain', 'content-length', String(data.length)], Buffer.from(data));
  await native.finished(1);
  return native.answer(1);
}

test('which files are ES modules: .mjs, and .js under "type": "module"; CommonJS boots synchronously as before', () => {
  assert.equal(isESModule(path.join(FIXTURES, 'esm/handler.mjs')), true);
  assert.equal(isESModule(path.join(FIXTURES, 'esm_type/handler.js')), true);
  assert.equal(isESModule(path.join(FIXTURES, 'handlers.js')), false);
  assert.equal(isESModule(path.join(FIXTURES, 'esm/node_modules/esm-dep/index.js')), true, 'its package.json says module');
  const booted = boot(new Recorder(), PROCESS, { modulePath: path.join(FIXTURES, 'handlers.js'), handler: 'echo', context: {} });
  assert.equal(booted.ready, undefined);
  assert.equal(typeof booted.call, 'function');
});

test('an .mjs handler: relative import, package from node_modules, top-level await done before the first call', async () => {
  const reply = await answer('esm/handler.mjs', 'handler', 'hi');
  assert.equal(reply.status, 200);
  assert.deepEqual(JSON.parse(reply.body), { greeting: 'AWAITED!', padded: '007', data: 'hi' });
});

test('a .js handler under package.json "type": "module" runs as a module (no require)', async () => {
  const reply = await answer('esm_type/handler.js', 'handler', 'x');
  assert.equal(reply.body, 'module undefined x');
});

test('default exports: an object holding the handler, or the handler itself', async () => {
  assert.equal((await answer('esm/default_object.mjs', 'handler', '')).body, 'from the default object');
  assert.equal((await answer('esm/default_function.mjs', 'anything', 'd')).body, 'default function d');
});

test('ES modules that cannot serve: one clear line each, as for CommonJS', async () => {
  const failures = [
    ['esm/missing.mjs', 'handler', /esm\/missing\.mjs: no such file/],
    ['esm/handler.mjs', 'nope', /handler\.mjs: no function 'nope' in the exports \(it has: handler, notAFunction\)/],
    ['esm/handler.mjs', 'notAFunction', /'notAFunction' is not a function \(it is number\)/],
    ['esm/bad_syntax.mjs', 'handler', /bad_syntax\.mjs:2: SyntaxError: Unexpected token ';'$/],
    ['esm/throws.mjs', 'handler', /throws\.mjs:2: Error: no config at load while loading .*throws\.mjs$/],
    ['esm/missing_import.mjs', 'handler', /missing_import\.mjs: Error: Cannot find module '.*not-here\.mjs' imported from .*\(ERR_MODULE_NOT_FOUND\)/],
  ];
  for (const [file, handler, message] of failures) {
    await assert.rejects(loadModule(path.join(FIXTURES, file), handler), (error) => error instanceof LoadError && message.test(error.message), file);
    if (file !== 'esm/missing.mjs') {
      const { glue } = await started(file, handler);
      assert.match(glue.error, message, file);
      assert.equal(glue.call, undefined);
    }
  }
});
