import type { TestContext } from 'node:test';

/** Sets (or, with `undefined`, unsets) environment variables for one test; the old values come back after it. */
export function withEnv(t: TestContext, vars: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(vars)) {
    const before = process.env[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
    t.after(() => {
      if (before === undefined) delete process.env[name];
      else process.env[name] = before;
    });
  }
}
