import { connect } from "node:net";
import { ConfigurationError } from "@vmm/core";
import { controlDir, removeStaleSocket, socketPath } from "./paths.js";
import { PROTOCOL_VERSION, type ControlCommand } from "./protocol.js";

/** The VM answered, and refused the request (its error line): not a VM that is missing or gone. */
export class ControlRefusal extends ConfigurationError {}

/** How long a client waits for a VM's reply: the VM answers between vCPU slices (milliseconds). */
export const REPLY_TIMEOUT_MS = 5000;

/** A VM's control socket path from its name, in the directory the environment gives (paths.ts). */
export function vmSocket(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return socketPath(controlDir(env), name);
}

/**
 * Sends one request to the control socket `file` and resolves with the reply's fields; a reply with `ok: false`
 * is thrown as its error line. No socket: "no VM named"; a socket nobody listens on is a dead VM's and removed.
 */
export async function controlRequest(
  name: string,
  file: string,
  cmd: ControlCommand,
  timeoutMs = REPLY_TIMEOUT_MS,
  args: Readonly<Record<string, unknown>> = {},
): Promise<Record<string, unknown>> {
  const reply = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const socket = connect(file);
    let received = "";
    const timer = setTimeout(() => fail(new ConfigurationError(`VM '${name}' did not answer within ${timeoutMs / 1000} s (control socket ${file})`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.setEncoding("utf8");
    socket.once("connect", () => socket.write(JSON.stringify({ ...args, v: PROTOCOL_VERSION, id: 1, cmd }) + "\n"));
    socket.on("data", (chunk: string) => {
      received += chunk;
      const newline = received.indexOf("\n");
      if (newline < 0) return;
      clearTimeout(timer);
      socket.destroy();
      try {
        resolve(JSON.parse(received.slice(0, newline)) as Record<string, unknown>);
      } catch {
        reject(new ConfigurationError(`VM '${name}' answered something that is not JSON`));
      }
    });
    socket.once("end", () => fail(new ConfigurationError(`VM '${name}' closed its control socket without answering`)));
    socket.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return fail(new ConfigurationError(`no VM named '${name}' (no control socket ${file})`));
      if (error.code === "ECONNREFUSED") {
        clearTimeout(timer);
        socket.destroy();
        void removeStaleSocket(file).then(
          (removed) =>
            reject(
              new ConfigurationError(
                removed ? `VM '${name}' is not running (it left a stale control socket ${file}; removed)` : `'${file}' is not a VM's control socket (not a socket); left alone`,
              ),
            ),
          (problem: unknown) => reject(problem),
        );
        return;
      }
      fail(error);
    });
  });
  if (reply.ok !== true) throw new ControlRefusal(typeof reply.error === "string" ? reply.error : `VM '${name}' refused '${cmd}'`);
  return reply;
}
