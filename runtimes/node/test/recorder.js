'use strict';

// A stand-in for funcd-node's native object that keeps the replies the glue sends, so the glue
// can be run in a plain `node` process. End-to-end tests (Tests/FuncdEndToEndTests/NodeTests)
// run the same glue inside funcd-node.

const { COMPLETE, HEAD, CHUNK, END } = require('../funcd/host');

class Recorder {
  constructor({ pauseFirst = false } = {}) {
    this.replies = [];
    this.pauseFirst = pauseFirst;
    this.reply = this.reply.bind(this);
    this.waiters = [];
  }

  reply(id, kind, status, headers, body, error) {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(typeof body === 'string' ? Buffer.from(body) : body);
    this.replies.push({ id, kind, status, headers: headers || [], body: bytes, error });
    for (const waiter of this.waiters.splice(0)) waiter();
    // With pauseFirst, the first streamed write is told to wait for drain, as a slow client would.
    if (this.pauseFirst && (kind === HEAD || kind === CHUNK)) {
      this.pauseFirst = false;
      return false;
    }
    return true;
  }

  /** Resolves once a reply that ends call `id` (COMPLETE or END) has arrived. */
  async finished(id) {
    for (;;) {
      const done = this.replies.find((reply) => reply.id === id && (reply.kind === COMPLETE || reply.kind === END));
      if (done) return done;
      await new Promise((resolve) => this.waiters.push(resolve));
    }
  }

  /** The whole answer of call `id`: status, headers as an object, body text. */
  answer(id) {
    const mine = this.replies.filter((reply) => reply.id === id);
    const first = mine[0];
    const headers = {};
    for (let index = 0; index + 1 < first.headers.length; index += 2) headers[first.headers[index].toLowerCase()] = first.headers[index + 1];
    return {
      status: first.status,
      headers,
      body: Buffer.concat(mine.map((reply) => reply.body)).toString('utf8'),
      streamed: first.kind === HEAD,
      error: mine.map((reply) => reply.error).find(Boolean),
    };
  }
}

module.exports = { Recorder, COMPLETE, HEAD, CHUNK, END };
