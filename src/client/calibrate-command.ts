/** `consistent-chat calibrate`: how well a judge model separates consistent dialogues from planted twins. */
import type { Command } from 'commander';
import { createJudgeClient, createOpenAiClient } from '../activities/openai-client';
import { ConfigError } from '../shared/errors';
import { CALIBRATION_WARN_AUC, calibrateJudge, describeCalibration, rubricProtocol } from './calibrate';
import { readPromptsDir } from './method-files';

export function addCalibrateCommand(program: Command): void {
  program
    .command('calibrate')
    .description(
      'score the built-in calibration set (consistent dialogues and twins with planted failures) with a judge model, and print how well it separates them, before paying for --judge',
    )
    .option('--model <name>', 'the judge model (default OPENAI_MODEL)')
    .option(
      '--judge-base-url <url>',
      "the judge's endpoint, key in CONSISTENT_CHAT_JUDGE_API_KEY (default CONSISTENT_CHAT_JUDGE_BASE_URL, else OPENAI_BASE_URL)",
    )
    .option(
      '--prompts <dir>',
      "a prompts directory whose judge.txt is the rubric to calibrate (as generate's)",
    )
    .option('--json', 'print the result as JSON')
    .action(async (opts: { model?: string; judgeBaseUrl?: string; prompts?: string; json?: boolean }) => {
      const model = opts.model ?? process.env.OPENAI_MODEL;
      if (!model) throw new ConfigError('--model', 'no judge model given: pass --model or set OPENAI_MODEL');
      const template = opts.prompts ? (await readPromptsDir(opts.prompts)).judge : undefined;
      const openai = createJudgeClient({ baseURL: opts.judgeBaseUrl }) ?? createOpenAiClient();
      const result = await calibrateJudge({
        openai,
        model,
        protocol: rubricProtocol(template),
        onScored: (done, total) => {
          if (process.stderr.isTTY) process.stderr.write(`\rscored ${done}/${total}`);
        },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (opts.json) process.stdout.write(`${JSON.stringify({ model, ...result }, null, 2)}\n`);
      else {
        const rows = result.scores.map(
          (s) =>
            `  ${s.id.padEnd(28)} ${(s.planted ?? 'consistent').padEnd(22)} ${String(s.score ?? '-').padStart(3)}  ${s.flags.join(', ')}`,
        );
        process.stdout.write(`judge ${model}: ${describeCalibration(result)}\n${rows.join('\n')}\n`);
      }
      if (result.auc === undefined || result.auc < CALIBRATION_WARN_AUC)
        process.stderr.write(
          `warning: the judge ${model} barely tells consistent dialogues from planted failures (AUC ${result.auc?.toFixed(2) ?? 'n/a'}); its scores say little\n`,
        );
    });
}
