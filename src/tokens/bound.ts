import { measureChat } from "./chat.js";
import { measureEmbeddings } from "./embeddings.js";
import { utf8Bytes } from "./measure.js";
import { measureResponses } from "./responses.js";

export type InputEndpoint = "chat" | "responses" | "embeddings";

/**
 * An upper bound on the input tokens of a body, from the UTF-8 length of the same strings the
 * exact count encodes (a token is at least one byte) plus the same overheads. It costs a byte
 * count, not an encoding, so a caller far below every cap can skip the exact count. Without an
 * endpoint it bounds all three readings of the body at once.
 */
export function inputByteUpperBound(body: unknown, endpoint?: InputEndpoint): number {
  switch (endpoint) {
    case "chat":
      return measureChat(body, utf8Bytes);
    case "responses":
      return measureResponses(body, utf8Bytes);
    case "embeddings":
      return measureEmbeddings(body, utf8Bytes);
    case undefined:
      return Math.max(
        measureChat(body, utf8Bytes),
        measureResponses(body, utf8Bytes),
        measureEmbeddings(body, utf8Bytes),
      );
  }
}
