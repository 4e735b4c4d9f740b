import { Readable } from 'node:stream';

/**
 * Pulls bytes from a stream on demand, for the parsers that read a request
 * body piece by piece (tar archives, multipart forms). Every operation is
 * queued behind the one before it, so a part's body stream and the parser
 * that skips the rest of the part never read at the same time.
 */
export class ByteReader {
  private readonly iterator: AsyncIterator<unknown>;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private ended = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Bytes handed out so far (what a caller has consumed). */
  consumed = 0;

  constructor(source: Readable) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Runs `op` after every operation queued before it. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.queue.then(op);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Reads one more chunk from the source into the buffer; false at the end. */
  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const value = next.value;
    const chunk = Buffer.isBuffer(value) ? value : typeof value === 'string' ? Buffer.from(value) : Buffer.from(value as Uint8Array);
    if (chunk.length > 0) {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
    }
    return true;
  }

  private take(n: number): Buffer {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0 && this.buffered.length > 0) {
      const head = this.buffered[0] as Buffer;
      if (head.length <= left) {
        out.push(head);
        this.buffered.shift();
        left -= head.length;
      } else {
        out.push(head.subarray(0, left));
        this.buffered[0] = head.subarray(left);
        left = 0;
      }
    }
    const taken = n - left;
    this.bufferedBytes -= taken;
    this.consumed += taken;
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out, taken);
  }

  /** Exactly `n` bytes, or fewer only when the source ends first. */
  readExactly(n: number): Promise<Buffer> {
    return this.serial(async () => {
      while (this.bufferedBytes < n && (await this.fill()));
      return this.take(Math.min(n, this.bufferedBytes));
    });
  }

  /**
   * Up to `max` bytes without waiting for more than one chunk; empty at the
   * end. `onData` sees the bytes inside the queue, before any later
   * operation starts (for callers that keep a count other operations read).
   */
  readUpTo(max: number, onData?: (chunk: Buffer) => void): Promise<Buffer> {
    return this.serial(async () => {
      while (this.bufferedBytes === 0 && (await this.fill()));
      const chunk = this.take(Math.min(max, this.bufferedBytes));
      onData?.(chunk);
      return chunk;
    });
  }

  /**
   * Discards `n` bytes (fewer at the end); returns how many were discarded.
   * A function for `n` is called when the skip's turn in the queue comes.
   */
  skip(count: number | (() => number)): Promise<number> {
    return this.serial(async () => {
      const n = typeof count === 'function' ? count() : count;
      let left = n;
      while (left > 0) {
        while (this.bufferedBytes === 0 && (await this.fill()));
        if (this.bufferedBytes === 0) break;
        left -= this.take(Math.min(left, this.bufferedBytes)).length;
      }
      return n - left;
    });
  }

  /**
   * Bytes up to the first occurrence of `delimiter`, at most `max` of them:
   * `{data, found}` where `found` says the delimiter came next (and was
   * consumed). When it did not come within `max` bytes, returns those bytes
   * and leaves the rest; at the end of the source returns what is left.
   * `onResult` sees the result inside the queue (see `readUpTo`).
   */
  readUntil(delimiter: Buffer, max: number, onResult?: (result: { data: Buffer; found: boolean }) => void): Promise<{ data: Buffer; found: boolean }> {
    return this.serial(async () => {
      for (;;) {
        const view = this.peekAll(max + delimiter.length);
        const at = view.indexOf(delimiter);
        if (at >= 0 && at <= max) {
          const data = this.take(at);
          this.take(delimiter.length);
          const result = { data, found: true };
          onResult?.(result);
          return result;
        }
        if (this.bufferedBytes >= max + delimiter.length || !(await this.fill())) {
          // Only complete reads get here: at the end, or with max + delimiter bytes at hand.
          const result = { data: this.take(Math.min(max, this.bufferedBytes)), found: false };
          onResult?.(result);
          return result;
        }
      }
    });
  }

  /** Resolves once every operation queued so far has finished. */
  settled(): Promise<void> {
    return this.serial(async () => undefined);
  }

  /** Whether the source has no more bytes. */
  atEnd(): Promise<boolean> {
    return this.serial(async () => {
      while (this.bufferedBytes === 0 && (await this.fill()));
      return this.bufferedBytes === 0;
    });
  }

  /** The first `n` buffered bytes as one Buffer (joins chunks only when needed). */
  private peekAll(n: number): Buffer {
    if (this.buffered.length === 0) return Buffer.alloc(0);
    const head = this.buffered[0] as Buffer;
    if (head.length >= n || this.buffered.length === 1) return head.subarray(0, Math.min(n, head.length));
    const joined = Buffer.concat(this.buffered);
    this.buffered = [joined];
    return joined.subarray(0, Math.min(n, joined.length));
  }

  /** Stops reading: the source's iterator is closed (which destroys the source). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.iterator.return?.();
  }
}
