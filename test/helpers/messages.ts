import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

const SRC = resolve(__dirname, '..', '..', 'src');

/** A text the package can print: its fixed parts, with a hole between each two for an interpolated value. */
export interface Message {
  /** file:line, to name it in a failure. */
  where: string;
  parts: string[];
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

function partsOf(node: ts.Node): string[] | undefined {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text];
  if (ts.isTemplateExpression(node))
    return [node.head.text, ...node.templateSpans.map((span) => span.literal.text)];
  return undefined;
}

/**
 * Every string and template literal of `src/` (messages, help texts, log lines), and every
 * `new ConfigError(field, message)` as the one line the CLI prints for it (`field: message`).
 * `skip` names files whose literals are not messages (the redaction's own patterns).
 */
export function packageMessages(skip: readonly string[] = []): Message[] {
  const messages: Message[] = [];
  for (const file of sourceFiles(SRC)) {
    const name = relative(SRC, file);
    if (skip.includes(name)) continue;
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const where = (node: ts.Node) =>
      `src/${name}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node): void => {
      const parts = partsOf(node);
      if (parts && !ts.isImportDeclaration(node.parent) && !ts.isExportDeclaration(node.parent))
        messages.push({ where: where(node), parts });
      if (
        ts.isNewExpression(node) &&
        node.expression.getText(source) === 'ConfigError' &&
        node.arguments?.length === 2
      ) {
        const field = partsOf(node.arguments[0]!) ?? ['', ''];
        const message = partsOf(node.arguments[1]!) ?? ['', ''];
        const joined = [...field.slice(0, -1), `${field.at(-1)!}: ${message[0]!}`, ...message.slice(1)];
        messages.push({ where: where(node), parts: joined });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return messages;
}
