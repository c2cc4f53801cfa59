/**
 * The README's method examples, copied into files exactly as shown: the taxonomy loads, and each
 * prompt template is what the LLM receives, with no line that only named the file.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { readPromptsDir, readTaxonomyFile } from '../../src/client/method-files';
import { planDialogue, promptContext, responsesMessages, skeletonMessages } from '../../src/method';
import { tempDir } from '../helpers/temporal';

const ROOT = join(__dirname, '..', '..');

/** The README's section `## TITLE`, up to the next second-level heading. */
async function readmeSection(title: string): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has a section "${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** Each ```LANG block of a text with the last file path the prose before it names (`prompts/x.txt`). */
function codeBlocks(text: string, lang: string, pathPattern: RegExp) {
  const blocks: { file: string | undefined; code: string }[] = [];
  const fence = new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g');
  let previousEnd = 0;
  for (const match of text.matchAll(fence)) {
    const prose = text.slice(previousEnd, match.index);
    const named = [...prose.matchAll(pathPattern)].at(-1)?.[1];
    blocks.push({ file: named, code: match[1] ?? '' });
    previousEnd = match.index + match[0].length;
  }
  return blocks;
}

test('README: the prompt examples, saved as shown, are sent to the LLM as written, without their file names', async () => {
  const section = await readmeSection('Your own taxonomy and prompts');
  const blocks = codeBlocks(section, 'text', /`prompts\/([a-z.]+\.txt)`/g);
  assert.deepEqual(
    blocks.map((b) => b.file),
    ['skeleton.txt', 'responses.txt'],
    'each prompt example is introduced by the name of its file, outside the block',
  );
  const dir = join(await tempDir('readme-prompts'), 'prompts');
  await mkdir(dir);
  for (const { file, code } of blocks) await writeFile(join(dir, file!), code);
  const prompts = await readPromptsDir(dir);

  const taxonomyDir = await tempDir('readme-taxonomy');
  const [yamlBlock] = codeBlocks(section, 'yaml', /(taxonomy\.yaml)/g);
  await writeFile(join(taxonomyDir, 'taxonomy.yaml'), yamlBlock?.code ?? '');
  const taxonomy = await readTaxonomyFile(join(taxonomyDir, 'taxonomy.yaml'));

  const plan = planDialogue({ runId: 'r', seed: 's', intent: 'billing', index: 0, taxonomy });
  const [, skeleton] = skeletonMessages(plan, 3, promptContext('skeleton', plan, taxonomy, prompts));
  const [, responses] = responsesMessages(
    plan,
    { category: 'Refund', queries: ['where is my refund?', 'it has been a month'] },
    promptContext('responses', plan, taxonomy, prompts),
  );
  const sent = [skeleton?.content, responses?.content] as string[];
  assert.match(sent[0]!, /^You are writing what a customer types to a support assistant \(Billing Help\)/);
  assert.match(sent[1]!, /^Reply as the support assistant/);
  for (const text of sent) assert.doesNotMatch(text, /prompts\/|^#/m);
});
