/**
 * The cluster view page in a real browser (Debian's Chromium through playwright-core),
 * on a real 3-node cluster:
 *
 *   A: put k ─────────────► page: A fresh, B and C stale ──(delay D)──► all fresh
 *   A: put c=1 ┐ concurrent
 *   B: put c=2 ┘──────────► page: row c shows winner and loser
 *   page form: put on B ──► B's cell appears
 *
 * and, on a node with a token, that the page asks for credentials and opens with them.
 * It also takes the screenshot the README shows: into the temp dir on every run, and over
 * docs/cluster-view.png only with UPDATE_SCREENSHOT=1 (so `npm test` leaves the tree clean).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodes, useTestRedis, type StartedNodes } from '../support/http-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT = process.env.UPDATE_SCREENSHOT === '1' ? fileURLToPath(new URL('../../docs/cluster-view.png', import.meta.url)) : join(tmpdir(), 'eventual-cache-cluster-view.png');
const TOKEN = 'ui-browser-token';
/** Long enough that the page shows the stale cells, short enough to converge quickly. */
const DELAY_MS = 1_200;
const json = { 'Content-Type': 'application/json' };

useTestRedis();

let cluster: StartedNodes;
let secured: StartedNodes;
let context: BrowserContext;
let page: Page;
let profile: string;
const nodeUrls: Record<string, string> = {};

// .ci/run installs Debian's chromium when it is missing; outside CI, without it, this file has nothing to drive.
describe.skipIf(!existsSync(CHROMIUM))('the cluster view page', () => {
  beforeAll(async () => {
    [cluster, secured] = await Promise.all([
      startNodes({ label: 'ui', ids: ['A', 'B', 'C'], node: { replication: { delayMs: DELAY_MS } }, http: { nodeUrls } }),
      startNodes({ label: 'ui-auth', http: { authToken: TOKEN } }),
    ]);
    for (const s of cluster.servers) nodeUrls[s.node.id] = s.url;
    profile = mkdtempSync(join(tmpdir(), 'ec-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, viewport: { width: 1280, height: 860 } });
    page = context.pages()[0] ?? (await context.newPage());
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await cluster?.close();
    await secured?.close();
  });

  const url = (i: number) => (cluster.servers[i] as (typeof cluster.servers)[number]).url;
  const cell = (key: string, node: string) => page.locator(`tr[data-key="${key}"] td[data-node="${node}"]`);

  it('should lead a browser from / to the page, live within a second', async () => {
    await page.goto(url(0));
    expect(new URL(page.url()).pathname).toBe('/ui/');
    await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 5_000 });
    await expect.poll(() => page.locator('article.node').count()).toBe(3);
    expect(await page.locator('article.node[data-node="A"] .self').count()).toBe(1);
    expect(await page.locator('article.node[data-node="B"][data-health="ok"]').count()).toBe(1);
  });

  it('should show B and C stale after a write on A, then converged', async () => {
    const put = await request(url(0)).put('/keys/greeting').set(json).send('{"value": "hello"}');
    expect(put.status).toBe(200);
    await cell('greeting', 'A').and(page.locator('[data-state="fresh"]')).waitFor({ timeout: 5_000 });
    // Replication takes DELAY_MS: meanwhile B and C are marked stale.
    await cell('greeting', 'B').and(page.locator('[data-state="stale"]')).waitFor({ timeout: DELAY_MS }).catch(async (error: unknown) => {
      throw new Error(`${String(error)}; row: ${await page.locator('tr[data-key="greeting"]').innerHTML()}`);
    });
    expect(await cell('greeting', 'C').getAttribute('data-state')).toBe('stale');
    for (const node of ['B', 'C']) await cell('greeting', node).and(page.locator('[data-state="fresh"]')).waitFor({ timeout: 10_000 });
    expect(await cell('greeting', 'C').locator('.value').textContent()).toBe('hello');
  });

  it('should show the conflict of two concurrent writes, winner and loser', async () => {
    const [a, b] = await Promise.all([
      request(url(0)).put('/keys/contested').set(json).send('{"value": "from A"}'),
      request(url(1)).put('/keys/contested').set(json).send('{"value": "from B"}'),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const note = page.locator('tr[data-key="contested"] .conflict-note');
    await note.waitFor({ timeout: 10_000 });
    const winner = a.body.hlc > b.body.hlc ? 'A' : 'B';
    const loser = winner === 'A' ? 'B' : 'A';
    expect(await note.textContent()).toMatch(new RegExp(`winner ${winner} @ .* loser ${loser} @`));
    for (const node of ['A', 'B', 'C']) await cell('contested', node).and(page.locator('[data-state="fresh"]')).waitFor({ timeout: 10_000 });
    expect(await cell('contested', 'C').locator('.value').textContent()).toBe(winner === 'A' ? 'from A' : 'from B');
  });

  it('should write through the form, on the node chosen', async () => {
    await page.fill('#write-key', 'from-the-form');
    await page.fill('#write-value', '{"n": 1}');
    await page.selectOption('#write-node', 'B');
    await page.click('#write button[type="submit"]');
    await page.locator('#write-result', { hasText: '✓ from-the-form written on B' }).waitFor({ timeout: 5_000 });
    // Taken while A and C are still stale (B's write takes DELAY_MS to reach them) when the
    // page shows that in time; on a starved machine the picture may show them converged.
    await cell('from-the-form', 'B').and(page.locator('[data-state="fresh"]')).waitFor({ timeout: 5_000 });
    await cell('from-the-form', 'A').and(page.locator('[data-state="stale"]')).waitFor({ timeout: 200 }).catch(() => undefined);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const stored = await request(url(1)).get('/keys/from-the-form');
    expect(stored.body).toMatchObject({ value: { n: 1 }, origin: 'B' });
    for (const node of ['A', 'B', 'C']) await cell('from-the-form', node).and(page.locator('[data-state="fresh"]')).waitFor({ timeout: 10_000 });
  });

  it('should ask for the token when one is set, and open with it', async () => {
    const target = (secured.servers[0] as (typeof secured.servers)[number]).url;
    // Without credentials to offer, Chromium ends the navigation at the challenge (a person gets a login dialog).
    const challenge = page.waitForResponse((r) => r.url() === `${target}/ui/`);
    await expect(page.goto(`${target}/ui/`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    const denied = await challenge;
    expect(denied.status()).toBe(401);
    expect(await denied.headerValue('www-authenticate')).toMatch(/^Basic /);
    expect(await denied.text()).not.toContain('cluster view');
    // Its data endpoints too: nothing leaks without the token.
    for (const path of ['/ui/state', '/ui/events', '/ui/app.js', '/']) expect((await request(target).get(path)).status, path).toBe(401);
    await page.setExtraHTTPHeaders({ Authorization: `Basic ${Buffer.from(`any:${TOKEN}`).toString('base64')}` });
    const allowed = await page.goto(`${target}/ui/`);
    expect(allowed?.status()).toBe(200);
    await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 5_000 });
    await page.setExtraHTTPHeaders({});
  });
});
