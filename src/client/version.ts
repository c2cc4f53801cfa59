import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let cached: string | undefined;

/** This package's version, from its package.json (the same path from src/ and dist/). */
export function packageVersion(): string {
  if (cached === undefined) {
    try {
      cached = (
        JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
      ).version;
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
