export { detectPii, detectPiiInParts, lazyPrompt, type PiiDetection, type RedactOptions, redactPii, UNSCANNED_MARKER } from "./detect.js";
export { extractPromptText, promptParts } from "./prompt-text.js";
export { findPiiSpans, PII_SCAN_LIMIT } from "./scan.js";
export { PII_TYPES, type PiiSpan, type PiiType } from "./types.js";
