/**
 * The control socket's protocol (packages/cli/README.md, "Control socket"): newline-delimited JSON over a UNIX
 * stream socket, one request line answered by one reply line; replies carry the request's `id`. Version 1.
 */

export const PROTOCOL_VERSION = 1;

/** The longest request line a server reads (bytes, newline excluded); a longer one gets an error and the connection ends. */
export const MAX_REQUEST_LINE = 4096;

/** The commands a version-1 server answers. */
export const CONTROL_COMMANDS = ["status", "pause", "resume", "stop", "stat", "registers", "events", "snapshot", "powerdown", "screenshot"] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

/** What a machine does after a snapshot: runs on (the default), stays paused, or stops. */
export const SNAPSHOT_THEN = ["resume", "pause", "stop"] as const;
export type SnapshotThen = (typeof SNAPSHOT_THEN)[number];

/** One argument of a command: whether it must be given, and what makes a value wrong (a phrase, or nothing). */
interface ArgumentSpec {
  readonly required?: boolean;
  readonly check: (value: unknown) => string | undefined;
}

/** The arguments each command takes, as fields of the request beside `v`, `id` and `cmd`; others take none. */
const ARGUMENTS: Partial<Record<ControlCommand, Readonly<Record<string, ArgumentSpec>>>> = {
  snapshot: {
    dir: { required: true, check: (v) => (typeof v === "string" && v.startsWith("/") && !v.includes("\0") ? undefined : "must be an absolute path") },
    then: { check: (v) => ((SNAPSHOT_THEN as readonly unknown[]).includes(v) ? undefined : `must be one of ${SNAPSHOT_THEN.join(", ")}`) },
  },
};

export interface ControlRequest {
  readonly v: number;
  readonly id?: number | string;
  readonly cmd: ControlCommand;
  /** The command's arguments, checked against its table. */
  readonly args: Readonly<Record<string, unknown>>;
}

/** What `snapshot` answers: where it went, and how much it wrote. */
export interface SnapshotReply {
  readonly dir: string;
  readonly memoryBytes: number;
  /** Bytes of RAM that were not zero: what the sparse memory file holds on disk. */
  readonly dataBytes: number;
  readonly milliseconds: number;
  /** The VM's state after the snapshot. */
  readonly state: string;
}

/** What `powerdown` answers besides the VM's `pid`: whether its guest had enabled the ACPI power button event. */
export interface PowerdownResult {
  readonly enabled: boolean;
}

/** What `screenshot` answers: the display device, the picture's size, and the PNG file's bytes in base64. */
export interface ScreenshotReply {
  readonly device: string;
  readonly width: number;
  readonly height: number;
  readonly png: string;
}

/** A reply: `ok: true` with the command's fields, or `ok: false` with one line saying why. */
export type ControlReply = ({ readonly ok: true } & Record<string, unknown>) | { readonly ok: false; readonly error: string };

/** A VM as `status` (and `vmm list`) describes it. */
export interface VmStatus {
  readonly name: string;
  readonly pid: number;
  /** "starting" until the machine is assembled, "stopping" once it is being stopped. */
  readonly state: "starting" | "running" | "paused" | "stopping";
  readonly arch: string;
  /** When the `vmm run` process opened the socket (ISO 8601) and how long ago that was. */
  readonly startedAt: string;
  readonly uptimeMs: number;
  /** Guest RAM in bytes. */
  readonly memory: number;
  readonly cpus: number;
  /** The instance names of the devices given on the command line. */
  readonly devices: readonly string[];
}

/** `stat`: the machine's counters and each device's that keeps some, as `vmm run --stats` prints them. */
export interface VmStats {
  readonly machine: Readonly<Record<string, number>>;
  readonly devices: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** An event line sent to an `events` subscriber (no `id`: it answers no request). */
export interface ControlEvent {
  readonly v: number;
  readonly event: "running" | "paused" | "resumed" | "stopping";
  readonly name: string;
  readonly time: string;
}

/** Reads one request line; what cannot be understood is a reason for an error reply, never an exception. */
export function parseRequest(line: string): { request: ControlRequest } | { error: string; id?: number | string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { error: "malformed request: not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { error: "malformed request: not a JSON object" };
  const { v, id, cmd, ...rest } = value as Record<string, unknown>;
  const validId = typeof id === "number" || typeof id === "string" ? id : undefined;
  if (id !== undefined && validId === undefined) return { error: "malformed request: id must be a number or a string" };
  if (v !== PROTOCOL_VERSION) return { error: `unsupported protocol version ${JSON.stringify(v)} (this VM speaks ${PROTOCOL_VERSION})`, id: validId };
  if (typeof cmd !== "string") return { error: "malformed request: cmd must be a string", id: validId };
  if (!(CONTROL_COMMANDS as readonly string[]).includes(cmd)) return { error: `unknown command '${cmd}' (known: ${CONTROL_COMMANDS.join(", ")})`, id: validId };
  const specs = ARGUMENTS[cmd as ControlCommand] ?? {};
  for (const key of Object.keys(rest)) {
    if (!specs[key]) return { error: `'${cmd}' takes no argument '${key}'`, id: validId };
    const problem = specs[key].check(rest[key]);
    if (problem) return { error: `'${cmd}': ${key} ${problem}`, id: validId };
  }
  const missing = Object.keys(specs).find((key) => specs[key]!.required && !(key in rest));
  if (missing) return { error: `'${cmd}' needs the argument '${missing}'`, id: validId };
  return { request: { v, id: validId, cmd: cmd as ControlCommand, args: rest } };
}

/** A reply line for a request (its id echoed when it had one). */
export function replyLine(id: number | string | undefined, reply: ControlReply): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, ...(id !== undefined ? { id } : {}), ...reply }) + "\n";
}
