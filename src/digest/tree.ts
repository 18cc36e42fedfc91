/**
 * The digest tree as an array of unsigned 32-bit cells (see `cellOf`): every node's sum of
 * record hashes modulo 2^32. Pure: it knows nothing of Redis; the store writes the cells
 * it marks dirty and reads them back as bytes ({@link HashTree.bytes}, {@link decodeCells}).
 *
 * On the wire and in Redis a cell is 4 bytes little-endian, whatever the host's order.
 */
import { CELL_BYTES, cellCount, cellOf, FANOUT, type DigestShape } from './digest.js';

/** Cells per dirty-tracking chunk: 256 cells, 1 KiB, the unit a fold writes back. */
export const CHUNK_CELLS = 256;
const CHUNK_SHIFT = 8;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export class HashTree {
  readonly shape: DigestShape;
  readonly cells: Uint32Array;
  /** One flag per chunk changed since the last {@link takeDirty}. */
  private readonly dirty: Uint8Array;
  /** The first cell of each level (`cellOf(level, 0)`). */
  private readonly levelStart: number[];

  /** A tree of zeros, or the tree stored as `bytes` (shorter bytes: the cells past them are 0). */
  constructor(shape: DigestShape, bytes?: Uint8Array | null) {
    this.shape = shape;
    this.cells = new Uint32Array(cellCount(shape));
    this.dirty = new Uint8Array(Math.ceil(this.cells.length / CHUNK_CELLS));
    this.levelStart = Array.from({ length: shape.depth + 1 }, (_, level) => cellOf(level, 0));
    if (bytes && bytes.length > 0) this.cells.set(decodeCells(bytes.subarray(0, Math.min(bytes.length, this.cells.length * CELL_BYTES))));
  }

  /** Adds `delta` (mod 2^32) to `leaf` and to every node above it. */
  add(leaf: number, delta: number): void {
    if (delta === 0) return;
    let index = leaf;
    for (let level = this.shape.depth; level >= 0; level--) {
      const cell = (this.levelStart[level] as number) + index;
      // A Uint32Array stores modulo 2^32, negative deltas included.
      this.cells[cell] = (this.cells[cell] as number) + delta;
      this.dirty[cell >>> CHUNK_SHIFT] = 1;
      index = Math.floor(index / FANOUT);
    }
  }

  /** The sum of node `index` at `level`. */
  sum(level: number, index: number): number {
    return this.cells[cellOf(level, index)] as number;
  }

  /** The chunks changed since the last call (their indexes), clearing the marks. */
  takeDirty(): number[] {
    const out: number[] = [];
    this.dirty.forEach((flag, i) => {
      if (flag) out.push(i);
    });
    this.dirty.fill(0);
    return out;
  }

  /** A copy of the stored bytes of `count` cells from `first` (the whole tree by default). */
  bytes(first = 0, count = this.cells.length - first): Buffer {
    const end = Math.min(this.cells.length, first + count);
    const copy = Buffer.from(Buffer.from(this.cells.buffer, this.cells.byteOffset + first * CELL_BYTES, (end - first) * CELL_BYTES));
    return LITTLE_ENDIAN ? copy : copy.swap32();
  }
}

/** Cells from their stored bytes (little-endian; a trailing partial cell is ignored). */
export function decodeCells(bytes: Uint8Array): Uint32Array {
  const n = Math.floor(bytes.length / CELL_BYTES);
  const out = new Uint32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * CELL_BYTES);
  for (let i = 0; i < n; i++) out[i] = view.getUint32(i * CELL_BYTES, true);
  return out;
}

/** The stored bytes of one record hash (little-endian). */
export function encodeHash(hash: number): Buffer {
  const out = Buffer.allocUnsafe(CELL_BYTES);
  out.writeUInt32LE(hash >>> 0, 0);
  return out;
}

/** A record hash from its stored bytes; `undefined` for anything not 4 bytes long. */
export function decodeHash(bytes: Uint8Array | null | undefined): number | undefined {
  if (!bytes || bytes.length !== CELL_BYTES) return undefined;
  return ((bytes[0] as number) | ((bytes[1] as number) << 8) | ((bytes[2] as number) << 16) | ((bytes[3] as number) << 24)) >>> 0;
}
