// One import for test files: `import { startRedis, startProcess } from "../helpers/index.js"`.
export { oneKeyConfig, writeTempConfig } from "./config.js";
export { freePort } from "./ports.js";
export { type StartedProcess, type StartProcessOptions, startProcess, waitForHttp } from "./process.js";
export { ping, type RedisHandle, startRedis } from "./redis.js";
