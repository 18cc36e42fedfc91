/**
 * The cluster view page: `/ui/` (plain HTML/CSS/JS from ./assets, no framework, no
 * network beyond this node), its data and its write form.
 *
 * | Method | Path        | What                                                                 |
 * |--------|-------------|----------------------------------------------------------------------|
 * | GET    | /           | 302 to /ui/                                                          |
 * | GET    | /ui/        | the page (app.js, style.css beside it)                               |
 * | GET    | /ui/state   | one {@link ViewSnapshot} (+ node links) as JSON; `?prefix=` selects keys |
 * | GET    | /ui/events  | the same, pushed as Server-Sent Events (`event: state`) whenever it changes |
 * | POST   | /ui/write   | `{node, key, value}`: a put on that node; answers what its PUT /keys/:key would |
 *
 * The serving node gathers every node's state from their Redis (`ReplicaNode.view`), so
 * the browser needs one origin and one login. A write for another node is forwarded to
 * that node's `POST /batch`, server-side, with the cluster's token.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Router, type Request, type Response } from 'express';
import type { RequestValidator } from '../validation.js';
import type { ReplicaNode } from '../../node/replica-node.js';
import { BatchInputError, type BatchOutcome } from '../../node/batch.js';
import type { ViewSnapshot } from '../../node/cluster-view.js';
import type { JsonValue } from '../../record/record.js';
import { invalidOp } from '../batch-routes.js';
import { jsonBody } from '../json-body.js';
import { HttpError, toHttpError } from '../errors.js';
import { onlyMethods } from '../routing.js';

/** Where the page lives. */
export const UI_PATH = '/ui';

/** How the page links and reaches the other nodes. */
export interface UiContext {
  /** Base URL of each node's HTTP API by id (read per request, so it may be filled after start). */
  nodeUrls: Readonly<Record<string, string>>;
  /** Whether the nodes serve the Bull dashboard (links to it are shown). */
  dashboard: boolean;
  /** The cluster's token, sent when a write is forwarded to another node. */
  authToken: string | undefined;
  /** Largest body of the write form. Unit: bytes. */
  maxBodyBytes: number;
}

/** A snapshot with the links the page shows. */
export interface UiState extends ViewSnapshot {
  links: Record<string, { url?: string; dashboard?: string }>;
}

const ASSETS: Record<string, { type: string; file: string }> = {
  '/': { type: 'text/html; charset=utf-8', file: 'index.html' },
  '/app.js': { type: 'text/javascript; charset=utf-8', file: 'app.js' },
  '/style.css': { type: 'text/css; charset=utf-8', file: 'style.css' },
};
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/** How often an open event stream looks for changes. Unit: milliseconds. */
const PUSH_INTERVAL_MS = 200;
const KEEPALIVE_MS = 15_000;
const FORWARD_TIMEOUT_MS = 5_000;

let assets: Map<string, Buffer> | undefined;
function asset(file: string): Buffer {
  assets ??= new Map(Object.values(ASSETS).map((a) => [a.file, readFileSync(new URL(`./assets/${a.file}`, import.meta.url))]));
  return assets.get(file) as Buffer;
}

/** `/` and `/ui/…` on `node`. */
export function uiRouter(node: ReplicaNode, validator: RequestValidator, context: UiContext): Router {
  const router = Router({ caseSensitive: true, strict: true });
  // Only a browser's GET is led to the page; other methods on `/` stay the API's 404.
  router.get('/', (_req, res) => res.redirect(302, `${UI_PATH}/`));
  router.route(UI_PATH).get((_req, res) => res.redirect(301, `${UI_PATH}/`)).all(onlyMethods('GET', 'HEAD'));
  for (const [path, { type, file }] of Object.entries(ASSETS)) {
    router
      .route(`${UI_PATH}${path}`)
      .get((_req, res) => {
        res.set({ 'Content-Type': type, 'Content-Security-Policy': CSP }).send(asset(file));
      })
      .all(onlyMethods('GET', 'HEAD'));
  }

  // One listener per node however many pages are open (EventEmitter warns past 10).
  const changes = new Set<() => void>();
  const notify = () => {
    for (const wake of changes) wake();
  };
  node.on('write', notify);
  node.on('conflict', notify);

  const state = async (req: Request): Promise<UiState> => {
    const { prefix } = validator.prefixQueryOf(req.query);
    const snapshot = await node.view.snapshot(prefix === '' ? undefined : prefix);
    const links: UiState['links'] = {};
    for (const n of snapshot.nodes) {
      const url = n.self ? undefined : context.nodeUrls[n.id];
      const base = n.self ? '' : url;
      links[n.id] = { ...(url ? { url } : {}), ...(context.dashboard && base !== undefined ? { dashboard: `${base}/admin/queues` } : {}) };
    }
    return { ...snapshot, links };
  };

  router
    .route(`${UI_PATH}/state`)
    .get(async (req, res) => {
      res.json(await state(req));
    })
    .all(onlyMethods('GET', 'HEAD'));

  router
    .route(`${UI_PATH}/events`)
    .get((req, res) => streamState(req, res, node, changes, () => state(req)))
    .all(onlyMethods('GET', 'HEAD'));

  router
    .route(`${UI_PATH}/write`)
    .post(...jsonBody(context.maxBodyBytes), async (req, res) => {
      const { node: target, key, value } = writeBodyOf(validator.uiWrite(req.body), node);
      const op = { op: 'put' as const, key, value };
      if (target === node.id) {
        let outcome: BatchOutcome | undefined;
        try {
          [outcome] = await node.batch([op]);
        } catch (error) {
          throw error instanceof BatchInputError ? invalidOp(error) : error;
        }
        if (!outcome || 'error' in outcome) throw outcome?.error ?? new Error('no outcome');
        res.json('record' in outcome ? outcome.record : null);
        return;
      }
      // The write lands in another node's Redis; show its row now rather than at that node's next heartbeat.
      node.view.touch(key);
      const answer = await forward(context, target, op);
      res.status(answer.status).json(answer.body);
    })
    .all(onlyMethods('POST'));
  return router;
}

/** The form's body, with a node of this cluster. */
function writeBodyOf<T extends { node: string }>(body: T, node: ReplicaNode): T {
  const ids = [node.id, ...node.options.peers.map((p) => p.id)];
  if (!ids.includes(body.node)) throw new HttpError(400, 'invalid_body', `node must be one of ${ids.join(', ')}`, { field: 'node' });
  return body;
}

/** Sends the put to another node's `POST /batch` and answers with its result. */
async function forward(context: UiContext, target: string, op: { op: 'put'; key: string; value: JsonValue }): Promise<{ status: number; body: unknown }> {
  const url = context.nodeUrls[target];
  if (!url) {
    return {
      status: 503,
      body: { error: { code: 'node_closed', message: `This node does not know node ${target}'s HTTP address (nodeUrls); open that node's own page to write there.` } },
    };
  }
  try {
    const res = await fetch(`${url}/batch`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(context.authToken ? { Authorization: `Bearer ${context.authToken}` } : {}) },
      body: JSON.stringify({ ops: [op] }),
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
    const body = (await res.json()) as { results?: Array<{ status: number; body: unknown }> } & Record<string, unknown>;
    return res.ok && body.results?.[0] ? body.results[0] : { status: res.status, body };
  } catch (error) {
    return { status: 503, body: { error: { code: 'redis_unavailable', message: `Node ${target} at ${url} did not answer (${(error as Error).message}); nothing was written.` } } };
  }
}

/** Pushes the state now and whenever it changes, until the client goes away or the node closes. */
function streamState(req: Request, res: Response, node: ReplicaNode, changes: Set<() => void>, read: () => Promise<UiState>): void {
  res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
  let open = true;
  let last = '';
  let lastSent = Date.now();
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  changes.add(poke);
  const stop = () => {
    open = false;
    changes.delete(poke);
    poke();
  };
  req.once('close', stop);
  // A stream never finishes by itself: end it once the server stops listening (graceful
  // shutdown waits for unfinished responses) or the node closes.
  const server = (req.socket as Socket & { server?: Server }).server;
  const serving = () => open && !node.closed && server?.listening !== false;
  void (async () => {
    while (serving()) {
      try {
        const state = await read();
        // `at` changes every time; compare the rest.
        const text = JSON.stringify({ ...state, at: 0 });
        if (text !== last) {
          last = text;
          lastSent = Date.now();
          res.write(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
        } else if (Date.now() - lastSent > KEEPALIVE_MS) {
          lastSent = Date.now();
          res.write(': keep-alive\n\n');
        }
      } catch (error) {
        if (!serving()) break;
        const e = toHttpError(error);
        res.write(`event: failure\ndata: ${JSON.stringify(e.toBody())}\n\n`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, PUSH_INTERVAL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    res.end();
  })();
}
