// An ES-module handler for the Node end-to-end tests: a helper imported beside it, a package
// from node_modules beside it, and a top-level await that must finish before funcd serves.
import { helped } from './helper.mjs';
import pad from 'esm-fixture';

const loaded = await new Promise((resolve) => setTimeout(() => resolve(Date.now()), 1000));
console.error('top-level await done');

export function handler(event, context) {
  return { helped: helped(), padded: pad('7'), loaded: typeof loaded, data: event.data, name: context['function-name'] };
}
