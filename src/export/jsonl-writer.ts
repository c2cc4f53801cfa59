import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';

/** A JSONL file written with backpressure as `<path>.partial`. */
export class JsonlWriter {
  private readonly stream: WriteStream;
  lines = 0;
  private error: Error | undefined;
  private constructor(readonly path: string) {
    this.stream = createWriteStream(`${path}.partial`, { flags: 'wx' });
    // Kept, and thrown by the next write or close, so an aborted or failed stream never crashes the process.
    this.stream.on('error', (error) => (this.error ??= error));
  }
  static async open(path: string): Promise<JsonlWriter> {
    await rm(`${path}.partial`, { force: true });
    return new JsonlWriter(path);
  }
  async write(value: unknown): Promise<void> {
    if (this.error) throw this.error;
    this.lines++;
    if (!this.stream.write(`${JSON.stringify(value)}\n`)) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    if (this.error) throw this.error;
    this.stream.end();
    await once(this.stream, 'finish');
  }
  async commit(): Promise<void> {
    await rename(`${this.path}.partial`, this.path);
  }
  async abort(): Promise<void> {
    this.stream.destroy();
    await rm(`${this.path}.partial`, { force: true });
  }
}
