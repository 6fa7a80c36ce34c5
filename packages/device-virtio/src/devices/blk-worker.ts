// virtio-blk's data-plane worker module: serves the request queue on its own thread with synchronous vectored I/O
// (preadv/pwritev through fs.readvSync/writevSync) straight between the image file and guest memory. The request
// rules are blk-request.ts's, the same as on the JS thread.
import { fdatasyncSync, readvSync, writeSync, writevSync } from "node:fs";
import type { GuestMemory, Logger } from "@vmm/core";
import { defineQueueWorker } from "../dataplane/api.js";
import { type ChainSegment, type DescriptorChain, scatter } from "../virtqueue/descriptor-chain.js";
import { type BlkDisk, BlkStatus, idBytes, parseBlkRequest, statusAddress } from "./blk-request.js";

/** What VirtioBlk hands its worker. */
export interface BlkWorkerData extends BlkDisk {
  /** The image's file descriptor (the JS thread keeps it open while the worker runs). */
  readonly fd: number;
  /** GET_ID's bytes. */
  readonly serial: Uint8Array;
}

/** Zeros for DISCARD / WRITE_ZEROES, never modified. */
const ZEROS = new Uint8Array(1024 * 1024);

/** The views of the request in progress: one array per thread, refilled for each request. */
const views: Uint8Array[] = [];

/** Live views of the guest buffers, in order (bounds-checked: a buffer outside RAM throws GuestMemoryError). */
function guestViews(memory: GuestMemory, data: readonly ChainSegment[]): Uint8Array[] {
  views.length = 0;
  for (const s of data) for (const v of memory.segments(s.addr, s.len)) views.push(v);
  return views;
}

/** The views past the first `done` bytes. */
function rest(views: Uint8Array[], done: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const v of views) {
    if (done >= v.length) {
      done -= v.length;
      continue;
    }
    out.push(done > 0 ? v.subarray(done) : v);
    done = 0;
  }
  return out;
}

/** preadv until every view is full (one call, as a rule); bytes past the end of the file read as 0. */
function readInto(fd: number, views: Uint8Array[], position: number, length: number): void {
  let done = 0;
  while (done < length) {
    const n = readvSync(fd, done === 0 ? views : rest(views, done), position + done);
    if (n === 0) {
      for (const v of rest(views, done)) v.fill(0);
      return;
    }
    done += n;
  }
}

function writeFrom(fd: number, views: Uint8Array[], position: number, length: number): void {
  let done = 0;
  while (done < length) done += writevSync(fd, done === 0 ? views : rest(views, done), position + done);
}

function serve(memory: GuestMemory, disk: BlkWorkerData, logger: Logger, chain: DescriptorChain): number {
  const statusAt = statusAddress(chain);
  if (statusAt === undefined) {
    logger.warn("virtio-blk: request without a status byte");
    return 0;
  }
  let status: number = BlkStatus.OK;
  let written = 0;
  try {
    const request = parseBlkRequest(memory, chain, disk);
    switch (request.kind) {
      case "done":
        if (request.why) logger.debug(`virtio-blk: ${request.why}`);
        if (request.error !== undefined) throw request.error;
        status = request.status;
        break;
      case "read":
        readInto(disk.fd, guestViews(memory, request.data), request.position, request.length);
        written = request.length;
        break;
      case "write":
        writeFrom(disk.fd, guestViews(memory, request.data), request.position, request.length);
        break;
      case "flush":
        fdatasyncSync(disk.fd);
        break;
      case "get-id":
        written = scatter(memory, request.data, 0, idBytes(disk.serial, request.length));
        break;
      case "zero":
        for (let at = request.start; at < request.end; ) at += writeSync(disk.fd, ZEROS, 0, Math.min(ZEROS.length, request.end - at), at);
        break;
    }
  } catch (e) {
    // A guest buffer outside RAM is the guest's fault; anything else is a host I/O error. Both end as IOERR.
    if (e instanceof Error && e.name === "GuestMemoryError") logger.warn(`virtio-blk: request ${chain.head}: ${e.message}`);
    else logger.error(`virtio-blk: I/O error: ${e instanceof Error ? e.message : String(e)}`);
    status = BlkStatus.IOERR;
  }
  try {
    memory.writeU8(statusAt, status);
  } catch {
    logger.warn(`virtio-blk: request ${chain.head}: status byte outside guest RAM`);
    return 0;
  }
  return (status === BlkStatus.OK ? written : 0) + 1;
}

export default defineQueueWorker(({ memory, data, logger }) => {
  const disk = data as BlkWorkerData;
  return { process: (chain) => serve(memory, disk, logger, chain) };
});
