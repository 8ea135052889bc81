import type { UsageRow } from "../../src/billing/ledger/ledger.js";

/** A plain provider-reported ledger row (15 tokens of gpt-4o-mini on the usage plan) for `customerId`. */
export function usageRow(requestId: string, customerId: string, extra: Partial<UsageRow> = {}): UsageRow {
  return {
    requestId,
    customerId,
    model: "gpt-4o-mini",
    promptTokens: 10,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    completionTokens: 5,
    reasoningTokens: 0,
    billableTokens: 15,
    providerCostMicros: 3,
    priceMicros: 30,
    source: "provider",
    planId: "usage",
    pricing: { includedTokens: 0, overagePer1kMicros: 2_000 },
    ...extra,
  };
}
