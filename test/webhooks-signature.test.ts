import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { signPayload, verifySignature } from "../src/notifications/signature.js";

const secret = "whsec_test_0123456789";
const body = JSON.stringify({ id: "evt_1", type: "usage.threshold_reached", created: 1, data: { a: 1 } });
const now = Math.floor(Date.now() / 1000);

describe("webhook signatures", () => {
  it("a receiver verifies what was signed, and nothing else", () => {
    const header = signPayload(secret, now, body);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(header, body, secret, 300)).toBe(true);
    expect(verifySignature(header, body.replace('"a":1', '"a":2'), secret, 300)).toBe(false);
    expect(verifySignature(header, body, "whsec_other", 300)).toBe(false);
    expect(verifySignature(undefined, body, secret, 300)).toBe(false);
    expect(verifySignature("t=abc,v1=00", body, secret, 300)).toBe(false);
    // A secret being rotated: any one v1 that matches is enough.
    const other = signPayload("whsec_old", now, body).split(",")[1];
    expect(verifySignature(`${header},${other}`, body, secret, 300)).toBe(true);
  });

  it("refuses a signature older (or newer) than the tolerance: a replayed request fails", () => {
    const old = signPayload(secret, now - 600, body);
    expect(verifySignature(old, body, secret, 300)).toBe(false);
    expect(verifySignature(old, body, secret, 900)).toBe(true);
    expect(verifySignature(signPayload(secret, now + 600, body), body, secret, 300)).toBe(false);
  });

  it("the default retries span about three days", () => {
    const { webhooks } = loadConfig({});
    let ceilings = 0;
    for (let made = 1; made < webhooks.attempts; made++)
      ceilings += Math.min(webhooks.maxBackoffMs, webhooks.backoffMs * 2 ** (made - 1));
    const days = (ms: number) => ms / 86_400_000;
    // Each wait is jittered between half and all of its ceiling.
    expect(days(ceilings / 2)).toBeGreaterThan(2);
    expect(days(ceilings)).toBeLessThan(4.5);
    expect(days((ceilings * 3) / 4)).toBeCloseTo(3, 0);
  });
});
