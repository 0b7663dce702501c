/**
 * The event registry is the truth about the log: every log call in src/ names a registered
 * event, at a registered level, with registered fields; every registered event is logged
 * somewhere; every name has the one style. Read from the source with the TypeScript parser.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { EVENT_NAME_STYLE, EVENTS, type EventLevel, type EventSpec } from '../../../src/ops/events.js';

const SRC = join(process.cwd(), 'src');
const LEVELS = new Set<string>(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
/** helpers that log the event name they are given: the function name and the level they log at */
const EVENT_HELPERS: Readonly<Record<string, EventLevel>> = { note: 'warn' };
/** where an event name arrives as a parameter (the helpers above), file → parameter name */
const NAME_PARAMETERS: Readonly<Record<string, string>> = { 'core/interval-log.ts': 'event' };

interface LogCall {
  readonly where: string;
  readonly level: string; // '*' when computed (log[level])
  readonly names: readonly string[];
  readonly fields: readonly string[];
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.ts') ? [path] : [];
  });
}

function literalNames(node: ts.Expression | undefined): string[] | undefined {
  if (node === undefined) return undefined;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text];
  if (ts.isConditionalExpression(node)) {
    const a = literalNames(node.whenTrue);
    const b = literalNames(node.whenFalse);
    return a !== undefined && b !== undefined ? [...a, ...b] : undefined;
  }
  if (ts.isParenthesizedExpression(node)) return literalNames(node.expression);
  return undefined;
}

function fieldsOf(node: ts.Expression | undefined): string[] {
  if (node === undefined || !ts.isObjectLiteralExpression(node)) return [];
  return node.properties.flatMap((p) => (p.name !== undefined && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? [p.name.text] : []));
}

function logCalls(): { calls: LogCall[]; problems: string[] } {
  const calls: LogCall[] = [];
  const problems: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && node.arguments.length > 0) {
        const where = `${rel}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
        const callee = node.expression;
        let level: string | undefined;
        let helper = false;
        if (ts.isPropertyAccessExpression(callee) && LEVELS.has(callee.name.text)) level = callee.name.text;
        else if (ts.isElementAccessExpression(callee) && /^(log|logger)$/.test(callee.expression.getText(source))) level = '*';
        else {
          const name = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : undefined;
          if (name !== undefined && Object.hasOwn(EVENT_HELPERS, name)) {
            level = EVENT_HELPERS[name];
            helper = true;
          }
        }
        if (level !== undefined) {
          const nameArg = helper ? node.arguments[0] : node.arguments.at(-1);
          const fieldArg = helper ? node.arguments[1] : node.arguments.length > 1 ? node.arguments[0] : undefined;
          const names = literalNames(nameArg);
          if (names !== undefined) calls.push({ where, level, names, fields: fieldsOf(fieldArg) });
          else if (!(nameArg !== undefined && ts.isIdentifier(nameArg) && NAME_PARAMETERS[rel] === nameArg.text)) {
            problems.push(`${where}: the event name is not a string literal (${nameArg?.getText(source).slice(0, 60)})`);
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { calls, problems };
}

const { calls, problems } = logCalls();
const registry: Readonly<Record<string, EventSpec>> = EVENTS;

describe('the event registry (ops/events.ts)', () => {
  it('finds the log calls (the scanner works)', () => {
    expect(calls.length).toBeGreaterThan(40);
    expect(calls.some((c) => c.names.includes('delivery') && c.level === '*')).toBe(true);
  });

  it('every log call names its event with a literal', () => {
    expect(problems).toEqual([]);
  });

  it('every logged event is registered, at its level, with its fields', () => {
    const wrong: string[] = [];
    for (const call of calls) {
      for (const name of call.names) {
        const spec = registry[name];
        if (spec === undefined) {
          wrong.push(`${call.where}: "${name}" is not in EVENTS`);
          continue;
        }
        const levels: readonly string[] = typeof spec.level === 'string' ? [spec.level] : spec.level;
        if (call.level !== '*' && !levels.includes(call.level)) wrong.push(`${call.where}: "${name}" logged at ${call.level}, registered at ${levels.join('/')}`);
        const extra = call.fields.filter((f) => !spec.fields.includes(f));
        if (extra.length > 0) wrong.push(`${call.where}: "${name}" has fields ${extra.join(', ')} not in its row`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('every registered event is logged somewhere (no dead rows)', () => {
    const used = new Set(calls.flatMap((c) => c.names));
    expect(Object.keys(EVENTS).filter((name) => !used.has(name))).toEqual([]);
  });

  it('every event name has the one style (lower-case words joined by "-", dotted areas)', () => {
    expect(Object.keys(EVENTS).filter((name) => !EVENT_NAME_STYLE.test(name))).toEqual([]);
  });
});
