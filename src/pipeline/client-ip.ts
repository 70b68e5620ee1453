import type { IncomingMessage } from "node:http";
import { BlockList, isIPv4, isIPv6 } from "node:net";

const lists = new Map<string, BlockList>();

/** Trusted proxy CIDRs compiled once per distinct list. */
function trusted(cidrs: readonly string[]): BlockList {
  const cacheKey = cidrs.join(",");
  let list = lists.get(cacheKey);
  if (list === undefined) {
    list = new BlockList();
    for (const cidr of cidrs) {
      const [address, prefix] = cidr.split("/");
      if (address === undefined) continue;
      const type = isIPv6(address) ? "ipv6" : "ipv4";
      if (prefix === undefined) list.addAddress(address, type);
      else list.addSubnet(address, Number(prefix), type);
    }
    lists.set(cacheKey, list);
  }
  return list;
}

/** An IPv4 peer as Node reports it on a dual-stack socket (`::ffff:1.2.3.4`), written plainly. */
export function normalize(address: string): string {
  return address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function isTrusted(address: string, list: BlockList): boolean {
  if (isIPv4(address)) return list.check(address, "ipv4");
  if (isIPv6(address)) return list.check(address, "ipv6");
  return false;
}

/**
 * The client's address: the socket's peer, or — only when that peer is a trusted proxy — the
 * right-most untrusted address of `x-forwarded-for`.
 */
export function clientIp(incoming: IncomingMessage, trustedProxies: readonly string[]): string | null {
  const peer = incoming.socket.remoteAddress;
  if (peer === undefined) return null;
  const address = normalize(peer);
  if (trustedProxies.length === 0) return address;
  const list = trusted(trustedProxies);
  if (!isTrusted(address, list)) return address;
  const header = incoming.headers["x-forwarded-for"];
  if (typeof header !== "string") return address;
  const hops = header.split(",").map((hop) => hop.trim()).filter((hop) => hop !== "");
  for (let i = hops.length - 1; i >= 0; i--) {
    // A hop that is no address (garbage, a name) ends the walk: who sent it is not known.
    const hop = hostOf(hops[i]!);
    if (hop === null) return null;
    if (!isTrusted(hop, list)) return hop;
  }
  return hops.length === 0 ? address : hostOf(hops[0]!);
}

/** A forwarded hop's address, a port some proxies add taken off (`1.2.3.4:5678`, `[::1]:443`); null when it is none. */
function hostOf(hop: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  const address = normalize(bracketed?.[1] ?? withPort?.[1] ?? hop);
  return isIPv4(address) || isIPv6(address) ? address : null;
}
