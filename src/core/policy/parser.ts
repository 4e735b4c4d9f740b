/**
 * Parser for oslo.policy's rule language.
 *
 * A rule is a boolean expression over checks:
 *
 * - `@` always passes, `!` never passes, an empty (or all-blank) rule always passes;
 * - `role:NAME` passes when the caller holds role NAME (case-insensitive);
 * - `rule:NAME` evaluates another named rule;
 * - `KEY:VALUE` (a "generic" check) compares the credential at dotted path KEY
 *   with VALUE, which is a `%(target.key)s` substitution from the target, a
 *   quoted literal (`'member'`, `"member"`), `True`/`False`, or a bare literal;
 * - `not`, `and`, `or` (case-insensitive) and parentheses, with precedence
 *   `not` > `and` > `or`.
 *
 * Everything is resolved here, once: evaluation (evaluate.ts) runs no regexes
 * and does no string parsing.
 */

/** A dotted key, pre-split so that lookups never split or join strings at check time. */
export interface KeyPath {
  /** The key as written, e.g. `target.user.domain_id`. */
  readonly path: string;
  /** The dot-separated segments (`['target', 'user', 'domain_id']`). */
  readonly segments: readonly string[];
  /**
   * `joins[i][k]` is `segments.slice(i, i + k + 1).join('.')`, so a lookup can try
   * flat keys containing dots (`{"target.user.domain_id": ...}`) as well as nested objects.
   */
  readonly joins: readonly (readonly string[])[];
}

/** One piece of a `%(key)s` template: literal text or a target key to substitute. */
export type TemplatePart = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'key'; readonly key: KeyPath };

/**
 * The right-hand side of a role or generic check: a fixed string, or a template
 * whose `%(key)s` parts are filled from the target (a missing key fails the check).
 */
export type MatchValue = { readonly kind: 'literal'; readonly value: string } | { readonly kind: 'template'; readonly parts: readonly TemplatePart[] };

/**
 * The left-hand side of a generic check: a credential path, or (as in oslo's
 * `'Member':%(role.name)s`) a constant compared with the substituted right side.
 */
export type GenericSubject = { readonly kind: 'creds'; readonly key: KeyPath } | { readonly kind: 'constant'; readonly value: string };

/** The parsed form of a rule; evaluate it with `evaluate()` from evaluate.ts. */
export type Check =
  | { readonly type: 'always' }
  | { readonly type: 'never'; readonly reason?: string }
  | { readonly type: 'role'; readonly match: MatchValue }
  | { readonly type: 'rule'; readonly name: string }
  | { readonly type: 'generic'; readonly subject: GenericSubject; readonly match: MatchValue }
  | { readonly type: 'not'; readonly check: Check }
  | { readonly type: 'and'; readonly checks: readonly Check[] }
  | { readonly type: 'or'; readonly checks: readonly Check[] };

/**
 * The outcome of parsing. `check` is always usable: a rule that cannot be parsed
 * as a whole becomes `{type: 'never'}` (deny), and a single check that cannot be
 * understood (e.g. a word without `:`) becomes a never-true leaf, as in oslo.policy.
 * `error` describes the first problem found, for logging; it is absent for a clean rule.
 */
export interface ParseResult {
  readonly check: Check;
  readonly error?: string;
}

type Token = { readonly kind: 'lparen' | 'rparen' | 'and' | 'or' | 'not' } | { readonly kind: 'check'; readonly text: string } | { readonly kind: 'string'; readonly text: string };

class RuleSyntaxError extends Error {}

const ALWAYS: Check = { type: 'always' };

function isQuote(ch: string): boolean {
  return ch === "'" || ch === '"';
}

function isBlank(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';
}

/** True when `text` is wholly one quoted string (`'x'` or `"x"`). */
function isQuoted(text: string): boolean {
  return text.length >= 2 && isQuote(text.charAt(0)) && text.charAt(text.length - 1) === text.charAt(0);
}

/**
 * Splits a rule into tokens the way oslo does: on blanks, with leading `(` and
 * trailing `)` peeled off each word. Unlike oslo, a quoted string may contain blanks.
 */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    if (isBlank(text.charAt(i))) {
      i++;
      continue;
    }
    const start = i;
    while (i < text.length && !isBlank(text.charAt(i))) {
      const ch = text.charAt(i);
      if (isQuote(ch)) {
        const end = text.indexOf(ch, i + 1);
        if (end < 0) throw new RuleSyntaxError(`unterminated quoted string at offset ${i}`);
        i = end + 1;
      } else {
        i++;
      }
    }
    let word = text.slice(start, i);
    while (word.startsWith('(')) {
      tokens.push({ kind: 'lparen' });
      word = word.slice(1);
    }
    let trailing = 0;
    while (word.endsWith(')') && !isQuoted(word)) {
      trailing++;
      word = word.slice(0, -1);
    }
    if (word !== '') {
      const lower = word.toLowerCase();
      if (lower === 'and' || lower === 'or' || lower === 'not') tokens.push({ kind: lower });
      else if (isQuoted(word)) tokens.push({ kind: 'string', text: word });
      else tokens.push({ kind: 'check', text: word });
    }
    for (let k = 0; k < trailing; k++) tokens.push({ kind: 'rparen' });
  }
  return tokens;
}

/** Pre-splits a dotted key; see {@link KeyPath}. */
export function keyPath(path: string): KeyPath {
  const segments = path.split('.');
  const joins = segments.map((_, i) => segments.slice(i).map((__, k) => segments.slice(i, i + k + 1).join('.')));
  return { path, segments, joins };
}

/** Parses Python `%`-format text where only `%(key)s` and `%%` are allowed. */
function parseTemplate(text: string): MatchValue {
  const parts: TemplatePart[] = [];
  let literal = '';
  let hasKey = false;
  let i = 0;
  while (i < text.length) {
    const ch = text.charAt(i);
    if (ch !== '%') {
      literal += ch;
      i++;
      continue;
    }
    const next = text.charAt(i + 1);
    if (next === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    if (next !== '(') throw new RuleSyntaxError(`bad substitution in "${text}": expected %(key)s or %%`);
    const close = text.indexOf(')', i + 2);
    if (close < 0 || text.charAt(close + 1) !== 's') throw new RuleSyntaxError(`bad substitution in "${text}": expected %(key)s`);
    const key = text.slice(i + 2, close);
    if (key === '') throw new RuleSyntaxError(`empty substitution key in "${text}"`);
    if (literal !== '') parts.push({ kind: 'text', text: literal });
    literal = '';
    parts.push({ kind: 'key', key: keyPath(key) });
    hasKey = true;
    i = close + 2;
  }
  if (!hasKey) return { kind: 'literal', value: literal };
  if (literal !== '') parts.push({ kind: 'text', text: literal });
  return { kind: 'template', parts };
}

/** The right side of `kind:match`: a quoted literal, or template/bare text. */
function parseMatch(text: string): MatchValue {
  if (isQuoted(text)) return { kind: 'literal', value: text.slice(1, -1) };
  return parseTemplate(text);
}

/** oslo evaluates the left side with `ast.literal_eval`; we accept quoted strings, True/False/None and numbers. */
function parseSubject(kind: string): GenericSubject {
  if (isQuoted(kind)) return { kind: 'constant', value: kind.slice(1, -1) };
  if (kind === 'True' || kind === 'False' || kind === 'None') return { kind: 'constant', value: kind };
  if (/^[+-]?\d+(\.\d+)?$/.test(kind)) return { kind: 'constant', value: String(Number(kind)) };
  return { kind: 'creds', key: keyPath(kind) };
}

/** Turns one check word into a Check; problems with a single word give a never-true leaf. */
function parseCheckWord(text: string, problems: string[]): Check {
  if (text === '@') return ALWAYS;
  if (text === '!') return { type: 'never' };
  const colon = text.indexOf(':');
  if (colon < 0) {
    problems.push(`"${text}" is not a check (expected kind:value, @ or !)`);
    return { type: 'never', reason: 'malformed check' };
  }
  const kind = text.slice(0, colon);
  const match = text.slice(colon + 1);
  if (kind === '' || match === '') {
    problems.push(`"${text}" has an empty ${kind === '' ? 'kind' : 'value'}`);
    return { type: 'never', reason: 'malformed check' };
  }
  try {
    switch (kind) {
      case 'rule':
        return { type: 'rule', name: match };
      case 'role':
        return { type: 'role', match: parseMatch(match) };
      case 'http':
      case 'https':
        problems.push(`"${text}": ${kind}: checks are not supported and never pass`);
        return { type: 'never', reason: `${kind}: checks are not supported` };
      default:
        return { type: 'generic', subject: parseSubject(kind), match: parseMatch(match) };
    }
  } catch (err) {
    if (!(err instanceof RuleSyntaxError)) throw err;
    problems.push(err.message);
    return { type: 'never', reason: 'malformed check' };
  }
}

/** Recursive-descent parser: or_expr := and_expr ('or' and_expr)*; and_expr := unary ('and' unary)*; unary := 'not' unary | '(' or_expr ')' | check. */
class Parser {
  private pos = 0;
  constructor(
    private readonly tokens: readonly Token[],
    private readonly problems: string[],
  ) {}

  parseAll(): Check {
    const check = this.orExpr();
    const extra = this.tokens[this.pos];
    if (extra !== undefined) throw new RuleSyntaxError(`unexpected ${describe(extra)} at token ${this.pos + 1}`);
    return check;
  }

  private orExpr(): Check {
    const checks = [this.andExpr()];
    while (this.tokens[this.pos]?.kind === 'or') {
      this.pos++;
      checks.push(this.andExpr());
    }
    return combine('or', checks);
  }

  private andExpr(): Check {
    const checks = [this.unary()];
    while (this.tokens[this.pos]?.kind === 'and') {
      this.pos++;
      checks.push(this.unary());
    }
    return combine('and', checks);
  }

  private unary(): Check {
    const token = this.tokens[this.pos];
    if (token === undefined) throw new RuleSyntaxError('unexpected end of rule');
    this.pos++;
    switch (token.kind) {
      case 'not':
        return { type: 'not', check: this.unary() };
      case 'lparen': {
        const inner = this.orExpr();
        const close = this.tokens[this.pos];
        if (close?.kind !== 'rparen') throw new RuleSyntaxError(close === undefined ? 'missing ")"' : `expected ")" but found ${describe(close)}`);
        this.pos++;
        return inner;
      }
      case 'check':
        return parseCheckWord(token.text, this.problems);
      case 'rparen':
      case 'and':
      case 'or':
      case 'string':
        throw new RuleSyntaxError(`unexpected ${describe(token)} at token ${this.pos}`);
      default: {
        const unreachable: never = token;
        throw new RuleSyntaxError(`unknown token ${String(unreachable)}`);
      }
    }
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'lparen':
      return '"("';
    case 'rparen':
      return '")"';
    case 'and':
    case 'or':
    case 'not':
      return `"${token.kind}"`;
    case 'check':
    case 'string':
      return `"${token.text}"`;
    default: {
      const unreachable: never = token;
      return String(unreachable);
    }
  }
}

/** Builds an and/or node, flattening nested nodes of the same operator. */
function combine(op: 'and' | 'or', checks: readonly Check[]): Check {
  const [first] = checks;
  if (checks.length === 1 && first !== undefined) return first;
  const flat: Check[] = [];
  for (const c of checks) {
    if (c.type === op) flat.push(...c.checks);
    else flat.push(c);
  }
  return { type: op, checks: flat };
}

/**
 * Parses a rule string. Never throws: an empty rule is `always`; a rule whose
 * structure cannot be parsed (unbalanced parentheses, dangling operators, an
 * unterminated quote, a bare quoted string) is `never` with `error` set; a single
 * malformed check inside an otherwise valid rule (a word without `:`, a bad
 * `%(...)s`, an empty kind or value) is a never-true leaf, also with `error`
 * set. `http:`/`https:` checks (oslo's remote check) are not supported: they
 * parse as never-true leaves and are reported through `error`.
 */
export function parseRule(text: string): ParseResult {
  const problems: string[] = [];
  try {
    const tokens = tokenize(text);
    if (tokens.length === 0) return { check: ALWAYS };
    const check = new Parser(tokens, problems).parseAll();
    const [first] = problems;
    return first === undefined ? { check } : { check, error: `${first} in rule "${text}"` };
  } catch (err) {
    if (!(err instanceof RuleSyntaxError)) throw err;
    return { check: { type: 'never', reason: 'unparseable rule' }, error: `Failed to understand rule "${text}": ${err.message}` };
  }
}

function quote(value: string): string {
  return value.includes("'") ? `"${value}"` : `'${value}'`;
}

function formatKeyPath(key: KeyPath): string {
  return key.path;
}

function formatMatch(match: MatchValue): string {
  switch (match.kind) {
    case 'literal':
      return quote(match.value);
    case 'template':
      return match.parts.map((p) => (p.kind === 'text' ? p.text.replaceAll('%', '%%') : `%(${formatKeyPath(p.key)})s`)).join('');
    default: {
      const unreachable: never = match;
      return String(unreachable);
    }
  }
}

/**
 * Renders a Check back to rule text, with every and/or group parenthesised and
 * literals quoted, so that the parsed structure is visible (for logs and tests).
 * Never-true leaves (including malformed or unsupported checks) render as `!`.
 */
export function formatCheck(check: Check): string {
  switch (check.type) {
    case 'always':
      return '@';
    case 'never':
      return '!';
    case 'role':
      return `role:${formatMatch(check.match)}`;
    case 'rule':
      return `rule:${check.name}`;
    case 'generic': {
      const subject = check.subject.kind === 'creds' ? formatKeyPath(check.subject.key) : quote(check.subject.value);
      return `${subject}:${formatMatch(check.match)}`;
    }
    case 'not':
      return `not ${formatCheck(check.check)}`;
    case 'and':
    case 'or':
      return `(${check.checks.map(formatCheck).join(` ${check.type} `)})`;
    default: {
      const unreachable: never = check;
      return String(unreachable);
    }
  }
}
