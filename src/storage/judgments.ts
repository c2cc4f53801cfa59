/**
 * `consistent-chat judge DIR` on the files: pages of dialogs.jsonl read from a byte offset, and the
 * merge of judgments.jsonl's verdicts into dialogs.jsonl. The merge streams both files (the verdicts
 * are located by line number, 12 bytes each in memory, so a million-record run merges in a few MB),
 * writes beside dialogs.jsonl and renames over it: a crash leaves the old file or the new one.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { ConfinedDirectory } from './confine';

/** A line of dialogs.jsonl that `judge DIR` cannot read: retrying will not change it. */
export class InvalidRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRecordError';
  }
}

/** One line of dialogs.jsonl as a page gives it: its number (from 0) and its text. */
export interface PageLine {
  line: number;
  text: string;
}

export interface DialoguesPage {
  lines: PageLine[];
  /** Where the next page starts. */
  next: { line: number; byte: number };
  /** True when the page reached the end of the file. */
  done: boolean;
}

/** Reads up to `maxLines` whole lines of `file` from `from` (a line start), at most `maxBytes` of them. */
export async function readLinesPage(
  handle: FileHandle,
  from: { line: number; byte: number },
  maxLines: number,
  maxBytes = 4 * 1024 * 1024,
): Promise<DialoguesPage> {
  const size = (await handle.stat()).size;
  const lines: PageLine[] = [];
  let byte = from.byte;
  let line = from.line;
  let buffer = Buffer.alloc(Math.min(maxBytes, Math.max(0, size - byte)));
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, byte);
    const data = buffer.subarray(0, bytesRead);
    let start = 0;
    for (;;) {
      if (lines.length >= maxLines) break;
      const nl = data.indexOf(0x0a, start);
      if (nl === -1) break;
      const text = data.subarray(start, nl).toString('utf8');
      if (text.trim()) lines.push({ line, text });
      line++;
      start = nl + 1;
    }
    byte += start;
    // One line longer than the buffer: read it whole with a larger one.
    if (start === 0 && lines.length < maxLines && byte < size && bytesRead === buffer.length) {
      buffer = Buffer.alloc(buffer.length * 2);
      continue;
    }
    break;
  }
  return { lines, next: { line, byte }, done: byte >= size };
}

/** Offsets of judgments.jsonl's verdicts, sorted by the dialogs.jsonl line they belong to. */
async function verdictIndex(path: string): Promise<{ lines: Int32Array; offsets: Float64Array }> {
  const found: [number, number][] = [];
  let offset = 0;
  const reader = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const text of reader) {
    if (text.trim()) found.push([(JSON.parse(text) as { line: number }).line, offset]);
    offset += Buffer.byteLength(text) + 1;
  }
  found.sort((a, b) => a[0] - b[0]);
  return {
    lines: Int32Array.from(found, ([line]) => line),
    offsets: Float64Array.from(found, ([, at]) => at),
  };
}

async function readLineAt(handle: FileHandle, offset: number): Promise<string> {
  let size = 16 * 1024;
  for (;;) {
    const buffer = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buffer, 0, size, offset);
    const nl = buffer.subarray(0, bytesRead).indexOf(0x0a);
    if (nl !== -1 || bytesRead < size) return buffer.subarray(0, nl === -1 ? bytesRead : nl).toString('utf8');
    size *= 2;
  }
}

/**
 * Writes dialogs.jsonl again with each verdict of judgments.jsonl as its record's `judge`, renames it
 * over the old file and removes judgments.jsonl. A verdict whose line holds another id (the file was
 * not the one judged) fails the merge before anything is replaced. Returns the records given a verdict.
 */
export async function mergeJudgments(
  dir: ConfinedDirectory,
  names: { dialogues: string; judgments: string },
): Promise<number> {
  const judgmentsPath = dir.child(names.judgments);
  const index = await verdictIndex(judgmentsPath);
  const verdicts = await open(judgmentsPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  const temp = `${names.dialogues}.${randomBytes(6).toString('hex')}.tmp`;
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
  const out = await open(dir.child(temp), flags, 0o644);
  let merged = 0;
  try {
    const input = createReadStream(dir.child(names.dialogues));
    let line = 0;
    let next = 0;
    let pending: string[] = [];
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      let out_ = text;
      while (next < index.lines.length && index.lines[next]! < line) next++;
      if (next < index.lines.length && index.lines[next] === line) {
        const verdict = JSON.parse(await readLineAt(verdicts, index.offsets[next]!)) as {
          id: string;
          judge: unknown;
        };
        const record = JSON.parse(text) as { id: string; judge?: unknown };
        if (record.id !== verdict.id)
          throw new Error(
            `${names.judgments}: line ${line} of ${names.dialogues} holds ${record.id}, not ${verdict.id}`,
          );
        out_ = JSON.stringify({ ...record, judge: verdict.judge });
        merged++;
      }
      pending.push(out_);
      if (pending.length >= 1_000) {
        await out.write(`${pending.join('\n')}\n`);
        pending = [];
      }
      line++;
    }
    if (pending.length > 0) await out.write(`${pending.join('\n')}\n`);
    await out.datasync();
  } catch (error) {
    await out.close();
    await unlink(dir.child(temp)).catch(() => undefined);
    await verdicts.close();
    throw error;
  }
  await out.close();
  await verdicts.close();
  await rename(dir.child(temp), dir.child(names.dialogues));
  return merged;
}
