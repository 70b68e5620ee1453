import { configWarnings } from "./config/warnings.js";
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { buildCaseFacts, evaluateFacts } from "./admin/policies.js";
import { decryptBody, parseEncryptionKey } from "./audit/bodies.js";
import { parseAuditQuery } from "./audit/query.js";
import type { AuditRecord } from "./audit/types.js";
import { paramRecord } from "./util/query-params.js";
import { queryFiles } from "./audit/query-files.js";
import { listAuditFiles } from "./audit/files.js";
import { verifyFiles } from "./audit/verify.js";
import { generateKey, hashKey } from "./auth/keys.js";
import { ConfigError, formatIssues, readConfigFile } from "./config/load.js";
import { parsePolicyCases, PolicyCasesError, runPolicyCases } from "./policy/cases.js";
import { compilePolicy } from "./policy/compile.js";

const USAGE = `usage: npm run gateway -- <command>
  check CONFIG                      validate a config; every error with its path; exit 1 on error
  policy test CASES.yaml            run declared policy cases against the rules (like opa test)
  keys new                          print a new random virtual key and its key_hash
  keys hash KEY                     print the key_hash of a clear key (also for admin.approvers token_hash)
  audit verify [--dir DIR] [--replica R]          walk the hash chain of the audit files (DIR: ./data/audit)
  audit query [--dir DIR] [--user U] [--key_id K] [--team T] [--model M] [--effect E] [--status S]
              [--error_code C] [--min_cost X] [--approval_id A] [--from ISO] [--to ISO]
              [--limit N] [--cursor C] [--replica R]   newest first; the next page's --cursor goes to stderr
              [--key-env NAME]   decrypt each body_enc with the base64 key in env NAME (as audit.encryption_key)`;

type Out = (line: string) => void;

/** `--name value` pairs; anything else is a mistake worth naming rather than skipping. */
function options(args: string[]): { ok: true; found: Map<string, string> } | { ok: false; message: string } {
  const found = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const arg = args[i]!;
    const value = args[i + 1];
    if (!arg.startsWith("--")) return { ok: false, message: `unexpected argument \`${arg}\`` };
    if (value === undefined || value.startsWith("--")) return { ok: false, message: `${arg} needs a value` };
    found.set(arg.slice(2), value);
  }
  return { ok: true, found };
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
}

function check(path: string | undefined, out: Out, err: Out): number {
  if (path === undefined) {
    err(USAGE);
    return 2;
  }
  try {
    const config = readConfigFile(path, process.env);
    out(`ok: ${path} (${config.policies.rules.length} rules, ${Object.keys(config.models).length} models, ${config.keys.length} keys)`);
    const warnings = configWarnings(config);
    if (warnings.length > 0) out(`warnings (valid, but most likely not meant):\n${formatIssues(warnings)}`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    err(error.message);
    return 1;
  }
}

function policyTest(path: string | undefined, out: Out, err: Out): number {
  if (path === undefined) {
    err(USAGE);
    return 2;
  }
  let cases: ReturnType<typeof parsePolicyCases>;
  try {
    cases = parsePolicyCases(parseYaml(readFileSync(path, "utf8")));
  } catch (error) {
    if (error instanceof PolicyCasesError) {
      err(`invalid cases file \`${path}\`:\n${formatIssues(error.issues.map((i) => ({ path: i.path, message: i.message })))}`);
      return 1;
    }
    throw error;
  }
  const configPath = resolve(dirname(path), cases.config);
  let config: ReturnType<typeof readConfigFile>;
  try {
    config = readConfigFile(configPath, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    err(error.message);
    return 1;
  }
  const policy = compilePolicy(config.policies);
  const results = runPolicyCases(
    cases.cases,
    (testCase) => buildCaseFacts({ config }, testCase),
    (action, facts, testCase) => evaluateFacts({ config }, policy, action, facts, testCase.request),
  );
  let failed = 0;
  for (const result of results) {
    if (!result.pass) failed++;
    out(`${result.pass ? "PASS" : "FAIL"}: ${result.name}${result.pass ? "" : `\n      ${result.message}`}`);
    // The decision as POST /admin/policies/evaluate returns it.
    if (result.decision !== null) out(`      decision: ${JSON.stringify(result.decision)}`);
  }
  out("--------------------------------------------------------------------------------");
  out(`${results.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

async function audit(sub: string | undefined, args: string[], out: Out, err: Out): Promise<number> {
  const parsedOptions = options(args);
  if (!parsedOptions.ok) {
    err(`${parsedOptions.message}\n${USAGE}`);
    return 2;
  }
  const opts = parsedOptions.found;
  // A filter given to verify (which walks the whole chain) or a misspelt --dir is a mistake, not a clean chain.
  const unknown = sub === "verify" ? [...opts.keys()].find((name) => name !== "dir" && name !== "replica") : undefined;
  if (unknown !== undefined) {
    err(`audit verify takes --dir and --replica only, not --${unknown}\n${USAGE}`);
    return 2;
  }
  const dir = opts.get("dir") ?? "./data/audit";
  const replica = opts.get("replica");
  if ((sub === "verify" || sub === "query") && !isDirectory(dir)) {
    // An empty chain would verify as ok: a mistyped --dir must not pass for an intact audit.
    err(`no audit directory at \`${dir}\``);
    return 1;
  }
  if (sub === "verify") {
    if ((await listAuditFiles(dir, replica)).length === 0) {
      // As with a mistyped --dir: no file to verify must not pass for an intact chain.
      err(replica === undefined ? `no audit files in \`${dir}\`` : `no audit files of replica \`${replica}\` in \`${dir}\``);
      return 1;
    }
    const result = await verifyFiles(dir, replica);
    out(JSON.stringify(result, null, 2));
    return result.ok ? 0 : 1;
  }
  if (sub === "query") {
    const parsed = parseAuditQuery(paramRecord([...opts].filter(([name]) => name !== "dir" && name !== "replica" && name !== "key-env")));
    if (!parsed.ok) {
      err(`invalid --${parsed.param}: ${parsed.message}`);
      return 2;
    }
    const keyEnv = opts.get("key-env");
    let key: Buffer | null = null;
    if (keyEnv !== undefined) {
      try {
        key = parseEncryptionKey(process.env[keyEnv] ?? "");
      } catch (error) {
        err(`--key-env ${keyEnv}: ${(error as Error).message}`);
        return 2;
      }
    }
    const page = await queryFiles(dir, replica, parsed.data);
    for (const record of page.data) out(JSON.stringify(key === null ? record : decrypted(record, key, err)));
    if (page.next_cursor !== null) err(`next page: --cursor ${page.next_cursor}`);
    return 0;
  }
  err(USAGE);
  return 2;
}

/** The record with its encrypted body in clear (`body`), where the key opens it; else as it is, said on stderr. */
function decrypted(record: AuditRecord, key: Buffer, err: Out): AuditRecord {
  if (typeof record.body_enc !== "string") return record;
  try {
    const { body_enc: _sealed, body_key_id: _keyId, ...rest } = record;
    return { ...rest, body: decryptBody(record.body_enc, key) };
  } catch {
    err(`record ${record.id}: its body_enc (key id ${String(record.body_key_id)}) does not open with this key`);
    return record;
  }
}

export async function runCli(argv: string[], out: Out, err: Out): Promise<number> {
  const [command, sub, ...rest] = argv;
  switch (command) {
    case "help":
    case "--help":
    case "-h":
      out(USAGE);
      return 0;
    // A word more than a command takes is a usage error, not silently dropped.
    case "check":
      if (rest.length === 0) return check(sub, out, err);
      break;
    case "policy":
      if (sub === "test" && rest.length === 1) return policyTest(rest[0], out, err);
      break;
    case "keys": {
      if (sub === "new" && rest.length === 0) {
        const key = generateKey();
        out(`key:      ${key}`);
        out(`key_hash: ${hashKey(key)}`);
        return 0;
      }
      const [clear, ...more] = rest;
      if (sub === "hash" && clear !== undefined && clear !== "" && more.length === 0) {
        out(hashKey(clear));
        return 0;
      }
      break;
    }
    case "audit":
      return audit(sub, rest, out, err);
  }
  err(USAGE);
  return 2;
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href;
if (isMain) {
  runCli(
    process.argv.slice(2),
    (line) => process.stdout.write(`${line}\n`),
    (line) => process.stderr.write(`${line}\n`),
  ).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
