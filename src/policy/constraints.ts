import type { AuditBodies } from "../config/schema.js";
import { childPath, type IssueSink, quote, report } from "./errors.js";

const AUDIT_LEVELS: readonly AuditBodies[] = ["none", "redacted", "full"];

/** The longest an approval may wait: ten years. Longer would put its expiry past what a date can hold. */
export const MAX_APPROVAL_TIMEOUT_SECONDS = 315_360_000;

/** Type-checks the constraints the gateway acts on; any other key is carried untouched. */
export function checkConstraints(constraints: Record<string, unknown>, path: string, sink: IssueSink): void {
  for (const [key, value] of Object.entries(constraints)) {
    const keyPath = childPath(path, key);
    switch (key) {
      case "approver_role":
        if (!isRole(value) && !(Array.isArray(value) && value.length > 0 && value.every(isRole))) {
          report(sink, keyPath, `must be a role or a non-empty list of roles, got ${quote(value)}`);
        }
        break;
      case "approval_timeout_seconds":
        if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > MAX_APPROVAL_TIMEOUT_SECONDS) {
          report(sink, keyPath, `must be a positive number of seconds, at most ${MAX_APPROVAL_TIMEOUT_SECONDS} (ten years), got ${quote(value)}`);
        }
        break;
      case "on_deny":
        if (value !== "strip") report(sink, keyPath, `the only supported value is \`strip\`, got ${quote(value)}`);
        break;
      case "audit_bodies":
        if (!isAuditLevel(value)) report(sink, keyPath, `must be one of none, redacted, full; got ${quote(value)}`);
        break;
    }
  }
}

function isRole(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}

export function isAuditLevel(value: unknown): value is AuditBodies {
  return typeof value === "string" && (AUDIT_LEVELS as readonly string[]).includes(value);
}

/** The higher body-capture level of two; `undefined` means the rules said nothing. */
export function raiseAuditLevel(current: AuditBodies | undefined, next: unknown): AuditBodies | undefined {
  if (!isAuditLevel(next)) return current;
  if (current === undefined) return next;
  return AUDIT_LEVELS.indexOf(next) > AUDIT_LEVELS.indexOf(current) ? next : current;
}
