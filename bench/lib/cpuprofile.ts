import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  percent: number;
}

/** Shortens a script URL to something readable: dist/src/x.js, node_modules/pkg/…, node:internal. */
export function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm !== -1) return url.slice(nm + "node_modules/".length);
  const dist = url.indexOf("/dist/");
  if (dist !== -1) return url.slice(dist + 1);
  return url;
}

/** Self time per function (and per file), from the samples of a `--cpu-prof` profile. */
export function selfTimes(path: string): { total: number; functions: SelfTime[]; files: SelfTime[] } {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, SelfTime>();
  const file = new Map<string, SelfTime>();
  let total = 0;
  const add = (map: Map<string, SelfTime>, key: string, name: string, where: string, ms: number): void => {
    const entry = map.get(key) ?? { name, where, ms: 0, percent: 0 };
    entry.ms += ms;
    map.set(key, entry);
  };
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    if (node === undefined) return;
    total += ms;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = `${shortUrl(url)}:${lineNumber + 1}`;
    const name = functionName === "" ? "(anonymous)" : functionName;
    add(fn, `${name}@${where}`, name, where, ms);
    add(file, shortUrl(url), shortUrl(url), "", ms);
  });
  const rank = (map: Map<string, SelfTime>): SelfTime[] =>
    [...map.values()]
      .map((e) => ({ ...e, ms: Math.round(e.ms), percent: Math.round((e.ms / total) * 1000) / 10 }))
      .sort((a, b) => b.ms - a.ms);
  return { total: Math.round(total), functions: rank(fn), files: rank(file) };
}

/**
 * Inclusive time per function of our own code (dist/): each sample counts once for every distinct
 * function on its stack, so a stage's share includes whatever it called.
 */
export function inclusiveTimes(path: string): { total: number; functions: SelfTime[] } {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const fn = new Map<string, SelfTime>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    total += ms;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (node === undefined) break;
      const { functionName, url, lineNumber } = node.callFrame;
      if (!url.includes("/dist/")) continue;
      const where = `${shortUrl(url)}:${lineNumber + 1}`;
      const name = functionName === "" ? "(anonymous)" : functionName;
      const key = `${name}@${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = fn.get(key) ?? { name, where, ms: 0, percent: 0 };
      entry.ms += ms;
      fn.set(key, entry);
    }
  });
  const functions = [...fn.values()]
    .map((e) => ({ ...e, ms: Math.round(e.ms), percent: Math.round((e.ms / total) * 1000) / 10 }))
    .sort((a, b) => b.ms - a.ms);
  return { total: Math.round(total), functions };
}
