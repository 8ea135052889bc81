import { describe, expect, it } from "vitest";
import { useStack, waitFor } from "./helpers/stack.js";

// A provider that returns no usage: the worker estimates the row from the whole request.
const stack = useStack({ emulator: { omitUsage: true } });

describe("an estimated usage row counts what the provider billed", () => {
  it("a chat with an image, a tool and a schema is estimated at or above the provider's count", async () => {
    const { customerId, openai } = await stack.customer();
    const tool = {
      type: "function" as const,
      function: {
        name: "lookup_invoice",
        description: "Finds an invoice by its number.",
        parameters: { type: "object", properties: { number: { type: "string" } }, required: ["number"] },
      },
    };
    const answer = await openai.chat.completions.create({
      model: "gpt-4o",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Which invoice is in this photo?" },
            { type: "image_url", image_url: { url: "https://example.com/invoice.png" } },
          ],
        },
      ],
      tools: [tool],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "invoice",
          schema: { type: "object", properties: { number: { type: "string" } } },
        },
      },
      max_tokens: 20,
    });
    const provider = stack.emulator.requests.at(-1)!.promptTokens;
    expect(provider).toBeGreaterThan(85 + 8 * 170);
    const row = await waitFor(() => stack.db("usage_events").where({ customer_id: customerId }).first(), {
      what: "the usage row",
    });
    expect(row.source).toBe("estimated");
    // The provider sent no usage: the answer carries the estimate it was billed on, with its cost.
    expect(answer.usage).toMatchObject({
      prompt_tokens: row.prompt_tokens,
      completion_tokens: row.completion_tokens,
    });
    expect((answer.usage as unknown as { cost: number }).cost).toBeGreaterThan(0);
    expect(Number(row.prompt_tokens)).toBeGreaterThanOrEqual(provider);
    expect(Number(row.prompt_tokens)).toBeLessThanOrEqual(provider * 1.2);
  });
});
