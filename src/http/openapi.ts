/**
 * The OpenAPI 3.1 document of one node's API (`GET /openapi.json`), rendered by
 * zod-openapi from the very schemas `RequestValidator` validates requests with (their
 * bounds are this node's limits) and the response schemas of ./schemas.ts.
 */
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { z } from 'zod';
import type { ErrorCode } from './errors.js';
import {
  batchResults,
  clusterStatus,
  conflictsBody,
  deleteResult,
  errorBody,
  healthBody,
  listPage,
  recordView,
  uiState,
  type RequestSchemas,
} from './schemas.js';

type Status = '400' | '401' | '404' | '405' | '413' | '414' | '415' | '431' | '500' | '503';

/** Which codes each error status carries, for the descriptions. */
const CODES_BY_STATUS: Record<Status, ErrorCode[]> = {
  '400': ['bad_request', 'invalid_json', 'invalid_body', 'invalid_query', 'invalid_key'],
  '401': ['unauthorized'],
  '404': ['not_found'],
  '405': ['method_not_allowed'],
  '413': ['payload_too_large'],
  '414': ['key_too_long'],
  '415': ['unsupported_media_type'],
  '431': ['headers_too_large'],
  '500': ['internal', 'corrupt_record'],
  '503': ['redis_unavailable', 'node_closed', 'transaction_conflict', 'replicas_unconfirmed'],
};

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

function errors(...statuses: Status[]): ZodOpenApiResponsesObject {
  const out: ZodOpenApiResponsesObject = {};
  for (const status of statuses) {
    out[status] = { description: `Error: ${CODES_BY_STATUS[status].map((c) => `\`${c}\``).join(', ')}.`, content: json(errorBody) };
  }
  return out;
}

/** Errors any routed request may meet. */
const COMMON: Status[] = ['400', '405', '431', '500'];

export interface OpenApiOptions {
  /** Node id, shown in the title. */
  nodeId: string;
  /** Whether the node requires its token (then every operation but /health and /metrics is secured). */
  secured: boolean;
  dashboard: boolean;
  ui: boolean;
}

/** The document for one node; `schemas` are its `RequestValidator.schemas`. */
export function openApiDocument(schemas: RequestSchemas, options: OpenApiOptions): ReturnType<typeof createDocument> {
  const security: Array<Record<string, string[]>> = options.secured ? [{ bearerAuth: [] }] : [];
  const browserSecurity: Array<Record<string, string[]>> = options.secured ? [{ bearerAuth: [] }, { basicAuth: [] }] : [];
  const auth = options.secured ? errors('401') : {};
  const op = (o: ZodOpenApiOperationObject, browser = false): ZodOpenApiOperationObject => ({ security: browser ? browserSecurity : security, ...o });
  const keyParams = { path: schemas.keyParam };
  const page = (description: string) => ({ '200': { description, content: { 'text/html': { schema: z.string() } } } });

  const paths: Record<string, Record<string, ZodOpenApiOperationObject>> = {
    '/keys/{key}': {
      get: op({
        operationId: 'getKey',
        summary: "This node's live copy of a key (possibly stale)",
        requestParams: keyParams,
        responses: { '200': { description: 'The record.', content: json(recordView) }, ...errors('404', '414', '503', ...COMMON), ...auth },
      }),
      put: op({
        operationId: 'putKey',
        summary: 'Write a key on this node; peers get it asynchronously',
        requestParams: keyParams,
        requestBody: { required: true, content: json(schemas.putBody) },
        responses: { '200': { description: 'The stored record.', content: json(recordView) }, ...errors('413', '414', '415', '503', ...COMMON), ...auth },
      }),
      delete: op({
        operationId: 'deleteKey',
        summary: 'Delete a key (a tombstone that replicates like a write); idempotent',
        requestParams: keyParams,
        responses: { '200': { description: 'The tombstone.', content: json(deleteResult) }, ...errors('414', '503', ...COMMON), ...auth },
      }),
    },
    '/keys': {
      get: op({
        operationId: 'listKeys',
        summary: 'A page of live keys in SCAN order',
        requestParams: { query: schemas.listQuery },
        responses: { '200': { description: 'One page.', content: json(listPage) }, ...errors('503', ...COMMON), ...auth },
      }),
    },
    '/batch': {
      post: op({
        operationId: 'batch',
        summary: 'Independent put/get/delete ops with the keys in the body (every key, "." and ".." included)',
        description:
          'The whole batch is validated first; an invalid one gets 400 and applies nothing. After that the ops are independent, ' +
          'not a transaction; they run in order and each result has the status and body the single-key endpoint would answer. ' +
          'Consecutive puts share one group commit.',
        requestBody: { required: true, content: json(schemas.batchBody) },
        responses: { '200': { description: 'One result per op, in order.', content: json(batchResults) }, ...errors('413', '415', '503', ...COMMON), ...auth },
      }),
    },
    '/health': {
      get: {
        operationId: 'health',
        summary: 'Liveness and Redis reachability (never needs the token)',
        security: [],
        responses: {
          '200': { description: 'Healthy.', content: json(healthBody) },
          '503': { description: 'Closing, or its Redis does not answer.', content: json(healthBody) },
          ...errors('400', '405', '431', '500'),
        },
      },
    },
    '/cluster': {
      get: op({
        operationId: 'cluster',
        summary: 'Replication backlog and health per peer',
        responses: { '200': { description: 'Status.', content: json(clusterStatus) }, ...errors('503', ...COMMON), ...auth },
      }),
    },
    '/conflicts': {
      get: op({
        operationId: 'conflicts',
        summary: 'The newest concurrent writes LWW resolved here, newest first',
        requestParams: { query: schemas.conflictsQuery },
        responses: { '200': { description: 'Conflicts.', content: json(conflictsBody) }, ...errors('503', ...COMMON), ...auth },
      }),
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics (never needs the token)',
        security: [],
        responses: { '200': { description: 'Prometheus text format.', content: { 'text/plain': { schema: z.string() } } }, ...errors(...COMMON) },
      },
    },
    '/openapi.json': {
      get: op(
        {
          operationId: 'openapi',
          summary: 'This document',
          responses: { '200': { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: z.looseObject({ openapi: z.string() }) } } }, ...errors(...COMMON), ...auth },
        },
        true,
      ),
    },
    '/docs/': { get: op({ operationId: 'docs', summary: 'Swagger UI over this document', responses: { ...page('The page.'), ...auth } }, true) },
  };
  if (options.ui) {
    paths['/ui/'] = { get: op({ operationId: 'clusterView', summary: 'The live cluster view page (`/` redirects here)', responses: { ...page('The page.'), ...auth } }, true) };
    paths['/ui/state'] = {
      get: op(
        {
          operationId: 'clusterViewState',
          summary: 'What the page shows: every node (health, lag, backlog, conflicts) and the key grid, gathered from every node\'s Redis',
          requestParams: { query: schemas.prefixQuery },
          responses: { '200': { description: 'The state.', content: json(uiState) }, ...errors(...COMMON), ...auth },
        },
        true,
      ),
    };
    paths['/ui/write'] = {
      post: op(
        {
          operationId: 'clusterViewWrite',
          summary: "The page's write form: a put on the chosen node (forwarded to its POST /batch when it is another node)",
          requestBody: { required: true, content: json(schemas.uiWriteBody) },
          responses: { '200': { description: "The stored record, as that node's PUT /keys/:key answers.", content: json(recordView) }, ...errors('413', '415', '503', ...COMMON), ...auth },
        },
        true,
      ),
    };
    paths['/ui/events'] = {
      get: op(
        {
          operationId: 'clusterViewEvents',
          requestParams: { query: schemas.prefixQuery },
          summary: 'The page\'s data pushed as Server-Sent Events (`event: state`, JSON data)',
          responses: { '200': { description: 'An event stream.', content: { 'text/event-stream': { schema: z.string() } } }, ...auth },
        },
        true,
      ),
    };
  }
  if (options.dashboard) {
    paths['/admin/queues'] = { get: op({ operationId: 'dashboard', summary: "The Bull dashboard of this node's replication queues", responses: { ...page('The dashboard.'), ...auth } }, true) };
  }

  return createDocument(
    {
      openapi: '3.1.0',
      info: {
        title: `eventual-cache node ${options.nodeId}`,
        version: '0.1.0',
        description:
          'Replicated key-value cache: writes commit locally and replicate asynchronously; Last-Write-Wins over hybrid logical clocks. ' +
          'Every error is {"error": {"code", "message", "field"?}}. A key travels as one percent-encoded path segment; keys a URL path ' +
          'cannot carry ("." and "..", or anything WHATWG dot-segment removal changes) go through POST /batch.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'The authToken configured on the nodes (EVENTUAL_CACHE_TOKEN).' },
          basicAuth: { type: 'http', scheme: 'basic', description: 'For browsers: any user name, the authToken as password (pages only).' },
        },
      },
      paths,
    },
    { allowEmptySchema: { custom: true } },
  );
}
