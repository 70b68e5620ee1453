import type { Config } from "../config/schema.js";

export type PiiType = Config["pii"]["detectors"][number];

export const PII_TYPES: readonly PiiType[] = ["email", "phone", "credit_card", "iban", "us_ssn", "secret", "ip"];

/** A match: [start, end) in UTF-16 code units. */
export interface PiiSpan {
  type: PiiType;
  start: number;
  end: number;
}
