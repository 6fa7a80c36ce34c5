import { VfioUserClient, type VfioUserClientOptions } from "../../src/vfio-user/client.js";
import { startPeer, type PeerStep } from "./peer.js";
import { Cmd, reply, versionPayload } from "./wire.js";

/** The server side of VERSION: take the proposal, answer 0.1 with these capabilities. */
export function handshake(capabilities: Record<string, unknown> = {}): PeerStep[] {
  return [
    { op: "recv" },
    { op: "reply", bytes: reply(Cmd.VERSION, versionPayload(0, 1, JSON.stringify({ capabilities }))) },
  ];
}

/** Small limits so that splitting shows: 2 fds and 8 data bytes a message, 4 KiB pages, 3 DMA maps. */
export const SMALL_LIMITS = { max_msg_fds: 2, max_data_xfer_size: 8, pgsizes: 4096, max_dma_maps: 3 };

/** A client connected to a scripted server that runs `steps` after the handshake. */
export async function openSession(steps: PeerStep[], capabilities: Record<string, unknown> = SMALL_LIMITS, options: VfioUserClientOptions = {}) {
  const peer = startPeer([...handshake(capabilities), ...steps]);
  await peer.ready;
  const client = VfioUserClient.fromSocket(peer.clientSocket, "/run/test.sock", { timeoutMs: 2000, ...options });
  /** The messages after VERSION. */
  const messages = async () => (await peer.messages()).slice(1);
  return { peer, client, messages };
}
