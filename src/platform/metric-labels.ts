import { priceFor } from "../billing/pricing/prices.js";

/** The label value every unknown or over-the-cap value is folded into. */
export const OTHER_LABEL = "other";

/**
 * Every distinct label value is a time series kept for the life of the process (and in Prometheus):
 * a label fed by customer input must come from a known, finite set. Beyond `max` distinct values any
 * new one folds into `other` — a second guard should a known set turn out larger than expected.
 */
export function boundedLabel(max: number, known: (value: string) => string | undefined = (v) => v) {
  const seen = new Set<string>();
  return (value: string): string => {
    const label = known(value) ?? OTHER_LABEL;
    if (seen.has(label)) return label;
    if (seen.size >= max) return OTHER_LABEL;
    seen.add(label);
    return label;
  };
}

/**
 * A model name as a label: the price table's name for it (dated snapshots count under their family),
 * else `other`. Models priced only by DEFAULT_MODEL_PRICE are any string a customer sends.
 */
export const knownModel = (model: string): string | undefined => priceFor(model)?.model;

// Far above the price table and Stripe's ~250 event types; only a runaway source reaches it.
export const MAX_LABEL_VALUES = 500;
