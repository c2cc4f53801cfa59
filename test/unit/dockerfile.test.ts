/**
 * The Dockerfile, run without Docker: its build stage is replayed in a temp directory that holds only the
 * files its COPY lines copy, so a file the build needs but the Dockerfile forgets fails here as it would
 * in `docker build`. `npm ci` is the one step not re-run (no registry needed): it is checked to have the
 * manifests it installs from, and this checkout's node_modules stands in for what it would install.
 * The runtime stage's copies are then checked against what the build produced, and its CLI started.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/temporal';

const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  name?: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const stages: Stage[] = [];
  for (const line of lines) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(trimmed) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') stages.push({ name: /\sAS\s+(\S+)$/i.exec(args)?.[1], instructions: [] });
    stages.at(-1)?.instructions.push({ keyword: upper, args });
  }
  return stages;
}

/** COPY's flags, sources and destination (shell or JSON form). */
function parseCopy(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** Where a path of the image lands in the temp directory that stands for the stage's filesystem. */
function inStage(fsRoot: string, workdir: string, path: string): string {
  return join(fsRoot, posix.resolve(workdir, path));
}

async function copyInto(from: string, sources: string[], dest: string, toDir: boolean): Promise<void> {
  for (const source of sources) {
    const src = join(from, source);
    assert.ok(existsSync(src), `COPY source ${source} exists`);
    const target = toDir ? join(dest, posix.basename(source)) : dest;
    await mkdir(join(target, '..'), { recursive: true });
    await cp(src, target, { recursive: true });
  }
}

/** Replays one stage: WORKDIR, COPY from the context (or an earlier stage), ENV and RUN. */
async function replayStage(
  stage: Stage,
  fsRoot: string,
  stages: Map<string, { fsRoot: string }>,
): Promise<{ workdir: string; log: string }> {
  let workdir = '/';
  const env: Record<string, string> = {};
  let log = '';
  for (const { keyword, args } of stage.instructions) {
    if (keyword === 'WORKDIR') {
      workdir = posix.resolve(workdir, args);
      await mkdir(inStage(fsRoot, '/', workdir), { recursive: true });
    } else if (keyword === 'ENV') {
      for (const [, k, v] of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[k!] = v!.replace(/^"|"$/g, '');
    } else if (keyword === 'COPY') {
      const { from, sources, dest } = parseCopy(args);
      const source = from ? stages.get(from)?.fsRoot : ROOT;
      assert.ok(source, `COPY --from=${from} names an earlier stage`);
      // `--from` sources are absolute paths of that stage's filesystem.
      await copyInto(
        from ? source : ROOT,
        from ? sources.map((s) => relative('/', s)) : sources,
        inStage(fsRoot, workdir, dest),
        // As Docker reads it: a destination ending in `/` (or several sources) is a directory.
        dest.endsWith('/') || sources.length > 1,
      );
    } else if (keyword === 'RUN') {
      const cwd = inStage(fsRoot, '/', workdir);
      for (const command of args.split(/\s*&&\s*/)) {
        if (/^npm ci\b/.test(command)) {
          // What npm ci installs from must have been copied before it runs.
          for (const manifest of ['package.json', 'package-lock.json'])
            assert.ok(existsSync(join(cwd, manifest)), `${manifest} is copied before \`${command}\``);
          if (!existsSync(join(cwd, 'node_modules')))
            await symlink(join(ROOT, 'node_modules'), join(cwd, 'node_modules'), 'dir');
          continue;
        }
        if (/^(npm cache clean|mkdir|chown)\b/.test(command)) continue; // image housekeeping
        try {
          const out = await run('sh', ['-c', command], {
            cwd,
            env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
            maxBuffer: 16 * 1024 * 1024,
          });
          log += out.stdout + out.stderr;
        } catch (error) {
          const e = error as { stdout?: string; stderr?: string; message: string };
          assert.fail(
            `RUN ${command} failed in the stage's files:\n${e.stdout ?? ''}${e.stderr ?? e.message}`,
          );
        }
      }
    }
  }
  return { workdir, log };
}

test('Dockerfile: the build stage builds from only the files it copies; the runtime stage finds what it copies', async () => {
  const stages = parseDockerfile(await readFile(join(ROOT, 'Dockerfile'), 'utf8'));
  assert.equal(stages.length, 2, 'a build stage and a runtime stage');
  const [build, runtime] = stages as [Stage, Stage];
  assert.equal(build.name, 'build');
  const dir = await tempDir('cc-dockerfile-');
  try {
    const buildRoot = join(dir, 'build');
    const { workdir } = await replayStage(build, buildRoot, new Map());
    const app = inStage(buildRoot, '/', workdir);
    for (const file of ['dist/index.js', 'dist/worker.js', 'dist/workflow-bundle.js', 'dist/client/cli.js'])
      assert.ok(existsSync(join(app, file)), `the build produced ${file}`);

    const runtimeRoot = join(dir, 'runtime');
    const runtimeStage = await replayStage(runtime, runtimeRoot, new Map([['build', { fsRoot: buildRoot }]]));
    const entrypoint = runtime.instructions.find((i) => i.keyword === 'ENTRYPOINT');
    assert.deepEqual(JSON.parse(entrypoint!.args), ['node', 'bin/consistent-chat.js']);
    assert.ok(
      runtime.instructions.some((i) => i.keyword === 'USER' && i.args === 'node'),
      'runs as node',
    );
    // The image's command line starts from the copied files alone (with the production modules).
    const cwd = inStage(runtimeRoot, '/', runtimeStage.workdir);
    const { stdout } = await run('node', ['bin/consistent-chat.js', '--help'], { cwd });
    assert.match(stdout, /worker/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Dockerfile: a build stage that forgets a COPY fails the check', async () => {
  const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  const [build] = parseDockerfile(text) as [Stage];
  // Drop the copy of the sources: the build cannot pass without them.
  const broken: Stage = {
    ...build,
    instructions: build.instructions.filter((i) => !(i.keyword === 'COPY' && /\bsrc\b/.test(i.args))),
  };
  assert.ok(broken.instructions.length < build.instructions.length);
  const dir = await tempDir('cc-dockerfile-');
  try {
    await assert.rejects(replayStage(broken, join(dir, 'build'), new Map()), /RUN npm run build failed/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
