import type { Readable } from 'node:stream';

/** Where image data was written, and what it was. */
export interface StoredData {
  /** The location URL recorded for the image (`file:///...`, `http://...`). */
  url: string;
  size: number;
}

/** A byte range of image data, both ends inclusive (as in HTTP `Range`). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * One named image store (Glance's "backend"). Data goes in as a stream and
 * comes out as a stream; nothing here holds a whole image in memory.
 */
export interface ImageStore {
  readonly id: string;
  readonly type: string;
  readonly description: string;
  /** True when images cannot be written here (a web server's `http` store). */
  readonly readOnly: boolean;
  /**
   * Writes an image's data and makes it durable before resolving. On any
   * failure (the source errors, the disk fills) nothing is left behind.
   */
  add(imageId: string, source: Readable): Promise<StoredData>;
  /** Reads data at a location, or a range of it. */
  get(url: string, range?: ByteRange): Promise<Readable>;
  /** The size in bytes of the data at a location. */
  size(url: string): Promise<number>;
  /** Removes data at a location; a location already gone is not an error. */
  delete(url: string): Promise<void>;
  /** The local file of a location, when the store keeps files (for `qemu-img`); null otherwise. */
  localPath(url: string): string | null;
  /** True when this store serves the location URL. */
  owns(url: string): boolean;
}

/** The location URL could not be read (gone, or the server refused). */
export class StoreDataMissing extends Error {}
