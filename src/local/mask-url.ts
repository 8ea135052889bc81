/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`. Works on unparseable strings too. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) {
      u.password = "***";
      return u.toString();
    }
    return url;
  } catch {
    return url.replace(/(\/\/[^/:@]*:)[^@/]*@/, "$1***@");
  }
}

function passwordOf(url: string): string {
  try {
    const u = new URL(url);
    return u.password ? decodeURIComponent(u.password) : "";
  } catch {
    return /\/\/[^/:@]*:([^@/]*)@/.exec(url)?.[1] ?? "";
  }
}

/** Error text with the URL's password scrubbed out (drivers sometimes echo connection strings). */
export function describeError(err: unknown, url: string): string {
  let msg: string;
  if (err instanceof AggregateError && err.errors.length > 0) {
    msg = err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join("; ");
  } else if (err instanceof Error) {
    msg = err.message || (err as NodeJS.ErrnoException).code || err.name;
  } else {
    msg = String(err);
  }
  const pw = passwordOf(url);
  if (pw) msg = msg.split(pw).join("***");
  return msg;
}
