// Runs scripted-peer.mjs in a worker over one end of a socketpair; the other end goes to the client under test.
import { closeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { socketPair } from "@vmm/host-io";

export type FdSpec = { readonly memfd: Uint8Array } | { readonly probe: string };

export type PeerStep =
  | { readonly op: "recv" }
  | { readonly op: "reply" | "send"; readonly bytes: Uint8Array; readonly fds?: readonly FdSpec[]; readonly chunks?: readonly number[]; readonly pauseMs?: number }
  | { readonly op: "sleep"; readonly ms: number }
  | { readonly op: "close" }
  | { readonly op: "signal"; readonly fd: number }
  | { readonly op: "readFd"; readonly fd: number; readonly offset: number; readonly length: number }
  | { readonly op: "writeFd"; readonly fd: number; readonly offset: number; readonly bytes: Uint8Array }
  | { readonly op: "probe"; readonly probe: string };

export type TranscriptEntry =
  | { readonly kind: "message"; readonly bytes: Uint8Array; readonly fdCount: number }
  | { readonly kind: "fd-data"; readonly bytes: Uint8Array }
  | { readonly kind: "probe"; readonly name: string; readonly closed: boolean }
  | { readonly kind: "error"; readonly message: string };

export interface Peer {
  /** The client's end of the socketpair. */
  readonly clientSocket: number;
  /** Settles once the worker runs its steps: connect the client after it. */
  readonly ready: Promise<void>;
  /** Everything the peer recorded, once its steps ran out. */
  readonly done: Promise<TranscriptEntry[]>;
  /** The messages the client sent, in order (fails the test if the script failed). */
  messages(): Promise<{ bytes: Uint8Array; fdCount: number }[]>;
  /** Whether each probe fd was closed by the client, by name. */
  probes(): Promise<Record<string, boolean>>;
  /** What readFd steps read. */
  fdData(): Promise<Uint8Array[]>;
}

export function startPeer(steps: readonly PeerStep[], options: { timeoutMs?: number } = {}): Peer {
  const [clientSocket, peerSocket] = socketPair();
  const worker = new Worker(new URL("./scripted-peer.mjs", import.meta.url), {
    // Not the test runner's flags: its "source" export condition would hand plain Node the TypeScript sources.
    execArgv: [],
    // The peer closes fds the main thread's code opened (same process); Node need not track them per thread.
    trackUnmanagedFds: false,
    workerData: { socket: peerSocket, steps, timeoutMs: options.timeoutMs ?? 5000 },
  });
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const done = new Promise<TranscriptEntry[]>((resolve, reject) => {
    worker.on("message", (message: { ready?: true; transcript?: TranscriptEntry[] }) => {
      if (message.ready) markReady();
      if (message.transcript) resolve(message.transcript);
    });
    worker.once("error", (error) => {
      markReady();
      reject(error);
    });
  }).finally(() => {
    try {
      closeSync(peerSocket);
    } catch {
      // the script closed it
    }
  });
  return {
    clientSocket,
    ready,
    done,
    async messages() {
      const transcript = await done;
      const errors = transcript.filter((entry) => entry.kind === "error");
      if (errors.length > 0) throw new Error(`the scripted peer failed: ${errors.map((e) => (e as { message: string }).message).join("; ")}`);
      return transcript.flatMap((entry) => (entry.kind === "message" ? [{ bytes: entry.bytes, fdCount: entry.fdCount }] : []));
    },
    async probes() {
      const transcript = await done;
      return Object.fromEntries(transcript.flatMap((entry) => (entry.kind === "probe" ? [[entry.name, entry.closed]] : [])));
    },
    async fdData() {
      const transcript = await done;
      return transcript.flatMap((entry) => (entry.kind === "fd-data" ? [entry.bytes] : []));
    },
  };
}
