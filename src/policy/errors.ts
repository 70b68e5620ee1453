/** One problem found in the policy config; `path` is dotted like `policies.rules[2].conditions.model.in`. */
export interface PolicyIssue {
  path: string;
  rule?: string;
  message: string;
}

/** Thrown by `compilePolicy` with every issue at once, so an operator fixes a config in one pass. */
export class PolicyConfigError extends Error {
  readonly issues: readonly PolicyIssue[];

  constructor(issues: readonly PolicyIssue[]) {
    super(`invalid policy config:\n${issues.map(formatIssue).join("\n")}`);
    this.name = "PolicyConfigError";
    this.issues = issues;
  }
}

export function formatIssue(issue: PolicyIssue): string {
  const rule = issue.rule === undefined ? "" : ` (rule \`${issue.rule}\`)`;
  return `  ${issue.path}${rule}: ${issue.message}`;
}

/** Where compile steps report problems; `rule` is stamped on every issue they add. */
export interface IssueSink {
  readonly rule: string | undefined;
  readonly issues: PolicyIssue[];
}

export function report(sink: IssueSink, path: string, message: string): void {
  sink.issues.push(sink.rule === undefined ? { path, message } : { path, rule: sink.rule, message });
}

/** Appends a map key or list index to a dotted path. */
export function childPath(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : `${path}.${key}`;
}

/** Renders a config value for a message without dumping a huge structure. */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return `\`${text.length > 80 ? `${text.slice(0, 77)}...` : text}\``;
}
