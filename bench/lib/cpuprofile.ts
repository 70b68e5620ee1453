import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
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
