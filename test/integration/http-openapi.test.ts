/**
 * `GET /openapi.json` against the API it describes: real requests of every endpoint, good
 * and bad, and each response validated against the document with a real JSON Schema
 * validator (ajv, draft 2020-12, which OpenAPI 3.1 schemas are).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodes, useTestRedis, type StartedNodes } from '../support/http-harness.js';

const TOKEN = 'openapi-token';
const json = { 'Content-Type': 'application/json' };

useTestRedis();

let open: StartedNodes;
let secured: StartedNodes;
let doc: { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>> } & Record<string, unknown>;
let ajv: Ajv2020;
const exercised = new Set<string>();
const nodeUrls: Record<string, string> = {};

beforeAll(async () => {
  open = await startNodes({ label: 'openapi', ids: ['A', 'B'], node: { limits: { maxValueBytes: 1000, maxKeyBytes: 64 } }, http: { maxBodyBytes: 4096, nodeUrls } });
  for (const s of open.servers) nodeUrls[s.node.id] = s.url;
  secured = await startNodes({ label: 'openapi-auth', http: { authToken: TOKEN } });
  const res = await request(url()).get('/openapi.json');
  expect(res.status).toBe(200);
  doc = res.body;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(doc, 'api');
});
afterAll(async () => {
  await open?.close();
  await secured?.close();
});

const url = () => (open.servers[0] as (typeof open.servers)[number]).url;
const securedUrl = () => (secured.servers[0] as (typeof secured.servers)[number]).url;
const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** Validates `res` against the document's response for `template`/`method`/its status. */
function conforms(res: request.Response, method: string, template: string, document = doc, validator = ajv): void {
  const operation = document.paths[template]?.[method];
  expect(operation, `${method.toUpperCase()} ${template} is in the document`).toBeDefined();
  const response = operation?.responses[String(res.status)];
  expect(response, `${method.toUpperCase()} ${template} documents status ${res.status}`).toBeDefined();
  exercised.add(`${method} ${template}`);
  const type = String(res.headers['content-type'] ?? '').split(';')[0] as string;
  const media = response?.content?.[type];
  expect(media, `${method.toUpperCase()} ${template} ${res.status} documents ${type}`).toBeDefined();
  if (type !== 'application/json') return;
  const validate = validator.compile({ $ref: `api#/${pointer('paths', template, method, 'responses', String(res.status), 'content', type, 'schema')}` });
  const ok = validate(res.body);
  expect(ok, `${method.toUpperCase()} ${template} ${res.status}: ${validator.errorsText(validate.errors)} in ${JSON.stringify(res.body).slice(0, 300)}`).toBe(true);
}

describe('GET /openapi.json', () => {
  it('should be OpenAPI 3.1 with every error code and the auth schemes', () => {
    expect(doc.openapi).toBe('3.1.0');
    const text = JSON.stringify(doc);
    for (const code of ['invalid_key', 'unauthorized', 'not_found', 'payload_too_large', 'key_too_long', 'redis_unavailable', 'node_closed', 'transaction_conflict']) {
      expect(text).toContain(code);
    }
    expect(doc.components).toMatchObject({ securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' }, basicAuth: { scheme: 'basic' } } });
    // Bounds come from the node's own limits, through the same schemas that validate.
    const batchBody = JSON.stringify((doc.paths['/batch'] as unknown as { post: { requestBody: unknown } }).post.requestBody);
    expect(batchBody).toContain('"maxItems":1000');
    expect(text).toContain('"maximum":31536000000');
    expect(text).toContain('at most 64 UTF-8 bytes');
  });

  it('should describe every response of every endpoint, good and bad', async () => {
    const api = () => request(url());
    const cases: Array<[string, string, () => Promise<request.Response>]> = [
      ['put', '/keys/{key}', () => api().put('/keys/k').set(json).send('{"value": {"a": [1, null]}, "ttlMs": 60000}')],
      ['put', '/keys/{key}', () => api().put('/keys/k').set(json).send('{"value": 1, "ttl": 5}')],
      ['put', '/keys/{key}', () => api().put('/keys/k').set(json).send('{"value": ')],
      ['put', '/keys/{key}', () => api().put('/keys/k').set('Content-Type', 'text/plain').send('x')],
      ['put', '/keys/{key}', () => api().put(`/keys/${'k'.repeat(65)}`).set(json).send('{"value": 1}')],
      ['put', '/keys/{key}', () => api().put('/keys/k').set(json).send(JSON.stringify({ value: 'v'.repeat(5000) }))],
      ['put', '/keys/{key}', () => api().put('/keys/.').set(json).send('{"value": 1}')],
      ['get', '/keys/{key}', () => api().get('/keys/k')],
      ['get', '/keys/{key}', () => api().get('/keys/absent')],
      ['get', '/keys/{key}', () => api().post('/keys/k')],
      ['delete', '/keys/{key}', () => api().delete('/keys/k')],
      ['get', '/keys', () => api().get('/keys?limit=5')],
      ['get', '/keys', () => api().get('/keys?limit=0')],
      ['post', '/batch', () => api().post('/batch').set(json).send(JSON.stringify({ ops: [{ op: 'put', key: '..', value: 1 }, { op: 'get', key: '..' }, { op: 'get', key: 'nope' }, { op: 'delete', key: '..' }] }))],
      ['post', '/batch', () => api().post('/batch').set(json).send('{"ops": [{"op": "nope", "key": "x"}]}')],
      ['post', '/batch', () => api().post('/batch').set('Content-Type', 'text/plain').send('{}')],
      ['get', '/health', () => api().get('/health')],
      ['get', '/cluster', () => api().get('/cluster')],
      ['get', '/conflicts', () => api().get('/conflicts?limit=3')],
      ['get', '/conflicts', () => api().get('/conflicts?limit=x')],
      ['get', '/metrics', () => api().get('/metrics')],
      ['get', '/openapi.json', () => api().get('/openapi.json')],
      ['get', '/docs/', () => api().get('/docs/')],
      ['get', '/ui/', () => api().get('/ui/')],
      ['get', '/ui/state', () => api().get('/ui/state')],
      ['get', '/ui/state', () => api().get('/ui/state?prefix=k')],
      ['get', '/ui/state', () => api().get('/ui/state?prefix=a&prefix=b')],
      ['post', '/ui/write', () => api().post('/ui/write').set(json).send('{"node": "B", "key": "..", "value": {"x": 1}}')],
      ['post', '/ui/write', () => api().post('/ui/write').set(json).send('{"node": "A", "key": "", "value": 1}')],
      ['post', '/ui/write', () => api().post('/ui/write').set(json).send('{"node": "Z", "key": "k", "value": 1}')],
      ['get', '/admin/queues', () => api().get('/admin/queues')],
    ];
    for (const [method, template, send] of cases) conforms(await send(), method, template);
  });

  it('should describe the 401 of every secured endpoint', async () => {
    const secureDoc = (await request(securedUrl()).get('/openapi.json').set('Authorization', `Bearer ${TOKEN}`)).body as typeof doc;
    const secureAjv = new Ajv2020({ strict: false, allErrors: true });
    secureAjv.addSchema(secureDoc, 'api');
    const api = () => request(securedUrl());
    for (const [method, template, res] of [
      ['get', '/keys/{key}', await api().get('/keys/k')],
      ['post', '/batch', await api().post('/batch').set(json).send('{"ops": []}')],
      ['get', '/cluster', await api().get('/cluster')],
      ['get', '/ui/', await api().get('/ui/')],
    ] as const) {
      expect(secureDoc.paths[template]?.[method]?.responses['401'], `${template} documents 401`).toBeDefined();
      expect(res.status).toBe(401);
      conforms(res, method, template, secureDoc, secureAjv);
    }
  });

  it('should serve Swagger UI from the package, with no network beyond the node', async () => {
    const page = await request(url()).get('/docs/');
    expect(page.text).toContain('swagger-ui-bundle.js');
    expect(page.text).not.toMatch(/https?:\/\//);
    const bundle = await request(url()).get('/docs/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
    expect(bundle.headers['content-type']).toMatch(/javascript/);
    expect((await request(url()).get('/docs/init.js')).text).toContain("url: '/openapi.json'");
  });

  it('should have had every documented operation exercised', () => {
    const documented = Object.entries(doc.paths).flatMap(([template, ops]) => Object.keys(ops).map((m) => `${m} ${template}`));
    // The event stream never ends; the browser test reads it.
    expect(documented.filter((d) => !exercised.has(d) && d !== 'get /ui/events')).toEqual([]);
  });
});
