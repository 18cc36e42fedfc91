/**
 * What a node says about itself: `/health`, `/cluster`, `/conflicts` and `/metrics`.
 */
import { Router } from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ReplicaNode } from '../node/replica-node.js';
import { onlyMethods } from './routing.js';
import type { RequestValidator } from './validation.js';

/** `/health` and `/metrics`: open even when a token is configured (probes and scrapers). */
export function openRouter(node: ReplicaNode): Router {
  const router = Router({ caseSensitive: true });

  router
    .route('/health')
    .get(async (_req, res) => {
      // Once close() began the node takes no operations and its Redis connections go with
      // it: say so, rather than blame Redis.
      if (node.closed) {
        res.status(503).json({
          status: 'closing',
          node: node.id,
          error: { code: 'node_closed', message: 'This node is shutting down; send requests to another node.' },
        });
        return;
      }
      if (await node.ping()) {
        res.json({ status: 'ok', node: node.id });
        return;
      }
      res.status(503).json({
        status: 'unavailable',
        node: node.id,
        error: { code: 'redis_unavailable', message: "This node's Redis does not answer; writes and reads on this node fail until it is back." },
      });
    })
    .all(onlyMethods('GET', 'HEAD'));

  router
    .route('/metrics')
    .get(async (_req, res) => {
      // Two registries, concatenated: Registry.merge would drop the node registry's
      // default `node` label. The node's series never share a name with process metrics.
      const [nodeText, processText] = await Promise.all([node.metrics.registry.metrics(), processRegistry().metrics()]);
      res.type(node.metrics.registry.contentType).send(`${nodeText.trimEnd()}\n\n${processText}`);
    })
    .all(onlyMethods('GET', 'HEAD'));

  return router;
}

/** `/cluster`, `/conflicts` and `POST /admin/anti-entropy`: behind the token when one is configured. */
export function statusRouter(node: ReplicaNode, validator: RequestValidator): Router {
  const router = Router({ caseSensitive: true });

  router
    .route('/cluster')
    .get(async (_req, res) => {
      res.json(await node.status());
    })
    .all(onlyMethods('GET', 'HEAD'));

  router
    .route('/admin/anti-entropy')
    .post(async (_req, res) => {
      res.json({ node: node.id, rounds: await node.antiEntropyRound() });
    })
    .all(onlyMethods('POST'));

  router
    .route('/conflicts')
    .get(async (req, res) => {
      const { limit } = validator.conflictsQueryOf(req.query);
      res.json({ node: node.id, items: await node.conflicts(limit) });
    })
    .all(onlyMethods('GET', 'HEAD'));

  return router;
}

let processMetrics: Registry | undefined;

/**
 * Process metrics (CPU, memory, event loop) exist once per process, however many nodes it
 * runs (`eventual-cache cluster` runs three), so they live in one shared registry.
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}
