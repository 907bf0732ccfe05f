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
