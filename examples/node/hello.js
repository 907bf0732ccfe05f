'use strict';

// Handlers as the kubeless nodejs runtime called them: module.exports.<name>(event, context).

module.exports = {
  // GET: a greeting. funcd run examples/node/hello.js --handler hello
  hello: () => 'Hello world!',

  // POST JSON: the parsed data back, as JSON.
  echo: (event) => event.data,

  // Streams three lines through the express-like response, one every 100 ms.
  countdown: (event) => {
    const response = event.extensions.response;
    response.type('text');
    let left = 3;
    return new Promise((resolve) => {
      const tick = () => {
        response.write(`${left}\n`);
        if (--left === 0) {
          response.end('liftoff\n');
          resolve();
        } else {
          setTimeout(tick, 100);
        }
      };
      tick();
    });
  },
};
