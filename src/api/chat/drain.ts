/**
 * Waits for `promise`, or rejects as soon as the signal aborts (a web process near its shutdown
 * deadline). The listener is removed either way: one signal serves every request of the process.
 */
export async function unlessDraining<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new Error("draining");
  let onAbort = () => {};
  const drained = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error("draining"));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, drained]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
