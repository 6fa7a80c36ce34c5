/** A way of showing the framebuffer to a person or a file. */
export interface Display {
  readonly kind: "png" | "vnc" | "web";
  /** Where to find it, for the log ("vnc on 127.0.0.1:5900"). */
  readonly description: string;
  start(): Promise<void>;
  /** Writes what a screenshot means for this display (only png does anything). */
  screenshot?(): void;
  /** The VM stopped: last picture out, sockets closed. */
  stop(): Promise<void>;
}

export type DisplaySpec = { kind: "png"; path: string } | { kind: "vnc"; port: number } | { kind: "web"; port: number };

export const DEFAULT_VNC_PORT = 5900;
export const DEFAULT_WEB_PORT = 5800;

/**
 * Parses `png:PATH`, `vnc[:PORT]`, `web[:PORT]` lists separated by ',' or '+' ('+' survives the comma-separated
 * `--device` syntax). Throws Error with a message naming the bad entry.
 */
export function parseDisplays(text: string): DisplaySpec[] {
  const specs: DisplaySpec[] = [];
  for (const raw of text.split(/[+,]/)) {
    const entry = raw.trim();
    if (!entry) continue;
    const colon = entry.indexOf(":");
    const kind = colon < 0 ? entry : entry.slice(0, colon);
    const arg = colon < 0 ? undefined : entry.slice(colon + 1);
    if (kind === "png") {
      if (!arg) throw new Error(`display '${entry}': png needs a path (png:PATH)`);
      specs.push({ kind, path: arg });
    } else if (kind === "vnc" || kind === "web") {
      const port = arg === undefined || arg === "" ? (kind === "vnc" ? DEFAULT_VNC_PORT : DEFAULT_WEB_PORT) : Number(arg);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`display '${entry}': port must be 0..65535`);
      specs.push({ kind, port });
    } else {
      throw new Error(`display '${entry}': unknown kind '${kind}' (png:PATH, vnc[:PORT], web[:PORT])`);
    }
  }
  return specs;
}
