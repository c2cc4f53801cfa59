/**
 * Tolerant extraction of the JSON object in a reply, for endpoints that wrap it in fences or prose.
 */
/** Finds the end of the balanced JSON object starting at `start`, or -1. */
function balancedObjectEnd(source: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < source.length; i++) {
    const ch = source[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i;
  }
  return -1;
}

/**
 * Parses the JSON object in an LLM reply: plain JSON, JSON in markdown fences, or JSON wrapped in
 * prose. Throws a SyntaxError saying what was wrong when no object can be found.
 */
export function extractJson(content: string): unknown {
  const trimmed = content.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    // fall through to the tolerant paths
  }
  const fenced = /```(?:json|JSON)?\s*\n?([\s\S]*?)```/.exec(trimmed);
  if (fenced?.[1]) {
    try {
      return JSON.parse(fenced[1].trim());
    } catch {
      // fall through
    }
  }
  for (let start = trimmed.indexOf('{'); start !== -1; start = trimmed.indexOf('{', start + 1)) {
    const end = balancedObjectEnd(trimmed, start);
    if (end === -1) break;
    try {
      return JSON.parse(trimmed.slice(start, end + 1));
    } catch {
      // try the next opening brace
    }
  }
  throw new SyntaxError(
    `reply is not JSON (${trimmed.length} chars, starts ${JSON.stringify(trimmed.slice(0, 60))})`,
  );
}
