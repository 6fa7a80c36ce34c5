import { GuestError, PluginError, VmmError } from "@vmm/core";

/** Exit statuses of the vmm command. */
export const ExitCode = {
  ok: 0,
  /** It was understood but could not be carried out: files, plugins, conflicts, guest or device failures. */
  runtime: 1,
  /** The command line cannot be understood: syntax, unknown options or device types, bad values. */
  usage: 2,
} as const;

/** A problem with the command line itself (exit status 2). */
export class UsageError extends VmmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("EUSAGE", message, options);
  }
}

/** Bad options for a device or plugin given on the command line; the message names the plugin and option. */
export class OptionsError extends UsageError {
  constructor(cause: PluginError) {
    super(cause.message, { cause });
  }
}

/** A device threw while the guest ran; the VM is stopped and the device named. */
export class DeviceFaultError extends VmmError {
  constructor(
    readonly device: string,
    readonly operation: string,
    cause: unknown,
  ) {
    super("EDEVICE", `device ${device} failed in ${operation}: ${describe(cause)}`, { cause });
  }
}

/** Device or plugin code threw outside a guest access (a timer, an I/O callback, a promise); the VM is stopped. */
export class AsyncFaultError extends VmmError {
  constructor(cause: unknown) {
    super("EASYNC", `a device or plugin failed outside a guest access: ${describe(cause)}`, { cause });
  }
}

/** A file the user named cannot be used. */
export class FileError extends VmmError {
  constructor(what: string, path: string, cause: unknown) {
    super("EFILE", `${what} '${path}': ${fileProblem(cause)}`, { cause });
  }
}

function fileProblem(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "is a directory";
  return describe(cause);
}

/** The message of anything thrown, without a stack. */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The exit status an error maps to. */
export function exitCodeFor(error: unknown): number {
  return error instanceof UsageError ? ExitCode.usage : ExitCode.runtime;
}

/**
 * One line for stderr: `vmm: error: ...`. Errors the VMM raises on purpose carry their own message; anything else
 * is an internal error. With `debug`, the stack (and causes' stacks) follow on further lines.
 */
export function renderError(error: unknown, debug: boolean): string {
  const intended = error instanceof VmmError || error instanceof GuestError;
  const text = describe(error).replace(/\s*\n\s*/g, " ").trim();
  const line = `vmm: error: ${intended ? text : `internal error: ${text}`}`;
  if (!debug) return line;
  const stacks: string[] = [];
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.stack) stacks.push(depth === 0 ? e.stack : `caused by: ${e.stack}`);
  }
  return [line, ...stacks].join("\n");
}
