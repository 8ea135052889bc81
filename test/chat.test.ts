import { describe, expect, it } from "vitest";
import OpenAI from "openai";
import { ask, useStack, waitFor } from "./helpers/stack.js";
import { MODEL_PRICES } from "../src/billing/pricing/prices.js";

const stack = useStack({ env: { CHAT_ATTEMPTS: "3" } });

const rowsFor = (customerId: string) => stack.db("usage_events").where({ customer_id: customerId });

describe("a chat request", () => {
  it("is answered through the official SDK and recorded once with the provider's counts and cost", async () => {
    const { customerId, openai } = await stack.customer();
    const completion = await openai.chat.completions.create(ask("What does meterline do?"));

    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]?.message.content).toMatch(/\w/);
    const rows = await rowsFor(customerId);
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row.prompt_tokens).toBe(completion.usage!.prompt_tokens);
    expect(row.completion_tokens).toBe(completion.usage!.completion_tokens);
    expect(row.billable_tokens).toBe(completion.usage!.total_tokens);
    expect(row.source).toBe("provider");
    expect(row.plan_id).toBe("usage");
    const price = MODEL_PRICES.find((p) => p.model === "gpt-4o-mini")!;
    const scaled = row.prompt_tokens * price.inputPerM + row.completion_tokens * price.outputPerM;
    expect(row.provider_cost_micros).toBe(Math.round(scaled / 1_000_000));
    // The usage plan lists at 2,000 micros per 1K tokens.
    expect(row.price_micros).toBe(Math.round((row.billable_tokens * 2_000) / 1_000));
  });

  it("with the same Idempotency-Key, twice and then 20 times at once, calls the LLM once and bills once", async () => {
    const { customerId, openai } = await stack.customer();
    const before = stack.emulator.calls;
    const headers = { "Idempotency-Key": "order-42" };
    const first = await openai.chat.completions.create(ask("hello"), { headers });
    const second = await openai.chat.completions.create(ask("hello"), { headers });
    const burst = await Promise.all(
      Array.from({ length: 20 }, () =>
        openai.chat.completions.create(ask("hello"), { headers: { "Idempotency-Key": "burst-1" } }),
      ),
    );

    expect(second).toEqual(first);
    expect(new Set(burst.map((c) => JSON.stringify(c))).size).toBe(1);
    expect(stack.emulator.calls - before).toBe(2);
    expect(await rowsFor(customerId)).toHaveLength(2);
  });

  it("refuses an Idempotency-Key reused with a different body with 422", async () => {
    const { openai } = await stack.customer();
    const headers = { "Idempotency-Key": "reused" };
    await openai.chat.completions.create(ask("one"), { headers });
    const err = await openai.chat.completions.create(ask("two"), { headers }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect(err.code).toBe("idempotency_key_reused");
  });

  it("survives two 429s from the provider and records one row", async () => {
    const { customerId, openai } = await stack.customer();
    stack.emulator.injectFault({ kind: "status", status: 429, times: 2 });
    const before = stack.emulator.calls;
    const completion = await openai.chat.completions.create(ask("rate limited"));
    expect(completion.choices[0]?.message.content).toBeTruthy();
    expect(stack.emulator.calls - before).toBe(3);
    expect(await rowsFor(customerId)).toHaveLength(1);
  });

  it("passes a provider 400 through with its message and records nothing", async () => {
    const { customerId, openai } = await stack.customer();
    stack.emulator.injectFault({
      kind: "status",
      status: 400,
      times: 1,
      message: "This model's maximum context length is 128000 tokens.",
    });
    const before = stack.emulator.calls;
    const err = await openai.chat.completions.create(ask("too long")).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.error).toMatchObject({
      message: "This model's maximum context length is 128000 tokens.",
      type: "invalid_request_error",
    });
    expect(stack.emulator.calls - before).toBe(1);
    expect(await rowsFor(customerId)).toHaveLength(0);
  });

  it("answers 502 when the provider keeps failing with 500 past its retries, and records nothing", async () => {
    const { customerId, openai } = await stack.customer();
    stack.emulator.injectFault({ kind: "status", status: 500, times: 3 });
    const before = stack.emulator.calls;
    const err = await openai.chat.completions.create(ask("server down")).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(502);
    expect(err.error).toMatchObject({ type: "server_error", code: "upstream_error" });
    expect(stack.emulator.calls - before).toBe(3);
    expect(await rowsFor(customerId)).toHaveLength(0);
  });

  it("runs a chat that ran out of retries again when the client repeats its Idempotency-Key", async () => {
    const { customerId, openai } = await stack.customer();
    const headers = { "Idempotency-Key": "flaky-upstream" };
    stack.emulator.injectFault({ kind: "status", status: 500, times: 3 });
    const err = await openai.chat.completions.create(ask("try again"), { headers }).catch((e) => e);
    expect(err.status).toBe(502);

    const completion = await openai.chat.completions.create(ask("try again"), { headers });
    expect(completion.object).toBe("chat.completion");
    const again = await openai.chat.completions.create(ask("try again"), { headers });
    expect(again).toEqual(completion);
    expect(await rowsFor(customerId)).toHaveLength(1);
  });

  it("answers a repeated provider 400 from the failed job, without calling the LLM again", async () => {
    const { openai } = await stack.customer();
    const headers = { "Idempotency-Key": "bad-request" };
    stack.emulator.injectFault({ kind: "status", status: 400, times: 1, message: "Invalid 'messages'." });
    await openai.chat.completions.create(ask("bad"), { headers }).catch((e) => e);
    const before = stack.emulator.calls;
    const err = await openai.chat.completions.create(ask("bad"), { headers }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.error.message).toBe("Invalid 'messages'.");
    expect(stack.emulator.calls).toBe(before);
  });

  it("answers 202 with a Location for Prefer: respond-async, and the chat can be fetched by its owner only", async () => {
    const { key } = await stack.customer();
    const other = await stack.customer();
    const res = await stack.chat(key, ask("later"), { headers: { prefer: "respond-async" } });
    expect(res.status).toBe(202);
    const location = res.headers.get("location")!;
    expect(location).toMatch(/^\/v1\/chats\/chat_/);
    const done = await waitFor(async () => {
      const poll = await fetch(`${stack.url}${location}`, { headers: { authorization: `Bearer ${key}` } });
      const body = (await poll.json()) as { status: string; completion: { object: string } };
      return body.status === "succeeded" ? body : undefined;
    });
    expect(done.completion.object).toBe("chat.completion");
    const foreign = await fetch(`${stack.url}${location}`, {
      headers: { authorization: `Bearer ${other.key}` },
    });
    expect(foreign.status).toBe(404);
  });
});
