'use strict';

// The Node baseline for bench/run: Node's own http module in one process, doing what the funcd
// handlers do (hello: a fixed text; echo: JSON parsed and written back).
// node bench/node_http.js hello|echo PORT HOST
const http = require('http');

const [app, port, host] = process.argv.slice(2);
http.createServer((request, response) => {
  if (app === 'hello') return response.end('Hello world!');
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    response.setHeader('Content-Type', 'application/json');
    response.end(JSON.stringify(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
  });
}).listen(Number(port), host);
