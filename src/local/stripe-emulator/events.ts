import Stripe from "stripe";
import type { State } from "./state.js";
import type { BuiltEvent, WebhookDelivery, WebhookOptions } from "./types.js";
import type { Obj } from "./util.js";
import { buildSignedEvent, deliver } from "./webhooks.js";

/**
 * Every event the emulator has built, by id, so one can be delivered again: Stripe retries an
 * event and may deliver it twice or out of order, each time with the same id and payload but a
 * fresh signature.
 */
export class EventLog {
  private readonly built = new Map<string, BuiltEvent & { url?: string; secret?: string }>();

  constructor(
    private readonly state: State,
    private readonly secret: string,
    private readonly defaultUrl: string | undefined,
  ) {}

  build(type: string, object: Obj, opts: WebhookOptions = {}): BuiltEvent {
    const built = buildSignedEvent(this.state, type, object, opts, this.secret);
    this.built.set(String(built.event.id), { ...built, url: opts.url, secret: opts.secret });
    return built;
  }

  /** Builds, signs and delivers one event; throws when there is no endpoint or it is unreachable. */
  async send(type: string, object: Obj, opts: WebhookOptions = {}): Promise<{ status: number; event: Obj }> {
    const url = opts.url ?? this.defaultUrl;
    if (!url) throw new Error("sendWebhook: no url (set webhookUrl on the emulator or pass opts.url)");
    const built = this.build(type, object, opts);
    return { status: await deliver(url, built), event: built.event };
  }

  /**
   * Records the event and, when the emulator has a webhookUrl, delivers it. Resolves to the
   * delivery (status null without an endpoint or when it is unreachable); never throws.
   */
  async emit(type: string, object: Obj): Promise<WebhookDelivery> {
    const built = this.build(type, object, { store: false });
    if (!this.defaultUrl) return { status: null, event: built.event };
    try {
      return { status: await deliver(this.defaultUrl, built), event: built.event };
    } catch {
      // Unreachable: Stripe would retry later; tests redeliver with resend.
      return { status: null, event: built.event };
    }
  }

  /** Delivers a recorded event again: same id and payload, signed now. */
  async resend(id: string, url?: string): Promise<WebhookDelivery> {
    const built = this.built.get(id);
    if (!built) throw new Error(`resendEvent: no event ${id}`);
    const target = url ?? built.url ?? this.defaultUrl;
    if (!target) throw new Error("resendEvent: no url (set webhookUrl on the emulator or pass a url)");
    const header = Stripe.webhooks.generateTestHeaderString({
      payload: built.payload,
      secret: built.secret ?? this.secret,
    });
    return { status: await deliver(target, { ...built, header }), event: built.event };
  }

  /** Recorded events, oldest first, optionally of one type. */
  list(type?: string): Obj[] {
    const events = [...this.built.values()].map((b) => b.event);
    return type === undefined ? events : events.filter((e) => e.type === type);
  }
}
