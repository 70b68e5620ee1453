import { describe, expect, it } from "vitest";
import { clientResponseHeaders, upstreamRequestHeaders } from "../../src/upstream/headers.js";
import { REDACTED_SECRET, secretScrubber } from "../../src/upstream/scrub.js";

const keep = (text: string): string => text;

describe("header hygiene", () => {
  it("replaces the client's credentials and drops hop-by-hop and Connection-listed headers", () => {
    const out = upstreamRequestHeaders(
      {
        authorization: "Bearer sk-virtual",
        "proxy-authorization": "Basic x",
        connection: "keep-alive, x-secret-hop",
        "x-secret-hop": "1",
        "keep-alive": "timeout=5",
        "transfer-encoding": "chunked",
        host: "evil.example",
        "x-forwarded-host": "evil.example",
        "x-session-id": "s1",
        "openai-organization": "org-1",
        "openai-project": "proj-1",
        "user-agent": "sdk",
        "accept-encoding": "gzip, br",
        "content-encoding": "br",
      },
      "sk-upstream",
      42,
      "x-session-id",
    );
    expect(out).toEqual({
      authorization: "Bearer sk-upstream",
      "user-agent": "sdk",
      "accept-encoding": "identity",
      "content-length": "42",
      "content-type": "application/json",
    });
  });

  it("drops the headers front ends route or re-method a request by", () => {
    const out = upstreamRequestHeaders(
      { "x-original-url": "/v1/chat/completions", "x-rewrite-url": "/v1/responses", "x-http-method-override": "POST", "x-envoy-original-path": "/v1/x", "x-kept": "1" },
      "",
      null,
      "x-session-id",
    );
    expect(out).toEqual({ "x-kept": "1", "accept-encoding": "identity" });
  });

  it("omits Authorization when the upstream has no key", () => {
    expect(upstreamRequestHeaders({ authorization: "Bearer sk-virtual" }, "", null, "x-session-id")).toEqual({ "accept-encoding": "identity" });
  });

  it("keeps a relayed body's content-encoding (passthrough pipes the bytes as sent)", () => {
    expect(upstreamRequestHeaders({ "content-encoding": "gzip" }, "", null, "x-session-id")).toEqual({ "content-encoding": "gzip", "accept-encoding": "identity" });
  });

  it("masks the upstream's key in a header an upstream echoes it in", () => {
    const scrub = secretScrubber(["sk-UPSTREAM-secret-1"]);
    expect(clientResponseHeaders({ "x-echo": "Bearer sk-UPSTREAM-secret-1", "x-other": "fine" }, null, scrub)).toEqual([
      "x-echo",
      `Bearer ${REDACTED_SECRET}`,
      "x-other",
      "fine",
    ]);
  });

  it("drops hop-by-hop headers, cookies, the upstream's own rate-limit headers and its account's organization and project from responses", () => {
    expect(
      clientResponseHeaders(
        {
          "content-type": "application/json",
          connection: "close",
          "transfer-encoding": "chunked",
          "set-cookie": ["a=b"],
          "proxy-authenticate": "Basic realm=upstream",
          "openai-organization": "operator-org",
          "openai-project": "proj_operator",
          "x-ratelimit-remaining-requests": "5",
          "openai-processing-ms": "12",
        },
        null,
        keep,
      ),
    ).toEqual(["content-type", "application/json", "openai-processing-ms", "12"]);
  });

  it("leaves out what the gateway sets itself: its x-gateway-* headers, the named header and Connection-listed ones", () => {
    expect(
      clientResponseHeaders(
        {
          "content-type": "text/plain",
          "cache-control": "max-age=60",
          "x-gateway-cost": "0.000000",
          connection: "x-internal",
          "x-internal": "secret",
          vary: ["a", "b"],
        },
        "content-type",
        keep,
      ),
    ).toEqual(["cache-control", "max-age=60", "vary", "a, b"]);
  });
});
