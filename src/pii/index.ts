export { detectPii, detectPiiInParts, lazyPrompt, type PiiDetection, redactPii } from "./detect.js";
export { extractPromptText, promptParts } from "./prompt-text.js";
export { findPiiSpans } from "./scan.js";
export { PII_TYPES, type PiiSpan, type PiiType } from "./types.js";
