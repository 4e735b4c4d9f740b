/**
 * The policy enforcer: oslo.policy-compatible rules (defaults registered in
 * code, overridden by an operator's policy.yaml) checked against a caller's
 * credentials and the target of an API call.
 */
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'yaml';
import { Forbidden } from '../errors.js';
import { rootLogger } from '../logging.js';
import { evaluate, type RuleLookup } from './evaluate.js';
import { parseRule, type Check, type ParseResult } from './parser.js';

/**
 * What a policy check knows about the caller, usually built from a validated
 * token. `roles` are role names; other keys (including nested objects such as
 * `token.user.domain.id`) can be tested with generic checks (`user_id:%(...)s`).
 */
export interface PolicyCredentials {
  roles: readonly string[];
  user_id?: string | null;
  project_id?: string | null;
  domain_id?: string | null;
  system_scope?: string | null;
  is_admin?: boolean;
  [key: string]: unknown;
}

/**
 * A rule registered in code (oslo's `DocumentedRuleDefault`). `checkStr` is the
 * default rule text; `scopeTypes` and `operations` document the rule (for
 * samples) and are not enforced by the engine.
 */
export interface RuleDefault {
  name: string;
  checkStr: string;
  description?: string;
  scopeTypes?: readonly string[];
  operations?: readonly { path: string; method: string }[];
}

/** The subset of a pino logger the enforcer reports problems to. */
export interface PolicyLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

/** Options of {@link PolicyEnforcer}. */
export interface PolicyEnforcerOptions {
  /** Rule texts that replace (or add to) the defaults; they also win over the policy file. */
  overrides?: Record<string, string>;
  /** A YAML or JSON policy file (see {@link loadPolicyFile}); re-read when it changes. */
  policyFile?: string;
  /** Minimum milliseconds between two looks at the policy file's mtime from check(); default 1000. */
  reloadIntervalMs?: number;
  /** Where malformed rules and unreadable policy files are reported; default the root logger. */
  logger?: PolicyLogger;
}

/** A rule whose text could not be (wholly) understood; it denies where it cannot be understood. */
export interface RuleProblem {
  readonly name: string;
  readonly error: string;
}

/**
 * Reads a policy file: a YAML (or JSON, which is YAML) mapping from rule name to
 * rule text. A missing file, or one that is empty or only comments, means no
 * overrides ({}). Throws an Error when the file cannot be read or parsed, is not
 * a mapping, or maps a name to something other than a string.
 */
export function loadPolicyFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return {};
    throw err;
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new Error(`Policy file ${path} is not valid YAML or JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new Error(`Policy file ${path} must contain a mapping of rule names to rules`);
  const rules: Record<string, string> = {};
  for (const [name, value] of Object.entries(data)) {
    if (typeof value !== 'string') throw new Error(`Policy file ${path}: rule "${name}" must be a string`);
    rules[name] = value;
  }
  return rules;
}

interface FileStamp {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

function statStamp(path: string): FileStamp | null {
  const st = statSync(path, { throwIfNoEntry: false });
  return st === undefined ? null : { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
}

function sameStamp(a: FileStamp | null, b: FileStamp | null): boolean {
  if (a === null || b === null) return a === b;
  return a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

/** Names of the rules that `check` refers to with `rule:NAME`. */
function referencedRules(check: Check, out: string[]): string[] {
  switch (check.type) {
    case 'always':
    case 'never':
    case 'role':
    case 'generic':
      return out;
    case 'rule':
      out.push(check.name);
      return out;
    case 'not':
      return referencedRules(check.check, out);
    case 'and':
    case 'or':
      for (const c of check.checks) referencedRules(c, out);
      return out;
    default: {
      const unreachable: never = check;
      return unreachable;
    }
  }
}

/** Names of the rules that are part of a `rule:` reference cycle (which could never be evaluated). */
function rulesInCycles(compiled: ReadonlyMap<string, Check>): Set<string> {
  const inCycle = new Set<string>();
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      for (let i = stack.lastIndexOf(name); i < stack.length; i++) {
        const member = stack[i];
        if (member !== undefined) inCycle.add(member);
      }
      return;
    }
    const check = compiled.get(name);
    if (check === undefined) return;
    state.set(name, 'visiting');
    stack.push(name);
    for (const ref of referencedRules(check, [])) visit(ref);
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of compiled.keys()) visit(name);
  return inCycle;
}

/**
 * Checks API calls against policy rules. Rules are parsed once (and re-parsed
 * only when the policy file changes); check() only evaluates the parsed trees.
 *
 * Effective rule text, per name: the default's `checkStr`, replaced by the
 * policy file's entry, replaced by `options.overrides`. Names found only in the
 * file or overrides are added (usable through `rule:NAME`). A malformed rule
 * denies (like oslo.policy's FalseCheck) and is reported to the logger and by
 * problems(); rules in a `rule:` cycle deny and are reported too.
 */
export class PolicyEnforcer {
  private readonly defaults: readonly RuleDefault[];
  private readonly overrides: Readonly<Record<string, string>>;
  private readonly policyFile: string | undefined;
  private readonly reloadIntervalMs: number;
  private readonly logger: PolicyLogger | undefined;
  private fileRules: Record<string, string> = {};
  private fileStamp: FileStamp | null = null;
  private lastStatAt = 0;
  private texts = new Map<string, string>();
  private compiled = new Map<string, Check>();
  private ruleProblems: RuleProblem[] = [];
  private readonly parseCache = new Map<string, ParseResult>();
  /** Rule names by prefix, as {@link namesStartingWith} gives them; emptied on every rebuild. */
  private readonly prefixCache = new Map<string, readonly string[]>();
  private readonly lookup: RuleLookup = (name) => this.compiled.get(name);

  /**
   * Throws an Error when two defaults share a name or when the policy file
   * exists but cannot be loaded (see loadPolicyFile); a missing file is fine
   * and is picked up when it appears.
   */
  constructor(defaults: readonly RuleDefault[], options: PolicyEnforcerOptions = {}) {
    const names = new Set<string>();
    for (const d of defaults) {
      if (names.has(d.name)) throw new Error(`Policy rule "${d.name}" is registered twice`);
      names.add(d.name);
    }
    this.defaults = defaults;
    this.overrides = { ...(options.overrides ?? {}) };
    this.policyFile = options.policyFile;
    this.reloadIntervalMs = options.reloadIntervalMs ?? 1000;
    this.logger = options.logger;
    if (this.policyFile !== undefined) {
      this.fileStamp = statStamp(this.policyFile);
      this.fileRules = loadPolicyFile(this.policyFile);
      this.lastStatAt = Date.now();
    }
    this.rebuild();
  }

  /**
   * True when rule `rule` allows `creds` to act on `target`. Target keys may be
   * flat with dots (`{"target.user.id": id}`) or nested objects. Throws a plain
   * Error when `rule` is neither a default nor an override (a programming error).
   */
  check(rule: string, target: Record<string, unknown>, creds: PolicyCredentials): boolean {
    this.maybeReload();
    const compiled = this.compiled.get(rule);
    if (compiled === undefined) throw new Error(`Policy rule "${rule}" is not registered`);
    return evaluate(compiled, target, creds, this.lookup);
  }

  /**
   * Like check(), but throws Forbidden (403) with message
   * `You are not authorized to perform the requested action: ${rule}.` when denied.
   */
  authorize(rule: string, target: Record<string, unknown>, creds: PolicyCredentials): void {
    if (!this.check(rule, target, creds)) throw new Forbidden(`You are not authorized to perform the requested action: ${rule}.`);
  }

  /** True when `rule` is a default, an override or a rule of the (reloaded when due) policy file. */
  has(rule: string): boolean {
    this.maybeReload();
    return this.compiled.has(rule);
  }

  /**
   * The known rule names that start with `prefix` (attribute rules such as
   * Neutron's `get_port:binding:host_id`), following the policy file's reloads.
   */
  namesStartingWith(prefix: string): readonly string[] {
    this.maybeReload();
    let names = this.prefixCache.get(prefix);
    if (names === undefined) {
      names = [...this.compiled.keys()].filter((name) => name.startsWith(prefix));
      this.prefixCache.set(prefix, names);
    }
    return names;
  }

  /** The effective rule text of every known name (defaults in registration order, then added names), e.g. for policy.yaml samples. */
  effectiveRules(): Record<string, string> {
    this.maybeReload();
    return Object.fromEntries(this.texts);
  }

  /** The registered defaults, as given to the constructor (for documentation and samples). */
  ruleDefaults(): readonly RuleDefault[] {
    return this.defaults;
  }

  /** Rules that are malformed, use unsupported checks or sit in a `rule:` cycle, as of the last (re)load. */
  problems(): readonly RuleProblem[] {
    return this.ruleProblems;
  }

  /**
   * Re-reads the policy file now if its mtime, size or inode changed (or it
   * appeared or disappeared); returns true when the rules were rebuilt. A file
   * that fails to load is reported and the previous rules stay in force.
   * check() calls this at most once per `reloadIntervalMs`.
   */
  reloadIfChanged(): boolean {
    if (this.policyFile === undefined) return false;
    this.lastStatAt = Date.now();
    let stamp: FileStamp | null;
    try {
      stamp = statStamp(this.policyFile);
    } catch (err) {
      this.warn({ policyFile: this.policyFile, err: String(err) }, 'cannot stat policy file; keeping current rules');
      return false;
    }
    if (sameStamp(stamp, this.fileStamp)) return false;
    this.fileStamp = stamp;
    try {
      this.fileRules = loadPolicyFile(this.policyFile);
    } catch (err) {
      this.warn({ policyFile: this.policyFile, err: err instanceof Error ? err.message : String(err) }, 'cannot load policy file; keeping current rules');
      return false;
    }
    this.rebuild();
    return true;
  }

  private maybeReload(): void {
    if (this.policyFile === undefined) return;
    if (Date.now() - this.lastStatAt < this.reloadIntervalMs) return;
    this.reloadIfChanged();
  }

  private rebuild(): void {
    const texts = new Map<string, string>();
    for (const d of this.defaults) texts.set(d.name, d.checkStr);
    for (const [name, text] of Object.entries(this.fileRules)) texts.set(name, text);
    for (const [name, text] of Object.entries(this.overrides)) texts.set(name, text);

    const compiled = new Map<string, Check>();
    const problems: RuleProblem[] = [];
    for (const [name, text] of texts) {
      let parsed = this.parseCache.get(text);
      if (parsed === undefined) {
        parsed = parseRule(text);
        this.parseCache.set(text, parsed);
      }
      compiled.set(name, parsed.check);
      if (parsed.error !== undefined) problems.push({ name, error: parsed.error });
    }
    for (const name of rulesInCycles(compiled)) {
      compiled.set(name, { type: 'never', reason: 'rule cycle' });
      problems.push({ name, error: `rule "${name}" refers to itself through rule: checks` });
    }
    // Drop cached parses of texts no longer in use so that repeated reloads do not grow the cache.
    const inUse = new Set(texts.values());
    for (const text of this.parseCache.keys()) if (!inUse.has(text)) this.parseCache.delete(text);

    this.texts = texts;
    this.compiled = compiled;
    this.prefixCache.clear();
    this.ruleProblems = problems;
    for (const p of problems) this.warn({ rule: p.name, error: p.error }, 'policy rule is malformed and denies where not understood');
  }

  private warn(obj: Record<string, unknown>, msg: string): void {
    (this.logger ?? rootLogger()).warn(obj, msg);
  }
}
