'use strict';

// CloudEvents v1.0 in the kubeless event: what funcd's host found in a request (binary mode: the
// attributes, read and checked in Swift; structured mode: the body is the event) put where a
// handler finds it, and a returned event answered in structured mode. The event keeps its
// kubeless shape: `data` is the event's data, the `event-*` fields a caller did not send are
// filled from the event, and every attribute is in `event.extensions.cloudevent`.

const { bodyText } = require('./request');

const STRUCTURED = 'application/cloudevents+json';
const REQUIRED = ['id', 'source', 'type'];
const FILLED = [['event-id', 'id'], ['event-type', 'type'], ['event-time', 'time'], ['event-namespace', 'source']];
const ATTRIBUTE_NAME = /^[a-z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A complete structured event whose data cannot be read: the request's 400. */
class CloudEventError extends Error {}

/**
 * Fills `event` from `cloudevent`: an array [name, value, ...] of attributes (binary mode:
 * `data` stays what the body gave it), or true (structured: `body` is the event; when it is no
 * complete v1.0 event, `event` is left as any request's).
 */
function apply(event, cloudevent, body) {
  let attributes;
  if (cloudevent === true) {
    const parsed = structured(body);
    if (parsed === undefined) return;
    attributes = parsed.attributes;
    event.data = parsed.data;
  } else {
    attributes = {};
    for (let index = 0; index + 1 < cloudevent.length; index += 2) attributes[cloudevent[index]] = cloudevent[index + 1];
  }
  for (const [field, name] of FILLED) {
    if (event[field] === undefined && attributes[name] !== undefined) event[field] = attributes[name];
  }
  event.extensions.cloudevent = attributes;
}

/**
 * `{attributes, data}` of a structured event, or undefined when `body` is no complete event.
 * `body`: a Buffer, or an ASCII body as the string of its bytes (Request#_bodyBytes).
 */
function structured(body) {
  let document;
  try {
    document = JSON.parse(body === undefined ? '' : bodyText(body));
  } catch {
    return undefined;
  }
  if (!isEvent(document)) return undefined;
  const attributes = {};
  for (const name of Object.keys(document)) {
    if (name !== 'data' && name !== 'data_base64') attributes[name] = document[name];
  }
  if (Object.prototype.hasOwnProperty.call(document, 'data_base64')) {
    if (Object.prototype.hasOwnProperty.call(document, 'data')) throw new CloudEventError('the event has both data and data_base64');
    const encoded = document.data_base64;
    if (typeof encoded !== 'string') throw new CloudEventError('data_base64 is not a string');
    if (!BASE64.test(encoded)) throw new CloudEventError('data_base64 is not base64');
    return { attributes, data: Buffer.from(encoded, 'base64') };
  }
  return { attributes, data: document.data };
}

/** Whether `document` is a complete v1.0 event. */
function isEvent(document) {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return false;
  if (document.specversion !== '1.0') return false;
  for (const name of REQUIRED) {
    if (typeof document[name] !== 'string' || document[name] === '') return false;
  }
  for (const name of Object.keys(document)) {
    if (name !== 'data' && name !== 'data_base64' && !ATTRIBUTE_NAME.test(name)) return false;
  }
  return true;
}

/** A returned event as a structured answer (bytes data as `data_base64`), or undefined. */
function encodeEvent(value) {
  if (!isEvent(value)) return undefined;
  let document = value;
  if (ArrayBuffer.isView(value.data)) {
    document = { ...value };
    delete document.data;
    document.data_base64 = Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength).toString('base64');
  }
  return { status: 200, headers: ['Content-Type', STRUCTURED], body: JSON.stringify(document) };
}

module.exports = { apply, encodeEvent, CloudEventError };
