import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../helpers/cli';
import { runCliInProcess } from '../helpers/cli-in-process';
import { readDialogues, readJsonl } from '../helpers/output';
import { launchChromium, PROBE_CHARTS, type ChartProbe } from '../helpers/browser';
import { loadWithConsumers } from '../helpers/python';
import { syntheticRecord, writeSyntheticRun } from '../helpers/synthetic-run';
import { tempDir } from '../helpers/temporal';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { exportDataset } from '../../src/export/export';
import { wordCount } from '../../src/method/replies';
import type { DialogueRecord } from '../../src/run/schemas';

let llm: LlmServer;
let runDir: string;
let records: DialogueRecord[];

/**
 * A real small run: the CLI, the embedded Temporal server and worker, the test LLM server. Some replies
 * are broken and each call gets one attempt, so the run also has real failures for the report.
 */
before(async () => {
  llm = await startLlmServer({ latency: { meanMs: 5 }, faults: { malformedJson: 0.1, serverError: 0.05 } });
  runDir = join(await tempDir('cc-export-'), 'run');
  const result = await runCli(
    [
      ...['generate', '--out', runDir, '--model', 'test-model', '--dialogs-per-intent', '3', '--turns', '2'],
      ...['--max-attempts', '1'],
    ],
    { OPENAI_API_KEY: 'sk-export-test', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' },
  );
  assert.ok(result.code === 0 || result.code === 1, result.stderr);
  records = await readDialogues(runDir);
  assert.ok(records.length >= 5, `${records.length} dialogues written`);
  assert.equal(records.length + (await readJsonl(join(runDir, 'failures.jsonl'))).length, 27);
});
after(async () => {
  await llm?.close();
});

const SYSTEM = 'You are a helpful assistant. «Ünïcode» & "quotes" </script>';

describe('export', () => {
  test('export: openai JSONL loads in datasets and pandas with every row and one conversation exact', async () => {
    const out = join(runDir, 'export', 'openai');
    const result = await runCli(['export', runDir, '--format', 'openai', '--system', SYSTEM]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`exported ${records.length} of ${records.length} dialogues as openai`),
    );
    const lines = await readJsonl<{ messages: { role: string; content: string }[] }>(
      join(out, 'train.jsonl'),
    );
    assert.equal(lines.length, records.length);
    assert.deepEqual(Object.keys(lines[0]!), ['messages'], 'no keys OpenAI fine-tuning would reject');
    const index = records.length - 1;
    const expected = {
      messages: [
        { role: 'system', content: SYSTEM },
        ...records[index]!.conversation.map((t) => ({ role: t.role, content: t.value })),
      ],
    };
    const seen = await loadWithConsumers('jsonl', join(out, 'train.jsonl'), index);
    for (const view of [...seen.datasets, ...seen.pandas]) {
      assert.equal(view.rows, records.length, view.loader);
      assert.deepEqual(view.columns, ['messages'], view.loader);
      assert.deepEqual(view.row, expected, view.loader);
    }
  });

  test('export: sharegpt JSONL has the metadata columns and round-trips through datasets and pandas', async () => {
    const out = join(await tempDir('cc-export-sharegpt-'), 'nested', 'out');
    const result = await runCli(['export', runDir, '--format', 'sharegpt', '--out', out]);
    assert.equal(result.code, 0, result.stderr);
    const index = 3;
    const r = records[index]!;
    const expected = {
      id: r.id,
      conversations: r.conversation.map((t) => ({
        from: t.role === 'user' ? 'human' : 'gpt',
        value: t.value,
      })),
      category: r.category,
      intent: r.intent,
      info_flow: r.info_flow,
      topic: r.topic,
      // What the dialogue was planned from: the run's built-in attributes (and topic paths, when the
      // run was large enough to expand its topics).
      ...(r.topic_path ? { topic_path: r.topic_path } : {}),
      attributes: r.attributes,
      model: r.model,
    };
    assert.ok(r.attributes && Object.keys(r.attributes).length > 0, 'the run was planned with attributes');
    const seen = await loadWithConsumers('jsonl', join(out, 'train.jsonl'), index);
    for (const view of [...seen.datasets, ...seen.pandas]) {
      assert.equal(view.rows, records.length, view.loader);
      assert.deepEqual(view.columns, Object.keys(expected), view.loader);
      assert.deepEqual(view.row, expected, view.loader);
    }
  });

  test('export: hf Parquet shards and card load as a dataset directory, by parquet and in pandas', async () => {
    const out = join(await tempDir('cc-export-hf-'), 'hf');
    // Shards of 2 rows, so the run's records make several files the loaders must join in order.
    const result = await exportDataset({
      dir: runDir,
      format: 'hf',
      out,
      system: SYSTEM,
      license: 'cc-by-4.0',
      parquet: { rowsPerShard: 2, batchRows: 1, rowGroupRows: 1 },
    });
    assert.equal(result.written, records.length);
    const shards = Math.ceil(records.length / 2);
    const pad = (n: number) => String(n).padStart(5, '0');
    assert.deepEqual(
      (await readdir(join(out, 'data'))).sort(),
      Array.from({ length: shards }, (_, i) => `train-${pad(i)}-of-${pad(shards)}.parquet`),
    );
    const card = await readFile(join(out, 'README.md'), 'utf8');
    const header = card.split('---\n')[1]!;
    for (const line of [
      'license: cc-by-4.0',
      '  - text-generation',
      '  - n<1K',
      '  - en',
      '      - split: train',
      '        path: data/train-*',
    ])
      assert.ok(header.includes(`${line}\n`), `card header has "${line}"`);
    assert.match(card, /\| model \| test-model \|/);
    assert.match(card, /\| `numTurnsPerDialog` \| `2` \|/);
    const intent = records[0]!.intent;
    assert.ok(
      card.includes(`| ${intent} | ${records.filter((r) => r.intent === intent).length} |`),
      'intent counts',
    );
    assert.match(card, /consistent-chat 0\.\d+\.\d+/);
    assert.doesNotMatch(card, /outDir/, 'no local path in a card meant for publishing');

    const index = records.length - 2;
    const r = records[index]!;
    const expected = {
      id: r.id,
      messages: [
        { role: 'system', content: SYSTEM },
        ...r.conversation.map((t) => ({ role: t.role, content: t.value })),
      ],
      category: r.category,
      intent: r.intent,
      info_flow: r.info_flow,
      topic: r.topic,
      model: r.model,
      topic_path: r.topic_path ?? null,
      attributes: JSON.stringify(r.attributes),
    };
    const seen = await loadWithConsumers('hf', out, index);
    assert.equal(seen.datasets.length, 2);
    for (const view of [...seen.datasets, ...seen.pandas]) {
      assert.equal(view.rows, records.length, view.loader);
      assert.deepEqual(view.columns, Object.keys(expected), view.loader);
      assert.deepEqual(view.row, expected, view.loader);
    }

    // A second export with fewer shards replaces the first one's files, never mixes them.
    const again = await runCli(['export', runDir, '--format', 'hf', '--out', out]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await readdir(join(out, 'data')), ['train-00000-of-00001.parquet']);
  });

  test('export: --dedup drops planted exact and near duplicates, keeps the first and lists the rest', async () => {
    const dir = await tempDir('cc-dedup-');
    const base = Array.from({ length: 200 }, (_, i) => syntheticRecord(i));
    const copy = (
      r: DialogueRecord,
      id: string,
      edit: (v: string, turn: number) => string,
    ): DialogueRecord => ({
      ...r,
      id,
      conversation: r.conversation.map((t, i) => ({ ...t, value: edit(t.value, i) })),
    });
    const planted = [
      // exact once normalised: case, punctuation and spacing changed
      copy(base[10]!, 'planted.exact.1', (v) => `  ${v.toUpperCase().replace(/\./g, '!')}  `),
      copy(base[20]!, 'planted.exact.2', (v) => v.replace(/ /g, '  ')),
      // paraphrases: one word replaced in each turn, and a turn's last words reworded
      copy(base[30]!, 'planted.near.1', (v) => v.replace(/^\S+/, 'honestly')),
      copy(base[40]!, 'planted.near.2', (v, i) =>
        i === 1 ? `${v.split(' ').slice(0, -3).join(' ')} as we said.` : v,
      ),
    ];
    const all = [...base.slice(0, 100), ...planted, ...base.slice(100)];
    await writeSyntheticRun(dir, { records: all });
    const out = join(dir, 'export', 'deduped');
    const result = await runCli(['export', dir, '--format', 'sharegpt', '--dedup', '--out', out]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /exported 200 of 204 dialogues .* 2 exact and 2 near duplicates left out/);
    const kept = await readJsonl<{ id: string }>(join(out, 'train.jsonl'));
    assert.deepEqual(
      kept.map((k) => k.id),
      base.map((b) => b.id),
    );
    const listed = await readJsonl<{ id: string; duplicate_of: string; kind: string; similarity: number }>(
      join(out, 'duplicates.jsonl'),
    );
    assert.deepEqual(
      listed.map(({ id, duplicate_of, kind }) => ({ id, duplicate_of, kind })),
      [
        { id: 'planted.exact.1', duplicate_of: base[10]!.id, kind: 'exact' },
        { id: 'planted.exact.2', duplicate_of: base[20]!.id, kind: 'exact' },
        { id: 'planted.near.1', duplicate_of: base[30]!.id, kind: 'near' },
        { id: 'planted.near.2', duplicate_of: base[40]!.id, kind: 'near' },
      ],
    );
    for (const l of listed.filter((l) => l.kind === 'near'))
      assert.ok(l.similarity >= 0.8 && l.similarity < 1);

    // A stricter threshold keeps the paraphrases; an export without --dedup removes the stale list.
    const strict = await runCli([
      'export',
      dir,
      '--format',
      'openai',
      '--dedup',
      '--near-threshold',
      '0.99',
      '--out',
      out,
    ]);
    assert.equal(strict.code, 0, strict.stderr);
    assert.match(strict.stdout, /exported 202 of 204 .* 2 exact and 0 near/);
    const plain = await runCli(['export', dir, '--format', 'openai', '--out', out]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(existsSync(join(out, 'duplicates.jsonl')), false);
    assert.equal((await readJsonl(join(out, 'train.jsonl'))).length, 204);
  });

  test('export: bad input exits 2 with one line naming the field and writes nothing outside --out', async () => {
    const root = await tempDir('cc-export-bad-');
    const good = join(root, 'good');
    await writeSyntheticRun(good, { count: 5 });
    const broken = join(root, 'broken');
    await writeSyntheticRun(broken, { count: 5 });
    const bad = { ...syntheticRecord(5), conversation: [{ role: 'user', value: 'only a question' }] };
    await appendFile(join(broken, 'dialogs.jsonl'), `${JSON.stringify(bad)}\n`);
    const notJson = join(root, 'not-json');
    await writeSyntheticRun(notJson, { count: 2 });
    await appendFile(join(notJson, 'dialogs.jsonl'), '{"id": "torn\n');
    const aFile = join(root, 'a-file');
    await writeFile(aFile, 'x');
    const escape = join(root, 'escape');
    await mkdir(join(root, 'elsewhere'));
    await mkdir(escape);
    await symlink(join(root, 'elsewhere'), join(escape, 'data'));
    // Links planted at the names an export writes are replaced, never written through.
    const planted = join(root, 'planted');
    await mkdir(join(planted, 'data'), { recursive: true });
    for (const name of ['README.md', 'train.jsonl', 'duplicates.jsonl', 'data/train-00000-of-00001.parquet'])
      await symlink(join(root, 'elsewhere', name.replace('/', '-')), join(planted, name));

    const cases: [string[], RegExp][] = [
      [['export', join(root, 'missing'), '--format', 'openai'], /DIR/],
      [['export', aFile, '--format', 'openai'], /DIR/],
      [['export', good, '--format', 'csv'], /--format/],
      [['export', good], /--format/],
      [['export', good, '--format', 'openai', '--system', '  '], /--system/],
      [['export', good, '--format', 'openai', '--dedup', '--near-threshold', '1.5'], /--near-threshold/],
      [['export', good, '--format', 'hf', '--license', 'My Licence'], /--license/],
      [['export', good, '--format', 'openai', '--out', aFile], /--out/],
      [['export', good, '--format', 'openai', '--out', good], /--out/],
      [['export', good, '--format', 'hf', '--out', escape], /--out/],
      [
        ['export', broken, '--format', 'openai', '--out', join(root, 'o1')],
        /dialogs\.jsonl line 6 conversation/,
      ],
      [
        ['export', notJson, '--format', 'hf', '--out', join(root, 'o2')],
        /dialogs\.jsonl line 3.*not valid JSON/,
      ],
      [['report', broken], /dialogs\.jsonl line 6 conversation/],
    ];
    // Three through a process of their own as a user runs them, the rest through the same main() in-process.
    const spawned = new Set([0, 9, 10]);
    for (const [i, [args, pattern]] of cases.entries()) {
      const result = spawned.has(i) ? await runCli(args) : await runCliInProcess(args);
      assert.equal(result.code, 2, `${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
      assert.match(result.stderr, pattern, args.join(' '));
      assert.equal(
        result.stderr.trim().split('\n').length,
        1,
        `one line for ${args.join(' ')}: ${result.stderr}`,
      );
    }
    for (const format of ['hf', 'openai']) {
      const ok = await runCliInProcess(['export', good, '--format', format, '--out', planted, '--dedup']);
      assert.equal(ok.code, 0, ok.stderr);
    }
    assert.deepEqual(await readdir(join(root, 'elsewhere')), [], 'nothing written through a symlink');
    assert.deepEqual(await readdir(join(root, 'o1')), [], 'a failed export leaves no partial file');
    assert.deepEqual(await readdir(join(root, 'o2', 'data')), []);
    assert.deepEqual(
      (await readdir(good)).sort(),
      ['dialogs.jsonl', 'run.json'],
      'nothing written in the run',
    );
  });
});

/** Where the report test keeps its screenshot (CI keeps the workspace's test output). */
const TEST_OUTPUT = resolve(process.env.TEST_OUTPUT_DIR ?? join(__dirname, '..', '..', 'test-output'));

describe('report', () => {
  test('report: report.html draws every chart with data, offline, with no console error; the terminal prints the same figures', async (t) => {
    // The real run, plus one planted exact and one planted near duplicate of its dialogues.
    const dir = join(await tempDir('cc-report-'), 'run');
    await cp(runDir, dir, { recursive: true, filter: (src) => !/[/\\](\.temporal|export)$/.test(src) });
    const failures = await readJsonl<{ type: string; stage: string }>(join(dir, 'failures.jsonl'));
    assert.ok(failures.length > 0, 'the run has failures');
    const exact = { ...records[0]!, id: `${records[0]!.id}.copy` };
    const last = records[1]!.conversation.length - 1;
    const near = {
      ...records[1]!,
      id: `${records[1]!.id}.reworded`,
      conversation: records[1]!.conversation.map((turn, i) =>
        i === last ? { ...turn, value: `${turn.value} Hope that helps` } : turn,
      ),
    };
    await appendFile(join(dir, 'dialogs.jsonl'), `${JSON.stringify(exact)}\n${JSON.stringify(near)}\n`);

    const result = await runCli(['report', dir, '--near-threshold', '0.7']);
    assert.equal(result.code, 0, result.stderr);
    const table = result.stdout;
    assert.match(
      table,
      new RegExp(`^dialogues ${records.length + 2}, failed ${failures.length}, model test-model`, 'm'),
    );
    assert.match(
      table,
      /duplicates \(near = Jaccard >= 0\.7\): dialogues 1 exact, 1 near; queries [2-9]\d* exact/,
    );
    const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as {
      tokens: { prompt: number; completion: number };
    };
    assert.ok(summary.tokens.prompt > 0, 'generate wrote summary.json');
    assert.match(
      table,
      new RegExp(`tokens: prompt ${summary.tokens.prompt}, completion ${summary.tokens.completion}`),
    );
    for (const f of failures)
      assert.match(table, new RegExp(`${f.type.replace('.', '\\.')} at ${f.stage} ×\\d+`));
    const sizes = new Set(records.map((r) => r.conversation.length / 2));
    assert.deepEqual(sizes, new Set([2]));
    assert.match(table, new RegExp(`turns per dialogue: 2×${records.length + 2}$`, 'm'));
    // generate stored every record's metrics (the planted copies carry their originals').
    const n = records.length + 2;
    assert.match(table, new RegExp(`dialogue metrics .*; ${n} of ${n} stored with the record`));
    assert.match(table, /^ {2}distinct_2\.assistant +0\.\d+/m);

    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) problems.push(`network request: ${r.url()}`);
      });
      await page.goto(`file://${join(dir, 'report.html')}`);
      await page.waitForFunction('Array.isArray(window.reportCharts)');
      const charts = await page.evaluate<ChartProbe[]>(PROBE_CHARTS);
      assert.deepEqual(
        charts.map((c) => c.id),
        [
          'intent-flow',
          'topics',
          'turns',
          'query-words',
          'response-words',
          'tokens',
          'failures',
          'duplicates',
          'metric-distinct',
          'metric-repetition',
          'metric-restated',
        ],
      );
      for (const c of charts) {
        assert.ok(c.drawn, `${c.id} drawn`);
        assert.ok(c.total > 0, `${c.id} has data`);
        assert.ok(c.canvas && c.canvas.width > 100 && c.canvas.height > 100, `${c.id} has a canvas`);
      }
      const byId = Object.fromEntries(charts.map((c) => [c.id, c.total]));
      assert.equal(byId['intent-flow'], records.length + 2, 'heatmap cells sum to the dialogues');
      assert.equal(byId.turns, records.length + 2);
      assert.equal(byId.failures, failures.length);
      const marks = Object.fromEntries(charts.map((c) => [c.id ?? '', c.marks] as const));
      const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
      const words = (role: string) =>
        [...records, ...records.slice(0, 2)].flatMap((r) =>
          r.conversation.filter((turn) => turn.role === role).map((turn) => wordCount(turn.value)),
        );
      assert.deepEqual(marks['query-words']!.slice(0, 2), [18.7, 20.8], 'paper means marked');
      assert.deepEqual(marks['response-words']!.slice(0, 2), [55.6, 62.9]);
      assert.equal(byId['metric-restated'], records.length + 2, 'every dialogue in the restated chart');
      assert.ok(Math.abs(marks['query-words']![2]! - mean(words('user'))) < 1e-9, 'run mean marked');
      assert.deepEqual(problems, []);
      await mkdir(TEST_OUTPUT, { recursive: true });
      const shot = join(TEST_OUTPUT, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
    } finally {
      await browser.close();
    }
  });
});
