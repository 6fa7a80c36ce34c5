import { closeSync } from "node:fs";
import { recvFds, sendFds, unixConnect, waitReadable } from "@vmm/host-io";
import { CMD, ERROR, le, message, type Received, REPLY, regionReadRequest, regionWriteRequest, versionPayload, dword } from "./wire.js";

/** A raw vfio-user client over a unix socket: sends hand-built messages, cuts replies by the header's size. */
export class RawClient {
  private buffer = new Uint8Array(0);
  private pendingFds: number[] = [];
  private nextId = 100;
  readonly fd: number;

  constructor(path: string) {
    this.fd = unixConnect(path);
  }

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    let sent = 0;
    while (sent < bytes.length) {
      const n = sendFds(this.fd, bytes.subarray(sent), sent === 0 ? fds : []);
      if (n < 0) waitReadable(this.fd, 1);
      else sent += n;
    }
  }

  /** The next message from the server; throws after `timeoutMs` or at EOF. */
  receive(timeoutMs = 5000): Received {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buffer.length >= 16) {
        const size = le(this.buffer, 4, 4);
        if (this.buffer.length >= size) {
          const m = this.buffer.slice(0, size);
          this.buffer = this.buffer.slice(size);
          const fds = this.pendingFds;
          this.pendingFds = [];
          return { id: le(m, 0, 2), command: le(m, 2, 2), size, flags: le(m, 8, 4), error: le(m, 12, 4), payload: m.subarray(16), fds };
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || !waitReadable(this.fd, left)) throw new Error("no message from the server in time");
      const chunk = new Uint8Array(1 << 21);
      const r = recvFds(this.fd, chunk, 16);
      if (r === null) continue;
      if (r.bytes === 0) throw new Error("EOF");
      this.pendingFds.push(...r.fds);
      const joined = new Uint8Array(this.buffer.length + r.bytes);
      joined.set(this.buffer);
      joined.set(chunk.subarray(0, r.bytes), this.buffer.length);
      this.buffer = joined;
    }
  }

  /** Whether the server closed the connection (reads to EOF within `timeoutMs`). */
  closedByServer(timeoutMs = 5000): boolean {
    const deadline = Date.now() + timeoutMs;
    const chunk = new Uint8Array(65536);
    while (Date.now() < deadline) {
      if (!waitReadable(this.fd, Math.max(1, deadline - Date.now()))) return false;
      const r = recvFds(this.fd, chunk, 16);
      if (r && r.bytes === 0) return true;
      r?.fds.forEach((fd) => closeSync(fd));
    }
    return false;
  }

  /** Sends a command and returns its reply (which must carry the same id and command). */
  request(command: number, payload?: Uint8Array, fds: readonly number[] = [], flags = 0): Received {
    const id = this.nextId++ & 0xffff;
    this.send(message(id, command, payload, flags), fds);
    const reply = this.receive();
    if (reply.id !== id || reply.command !== command || (reply.flags & 0xf) !== REPLY) {
      throw new Error(`unexpected message id=${reply.id} command=${reply.command} flags=${reply.flags} for request id=${id} command=${command}`);
    }
    return reply;
  }

  /** A request that must succeed. */
  ok(command: number, payload?: Uint8Array, fds: readonly number[] = []): Received {
    const reply = this.request(command, payload, fds);
    if (reply.flags & ERROR) throw new Error(`command ${command} failed with errno ${reply.error}`);
    return reply;
  }

  /** The errno of a request that must fail. */
  errno(command: number, payload?: Uint8Array, fds: readonly number[] = []): number {
    const reply = this.request(command, payload, fds);
    if (!(reply.flags & ERROR)) throw new Error(`command ${command} succeeded, an error was expected`);
    if (reply.size !== 16) throw new Error(`error reply of ${reply.size} bytes, only the header was expected`);
    return reply.error;
  }

  negotiate(json = '{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576}}'): Received {
    return this.ok(CMD.VERSION, versionPayload(0, 1, json));
  }

  read(region: number, offset: number, count: number): Uint8Array {
    return this.ok(CMD.REGION_READ, regionReadRequest(region, offset, count)).payload.slice(16);
  }

  read32(region: number, offset: number): number {
    return le(this.read(region, offset, 4), 0, 4);
  }

  write(region: number, offset: number, data: Uint8Array): void {
    this.ok(CMD.REGION_WRITE, regionWriteRequest(region, offset, data));
  }

  write32(region: number, offset: number, value: number): void {
    this.write(region, offset, dword(value));
  }

  close(): void {
    for (const fd of this.pendingFds) closeSync(fd);
    closeSync(this.fd);
  }
}
