/**
 * `ReplicaNode.list()`: pages of live records over Redis SCAN pages. A page that ends inside
 * a SCAN page resumes after its last key (see `parseListCursor`), never by offset.
 */
import { toView, type CacheRecord, type RecordView } from '../record/record.js';
import { checkListLimit, formatListCursor, parseListCursor } from './input.js';
import type { ListOptions, ListPage } from './types.js';

/** One SCAN page of live records whose keys start with `prefix`. */
export type ScanPage = (prefix: string, cursor: string, count: number) => Promise<{ records: CacheRecord[]; cursor: string }>;

export async function listPage(scan: ScanPage, options: ListOptions): Promise<ListPage> {
  const limit = checkListLimit(options.limit ?? 100);
  let [scanCursor, after] = parseListCursor(options.cursor);
  const items: RecordView[] = [];
  for (;;) {
    const page = await scan(options.prefix ?? '', scanCursor, Math.max(limit, 100));
    const fresh = page.records.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0)).filter((r) => after === undefined || r.key > after);
    const room = limit - items.length;
    if (fresh.length > room) {
      const taken = fresh.slice(0, room);
      items.push(...taken.map(toView));
      // Resume inside this SCAN page: same cursor, after the last key returned.
      return { items, cursor: formatListCursor(scanCursor, (taken[taken.length - 1] as CacheRecord).key) };
    }
    items.push(...fresh.map(toView));
    scanCursor = page.cursor;
    after = undefined;
    if (scanCursor === '0') return { items, cursor: null };
    if (items.length === limit) return { items, cursor: scanCursor };
  }
}
