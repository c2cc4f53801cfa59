/**
 * Export memory and time on a synthetic run: writes N records (default 1,000,000) once, then exports
 * them in each format in a fresh child process and reports the child's peak RSS and wall time, so a
 * flat figure across sizes shows the export streams.
 *
 *   node --import tsx bench/export.ts                       1,000,000 records, every format
 *   node --import tsx bench/export.ts --records 100000 --formats hf --dedup
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exportDataset } from '../src/export/export';
import type { ExportFormat } from '../src/export/formats';
import { writeSyntheticRun } from '../test/helpers/synthetic-run';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    formats: { type: 'string', default: 'openai,sharegpt,hf' },
    dedup: { type: 'boolean', default: false },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    child: { type: 'string' },
    // Node flags of the exporting process, e.g. --max-old-space-size=64 to show it needs no more.
    'node-option': { type: 'string', multiple: true },
  },
});

async function child(format: ExportFormat, dir: string): Promise<void> {
  const started = performance.now();
  const result = await exportDataset({ dir, format, out: join(dir, 'export', format), dedup: args.dedup });
  process.stdout.write(
    JSON.stringify({
      format,
      written: result.written,
      seconds: (performance.now() - started) / 1000,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
    }) + '\n',
  );
}

function runChild(format: string, dir: string): Promise<Record<string, number | string>> {
  return new Promise((resolveRun, reject) => {
    const extra = args.dedup ? ['--dedup'] : [];
    const proc = spawn(
      process.execPath,
      [
        ...(args['node-option'] ?? []),
        '--import',
        'tsx',
        __filename,
        '--child',
        format,
        '--dir',
        dir,
        ...extra,
      ],
      {
        cwd: resolve(__dirname, '..'),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) =>
      code === 0
        ? resolveRun(JSON.parse(out) as Record<string, number | string>)
        : reject(new Error(`exit ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  if (args.child) return child(args.child as ExportFormat, args.dir!);
  const records = Number(args.records);
  const dir = args.dir ?? join(tmpdir(), `cc-export-bench-${records}`);
  const exists = await stat(join(dir, 'dialogs.jsonl')).catch(() => undefined);
  if (!exists) {
    const t = performance.now();
    await mkdir(dir, { recursive: true });
    await writeSyntheticRun(dir, { count: records });
    process.stderr.write(`wrote ${records} records in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  }
  const size = (await stat(join(dir, 'dialogs.jsonl'))).size;
  const results = [];
  for (const format of args.formats.split(',')) {
    const r = await runChild(format, dir);
    results.push(r);
    process.stdout.write(
      `${String(r.format).padEnd(9)} ${records} records (${(size / 1e9).toFixed(2)} GB)${args.dedup ? ' --dedup' : ''}: ` +
        `${Number(r.seconds).toFixed(1)} s, peak RSS ${Number(r.peakRssMb).toFixed(0)} MB\n`,
    );
  }
  await mkdir(join(__dirname, 'results'), { recursive: true });
  await writeFile(
    join(
      __dirname,
      'results',
      `export-${records}${args.dedup ? '-dedup' : ''}${args['node-option'] ? '-node-options' : ''}.json`,
    ),
    JSON.stringify(
      {
        records,
        bytes: size,
        dedup: args.dedup,
        nodeOptions: args['node-option'] ?? [],
        node: process.version,
        results,
      },
      null,
      2,
    ),
  );
  if (!args.keep && !args.dir) await rm(dir, { recursive: true, force: true });
}

void main();
