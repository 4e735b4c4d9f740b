/**
 * The policy engine: oslo.policy's rule language (parser.ts), its evaluation
 * (evaluate.ts) and the enforcer that combines registered defaults with an
 * operator's policy file (enforcer.ts).
 */
export { parseRule, formatCheck, keyPath } from './parser.js';
export type { Check, GenericSubject, KeyPath, MatchValue, ParseResult, TemplatePart } from './parser.js';
export { evaluate, MAX_RULE_DEPTH } from './evaluate.js';
export type { RuleLookup } from './evaluate.js';
export { PolicyEnforcer, loadPolicyFile } from './enforcer.js';
export type { PolicyCredentials, PolicyEnforcerOptions, PolicyLogger, RuleDefault, RuleProblem } from './enforcer.js';
