import { beforeAll, describe, expect, it } from "vitest";
import { runCli, runCliJson } from "./helpers/cli.js";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { findPlan } from "../src/billing/pricing/plans.js";
import { periodCharge } from "../src/billing/pricing/period-charge.js";
import { planPriceParams } from "../src/billing/reporting/stripe-setup.js";

const stack = useStack({ env: { CREDIT_EXPIRY_INTERVAL_MS: "1000" } });
let customerId: string;

beforeAll(async () => {
  customerId = (await stack.customer()).customerId;
});

const cli = (...args: string[]) => runCli(stack.config, ...args);
const json = (...args: string[]) => runCliJson(stack.config, ...args);

const admin = (path: string, body?: unknown) =>
  fetch(`${stack.url}/admin${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe("CLI credits:grant, credits:balance, credits:ledger", () => {
  it("grants (once per reference), answers the balance as {balance_micros} and the ledger newest first", async () => {
    const granted = await json(
      "credits:grant",
      ...["--customer", customerId, "--amount-micros", "2500000", "--reference", "ticket-7"],
      ...["--expires", "2099-01-31", "--source", "promotional"],
    );
    expect(granted).toMatchObject({
      customerId,
      source: "promotional",
      amountMicros: 2_500_000,
      remainingMicros: 2_500_000,
      expiresAt: "2099-01-31T00:00:00.000Z",
      reference: "ticket-7",
      created: true,
    });
    const again = await cli(
      ...["credits:grant", "--customer", customerId, "--amount-micros", "2500000", "--reference", "ticket-7"],
    );
    expect(again.stdout).toContain("already granted");

    expect(await json("credits:balance", "--customer", customerId)).toStrictEqual({
      balance_micros: 2_500_000,
    });
    const ledger = (await json("credits:ledger", "--customer", customerId)) as unknown[];
    expect(ledger).toEqual([
      expect.objectContaining({ kind: "grant", customerId, amountMicros: 2_500_000, requestId: null }),
    ]);
  });

  it("refuses a negative amount, a bad date and an unknown customer with a clear message", async () => {
    const negative = await cli("credits:grant", "--customer", customerId, "--amount-micros=-5");
    expect(negative).toMatchObject({ code: 2 });
    expect(negative.stderr).toContain("--amount-micros must be a positive integer");
    const badDate = await cli(
      ...["credits:grant", "--customer", customerId, "--amount-micros", "5", "--expires", "next tuesday"],
    );
    expect(badDate).toMatchObject({ code: 2 });
    expect(badDate.stderr).toContain("--expires must be an ISO date");
    const unknown = await cli("credits:balance", "--customer", "cust_nobody", "--json");
    expect(unknown).toMatchObject({ code: 1 });
    expect(unknown.stderr).toContain('no customer "cust_nobody"');
  });

  it("creates a plan of kind prepaid, whose invoice carries its base fee and only the overage credits did not pay", async () => {
    const plan = await json(
      ...["plans:upsert", "--id", "prepaid-test", "--name", "Prepaid", "--kind", "prepaid"],
      ...["--base-fee-micros", "1000000", "--overage-per-1k-micros", "2000"],
    );
    expect(plan).toMatchObject({ id: "prepaid-test", kind: "prepaid" });
    const saved = (await findPlan(stack.db, "prepaid-test"))!;
    // Credits paid 49,000 of the 50,000 tokens as they were used: the invoice charges the other 1,000.
    expect(periodCharge(saved, 50_000, 49_000)).toMatchObject({
      overageTokens: 50_000,
      creditTokens: 49_000,
      overageMicros: 2_000,
      totalMicros: 1_002_000,
    });
    // Its Stripe usage price is the plan's rate: the meter is sent only the tokens credits did not pay.
    const usagePrice = planPriceParams(saved, "mtr_test").usage!;
    expect(String(usagePrice.unit_amount_decimal)).toBe("0.0002");
  });
});

describe("admin API /admin/customers/:id/credits", () => {
  it("grants with 201, answers a repeated reference with 200 and the same grant, and lists balance and ledger", async () => {
    const { customerId: id } = await stack.customer();
    const body = { amount_micros: 1_000_000, reference: "cs_test_admin", expires_at: "2099-06-01T00:00:00Z" };
    const first = await admin(`/customers/${id}/credits`, body);
    expect(first.status).toBe(201);
    const grant = (await first.json()) as { id: number };
    expect(grant).toMatchObject({
      object: "credit_grant",
      customerId: id,
      source: "manual",
      amountMicros: 1_000_000,
    });
    const repeat = await admin(`/customers/${id}/credits`, body);
    expect(repeat.status).toBe(200);
    expect(await repeat.json()).toEqual(grant);

    const dated = await admin(`/customers/${id}/credits`, { amount_micros: 5, expires_at: "2099-01-31" });
    expect(await dated.json()).toMatchObject({ expiresAt: "2099-01-31T00:00:00.000Z" });
    const other = await stack.customer();
    expect((await admin(`/customers/${other.customerId}/credits`, body)).status).toBe(409);

    const listed = await admin(`/customers/${id}/credits`);
    expect(listed.status).toBe(200);
    expect(await listed.json()).toMatchObject({
      balance_micros: 1_000_005,
      ledger: [
        { kind: "grant", amountMicros: 5 },
        { kind: "grant", grantId: grant.id, amountMicros: 1_000_000 },
      ],
    });
  });

  it("answers bad input with an OpenAI-style 4xx", async () => {
    const cases: Array<[string, unknown, number, string | null]> = [
      [customerId, { amount_micros: -5 }, 400, "amount_micros"],
      [customerId, { amount_micros: 1.5 }, 400, "amount_micros"],
      [customerId, { amount_micros: 5, expires_at: "2027-13-45" }, 400, "expires_at"],
      [customerId, { amount_micros: 5, source: "free-money" }, 400, "source"],
      ["cust_nobody", { amount_micros: 5 }, 404, null],
    ];
    for (const [id, body, status, param] of cases) {
      const res = await admin(`/customers/${id}/credits`, body);
      const answer = (await res.json()) as { error: { type: string; param?: string | null } };
      expect({ body, status: res.status }).toEqual({ body, status });
      if (param) expect(answer.error).toMatchObject({ type: "invalid_request_error", param });
    }
    expect((await admin("/customers/cust_nobody/credits")).status).toBe(404);
    const unauthenticated = await fetch(`${stack.url}/admin/customers/${customerId}/credits`);
    expect(unauthenticated.status).toBe(401);
  });
});

describe("the scheduled expiry", () => {
  it("writes the expiry entry of a grant past its expiry on the maintenance queue", async () => {
    const { customerId: id } = await stack.customer();
    const res = await admin(`/customers/${id}/credits`, {
      amount_micros: 7_000,
      expires_at: "2099-01-01T00:00:00Z",
    });
    const { id: grantId } = (await res.json()) as { id: number };
    await stack
      .db("credit_grants")
      .where({ id: grantId })
      .update({ expires_at: new Date(Date.now() - 1_000) });
    const expiry = await waitFor(
      () => stack.db("credit_entries").where({ grant_id: grantId, kind: "expiry" }).first("amount_micros"),
      { timeoutMs: 15_000, what: "the scheduled expiry entry" },
    );
    expect(expiry).toEqual({ amount_micros: -7_000 });
  });
});

describe("voiding a grant", () => {
  it("takes what is left of it out of the balance and the real-time counter, once; 404 and 400 for bad ids", async () => {
    const { customerId: id } = await stack.customer();
    const granted = (await (await admin(`/customers/${id}/credits`, { amount_micros: 7_000 })).json()) as {
      id: number;
    };
    expect(await stack.web.creditCounter.available(id)).toBe(7_000);

    const first = await admin(`/credit-grants/${granted.id}/void`, {});
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ grant_id: granted.id, customer_id: id, voided_micros: 7_000 });
    expect(await stack.web.creditCounter.available(id)).toBe(0);
    const again = (await (await admin(`/credit-grants/${granted.id}/void`, {})).json()) as {
      voided_micros: number;
    };
    expect(again.voided_micros).toBe(0);
    expect(await stack.web.creditCounter.available(id)).toBe(0);

    expect((await admin(`/credit-grants/999999999/void`, {})).status).toBe(404);
    const bad = await admin(`/credit-grants/abc/void`, {});
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "invalid_id" } });
  });
});
