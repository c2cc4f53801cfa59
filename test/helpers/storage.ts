/** Storage fixtures: a record to store, and directory snapshots that prove a test touched nothing. */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DialogueRecord } from '../../src/run/schemas';

/** A small record the schema accepts; stores key on `id`, and `value` lets a test vary the text. */
export const testRecord = (id: string, value = 'hello'): DialogueRecord => ({
  id,
  category: 'Test Category',
  conversation: [
    { role: 'user', value },
    { role: 'assistant', value: `re: ${value}` },
  ],
  intent: 'Transaction Interaction',
  info_flow: 'User Needs → Solutions',
  topic: 'a topic',
  model: 'm',
});

/** Every entry below `dir` with its kind, size, mtime and content (files) or target (links). */
export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (at: string, rel: string) => {
    const info = await lstat(at);
    if (info.isSymbolicLink()) out[rel] = `link ${await readlink(at)}`;
    else if (info.isDirectory()) {
      out[rel] = `dir ${info.mtimeMs}`;
      for (const name of (await readdir(at)).sort()) await walk(join(at, name), join(rel, name));
    } else out[rel] = `file ${info.size} ${info.mtimeMs} ${await readFile(at, 'base64')}`;
  };
  await walk(dir, '.');
  return out;
}
