import { divRoundHalfUp } from "./prices.js";

/** "$12.35" from micro-dollars, rounded half up to `decimals` (≤ 6) by integer arithmetic. */
export function formatMicros(micros: number, decimals = 4): string {
  const sign = micros < 0 ? "-" : "";
  const unit = 10 ** (6 - decimals);
  const scaled = divRoundHalfUp(Math.abs(micros), unit); // in units of 10^-decimals dollars
  const whole = Math.floor(scaled / 10 ** decimals);
  const fraction = String(scaled % 10 ** decimals).padStart(decimals, "0");
  return `${sign}$${whole}${decimals > 0 ? `.${fraction}` : ""}`;
}

/** "4" or "3.5" → hundredths (400, 350), without floating point; undefined when not such a number. */
export function parseHundredths(text: string): number | undefined {
  const match = /^(\d{1,6})(?:\.(\d{1,2}))?$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * 100 + Number((match[2] ?? "").padEnd(2, "0"));
}
