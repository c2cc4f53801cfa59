/**
 * The judge's verdicts over a run's records, for the report's quality section and the dataset card:
 * the score distribution, mean scores per intent and per information flow, the flags named, and the
 * lowest-scored dialogues with their reasons. One pass, bounded memory (only the lowest are kept).
 */
import { emptyJudgeTally, meanJudgeScore, tallyVerdict } from '../method/judge';
import type { DialogueRecord, JudgeTally } from '../run/schemas';

/** Lowest-scored dialogues the report lists. */
export const LOWEST_LISTED = 10;

export interface LowScored {
  id: string;
  intent: string;
  infoFlow: string;
  score: number;
  flags: string[];
  reason: string;
}

export interface GroupScore {
  name: string;
  judged: number;
  mean: number;
}

export interface QualityStats {
  /** Records without a verdict (not in the judged sample, or from a run without a judge). */
  unjudged: number;
  tally: JudgeTally;
  mean: number | undefined;
  models: string[];
  byIntent: GroupScore[];
  byFlow: GroupScore[];
  lowest: LowScored[];
}

export class QualityAccumulator {
  private readonly tally = emptyJudgeTally();
  private unjudged = 0;
  private readonly models = new Set<string>();
  private readonly groups = { intent: new Map<string, number[]>(), flow: new Map<string, number[]>() };
  private lowest: LowScored[] = [];

  add(record: Pick<DialogueRecord, 'id' | 'intent' | 'info_flow' | 'judge'>): void {
    const verdict = record.judge;
    if (!verdict) {
      this.unjudged++;
      return;
    }
    this.models.add(verdict.model);
    tallyVerdict(this.tally, verdict);
    if (verdict.score === undefined) return;
    for (const [map, key] of [
      [this.groups.intent, record.intent],
      [this.groups.flow, record.info_flow],
    ] as const) {
      const sum = map.get(key) ?? [0, 0];
      map.set(key, [sum[0]! + 1, sum[1]! + verdict.score]);
    }
    if (this.lowest.length < LOWEST_LISTED || verdict.score < this.lowest.at(-1)!.score) {
      this.lowest.push({
        id: record.id,
        intent: record.intent,
        infoFlow: record.info_flow,
        score: verdict.score,
        flags: verdict.flags ?? [],
        reason: verdict.reason ?? '',
      });
      // Stable: among equal scores the earlier record stays listed.
      this.lowest.sort((a, b) => a.score - b.score);
      if (this.lowest.length > LOWEST_LISTED) this.lowest.pop();
    }
  }

  summary(): QualityStats {
    const groups = (map: Map<string, number[]>) =>
      [...map.entries()]
        .map(([name, [judged, sum]]) => ({ name, judged: judged!, mean: sum! / judged! }))
        .sort((a, b) => a.name.localeCompare(b.name));
    return {
      unjudged: this.unjudged,
      tally: this.tally,
      mean: meanJudgeScore(this.tally),
      models: [...this.models],
      byIntent: groups(this.groups.intent),
      byFlow: groups(this.groups.flow),
      lowest: this.lowest,
    };
  }
}
