export { inputByteUpperBound, type InputEndpoint } from "./bound.js";
export { countChatInput } from "./chat.js";
export { countTextTokens, countTokens } from "./count.js";
export { countEmbeddingsInput } from "./embeddings.js";
export type { Encoding } from "./encoding.js";
export { countResponsesInput } from "./responses.js";
