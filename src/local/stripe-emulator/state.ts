import type { MeterErrorReport, MeterEventRecord } from "./types.js";
import { noSuch } from "./api-error.js";
import type { Obj, Params } from "./util.js";

export interface StoredMeterEvent extends MeterEventRecord {
  payload: Record<string, string>;
}

/** Everything the emulator remembers. Objects of every kind share one id-keyed map. */
export class State {
  readonly objects = new Map<string, Obj>();
  /** By identifier, while Stripe dedupes it. */
  readonly meterEvents = new Map<string, StoredMeterEvent>();
  /** Events past the identifier dedupe window: still counted, their identifier free to count again. */
  readonly expiredMeterEvents: StoredMeterEvent[] = [];
  /** Meter event session token → expiry (Unix seconds). */
  readonly sessions = new Map<string, number>();
  readonly errorReports: MeterErrorReport[] = [];
  /** Where events an API call causes go (a PaymentIntent's outcome): set by the server to sign,
   * record and deliver them; never awaited, as Stripe sends them after answering the call. */
  emit: (type: string, object: Obj) => void = () => undefined;
  /** The emulator's own URL, for the pages its objects link to (a Checkout Session's `url`). */
  baseUrl = "";

  constructor(readonly nowMs: () => number) {}

  now(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  get(kind: string, id: string): Obj | undefined {
    const o = this.objects.get(id);
    return o !== undefined && o.object === kind ? o : undefined;
  }

  /** The stored object of `kind`, else Stripe's resource_missing error naming it `label`. */
  find(kind: string, id: string, label: string, param = "id", status = 404): Obj {
    const o = this.get(kind, id);
    if (!o) throw noSuch(label, id, param, status);
    return o;
  }

  put(o: Obj): Obj {
    if (typeof o.id !== "string") throw new Error("object without id");
    this.objects.set(o.id, o); // an update keeps the original (creation) list position
    return o;
  }

  /** Objects of one kind, newest first (Stripe list order). */
  list(kind: string, filter: (o: Obj) => boolean = () => true): Obj[] {
    const out: Obj[] = [];
    for (const o of this.objects.values()) if (o.object === kind && filter(o)) out.push(o);
    return out.reverse();
  }

  /** Every recorded meter event. */
  allMeterEvents(): StoredMeterEvent[] {
    return [...this.expiredMeterEvents, ...this.meterEvents.values()];
  }

  /**
   * Ends the identifier dedupe window of every event recorded so far, as if more than 24 hours had
   * passed: Stripe dedupes an identifier for at least 24 hours, after which the same identifier is
   * a new event.
   */
  expireIdentifiers(): void {
    this.expiredMeterEvents.push(...this.meterEvents.values());
    this.meterEvents.clear();
  }

  customerExists(id: string): boolean {
    const c = this.get("customer", id);
    return c !== undefined && c.deleted !== true;
  }

  activeMeterFor(eventName: string): Obj | undefined {
    for (const o of this.objects.values()) {
      if (o.object === "billing.meter" && o.status === "active" && o.event_name === eventName) return o;
    }
    return undefined;
  }
}

export interface Ctx {
  method: string;
  path: string;
  params: Params;
  pathParams: Record<string, string>;
  state: State;
}

export interface Route {
  method: "GET" | "POST" | "DELETE";
  template: string;
  handler: (ctx: Ctx) => unknown;
  /** Enforce Stripe's one-concurrent-call per (customer, meter) rule on this route. */
  meterConcurrency?: boolean;
  /** "session": Bearer must be a meter event session token instead of a secret key. */
  auth?: "secret" | "session";
}
