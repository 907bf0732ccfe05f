'use strict';

// Handlers for the Node end-to-end tests: one per row of the contract.
const helper = require('./helper');

module.exports = {
  hello: () => 'hello world',
  event: (event, context) => ({
    data: event.data,
    dataType: Buffer.isBuffer(event.data) ? 'buffer' : typeof event.data,
    'event-id': event['event-id'] ?? null,
    'event-type': event['event-type'] ?? null,
    'event-time': event['event-time'] ?? null,
    'event-namespace': event['event-namespace'] ?? null,
    context,
  }),
  request: (event) => {
    const request = event.extensions.request;
    return {
      method: request.method,
      url: request.url,
      path: request.path,
      query: request.query,
      header: request.get('X-Custom'),
      headers: request.headers['x-custom'],
      isJSON: request.is('json'),
      body: request.body.toString('utf8'),
    };
  },
  // The body's bytes as request.body holds them, beside what event.data made of them.
  bodyBytes: (event) => {
    const request = event.extensions.request;
    return {
      isBuffer: Buffer.isBuffer(request.body),
      hex: request.body.toString('hex'),
      data: event.data,
    };
  },
  // express's req beyond the common calls; fresh against an ETag the handler sets.
  negotiation: (event) => {
    const request = event.extensions.request;
    event.extensions.response.set('ETag', '"v1"');
    return {
      ip: request.ip ?? null,
      ips: request.ips,
      protocol: request.protocol,
      secure: request.secure,
      accepts: request.accepts('json', 'html'),
      encoding: request.acceptsEncodings('br', 'gzip'),
      language: request.acceptsLanguages('en', 'fr'),
      xhr: request.xhr,
      subdomains: request.subdomains,
      fresh: request.fresh,
      params: request.params,
      originalUrl: request.originalUrl,
      baseUrl: request.baseUrl,
      cookies: typeof request.cookies,
    };
  },
  string: () => 'plain text',
  // Every width of UTF-8 (1 to 4 bytes) and a lone surrogate, which has no UTF-8 and becomes U+FFFD.
  unicode: () => 'a\u00e9\u6f22\u{1F642}\ud800z',
  latin1: () => 'caf\u00e9 cr\u00e8me \u00ff',
  // An answer past 1 MiB of UTF-16 units, whose UTF-8 is counted before it is written.
  large: () => '\u00e9'.repeat(600 * 1024) + 'end',
  object: () => ({ answer: 42 }),
  nothing: () => undefined,
  number: () => 7,
  nullValue: () => null,
  buffer: () => Buffer.from([0, 1, 2, 255]),
  fetchResponse: () => new Response('created', { status: 201, headers: { 'X-Made-By': 'fetch' } }),
  promise: async (event) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { waited: true, data: event.data };
  },
  response: (event) => {
    event.extensions.response.status(202).set('X-Through', 'response').json({ through: 'response' });
  },
  // res.redirect(req.query.next), as an open-redirect-prone handler writes it.
  redirect: (event) => {
    event.extensions.response.redirect(event.extensions.request.query.next);
  },
  statusWithValue: (event) => {
    event.extensions.response.status(201);
    return 'made';
  },
  stream: (event) => {
    const response = event.extensions.response;
    response.setHeader('Content-Type', 'text/plain');
    response.write('first\n');
    setTimeout(() => response.write('second\n'), 300);
    setTimeout(() => response.end('last\n'), 600);
  },
  pipe: (event) => {
    const { Readable } = require('stream');
    Readable.from(['a', 'b', 'c'].map((letter) => letter.repeat(1000))).pipe(event.extensions.response);
  },
  helper: () => helper.greet('node'),
  package: () => require('leftpad-fixture')('7', 3),
  builtin: () => require('os').EOL === '\n' && typeof require('crypto').randomUUID(),
  throws: () => {
    throw new Error('handler broke');
  },
  rejects: async () => {
    throw new Error('promise broke');
  },
  spin: () => {
    for (;;);
  },
  spinLater: async () => {
    await new Promise((resolve) => setTimeout(resolve, 10));
    for (;;);
  },
  spinInTimer: () => {
    setTimeout(() => {
      for (;;);
    }, 10);
    return new Promise(() => {});
  },
  never: () => new Promise(() => {}),
  exits: () => process.exit(3),
  log: () => {
    console.log('logged from the handler');
    return 'logged';
  },
  // Framing and header attacks (issue 12).
  noContent: (event) => {
    event.extensions.response.sendStatus(204);
  },
  noContentEcho: (event) => {
    event.extensions.response.status(204).send(event.extensions.request.body);
  },
  redirect: (event) => {
    event.extensions.response.redirect(event.extensions.request.query.next);
  },
  // Answers, and leaves behind a timer that holds the loop for good.
  spinAfterAnswer: () => {
    setTimeout(() => {
      for (;;);
    }, 0);
    return 'armed';
  },
};

// One server, every case: GET /<name> runs module.exports.<name>.
module.exports.route = (event, context) => {
  const name = event.extensions.request.path.slice(1);
  const handler = module.exports[name];
  if (typeof handler !== 'function' || name === 'route') throw new Error(`no handler ${name}`);
  return handler(event, context);
};
