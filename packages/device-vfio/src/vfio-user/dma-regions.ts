// The guest memory the client has DMA_MAP'ed, and the server's DMA_READ/DMA_WRITE requests served from it. Every
// request is checked against one mapped region (address, length, direction) before a byte moves.
import { constants } from "node:os";
import type { VfioDmaRegion } from "../backend/backend.js";
import { VfioDecodeError } from "../uapi/errors.js";
import type { CommandOutcome } from "./connection.js";
import { concat, VfioUserDmaAccess } from "./protocol.js";

const { EFAULT, EINVAL, EPERM } = constants.errno;

export class DmaRegionTable {
  private regions: VfioDmaRegion[] = [];

  get count(): number {
    return this.regions.length;
  }

  /** The mapped region overlapping [iova, iova + size), if any. */
  overlapping(iova: number, size: number): VfioDmaRegion | undefined {
    return this.regions.find((region) => iova < region.iova + region.size && region.iova < iova + size);
  }

  exact(iova: number, size: number): VfioDmaRegion | undefined {
    return this.regions.find((region) => region.iova === iova && region.size === size);
  }

  add(region: VfioDmaRegion): void {
    this.regions.push(region);
  }

  remove(region: VfioDmaRegion): void {
    this.regions = this.regions.filter((candidate) => candidate !== region);
  }

  clear(): void {
    this.regions = [];
  }

  /** VFIO_USER_DMA_READ: `maxCount` is the max_data_xfer_size this client announced. */
  serveRead(payload: Uint8Array, maxCount: number): CommandOutcome {
    const request = this.decodeAccess(payload);
    if ("errno" in request) return request;
    if (payload.length !== VfioUserDmaAccess.size || request.count > maxCount) return { errno: EINVAL };
    const region = this.containing(request.address, request.count);
    if (!region) return { errno: EFAULT };
    if (!region.readable) return { errno: EPERM };
    const start = request.address - region.iova;
    return { payload: concat(VfioUserDmaAccess.encode(request), region.bytes.slice(start, start + request.count)) };
  }

  /** VFIO_USER_DMA_WRITE: the data after the header must be exactly `count` bytes. */
  serveWrite(payload: Uint8Array, maxCount: number): CommandOutcome {
    const request = this.decodeAccess(payload);
    if ("errno" in request) return request;
    if (payload.length - VfioUserDmaAccess.size !== request.count || request.count > maxCount) return { errno: EINVAL };
    const region = this.containing(request.address, request.count);
    if (!region) return { errno: EFAULT };
    if (!region.writable) return { errno: EPERM };
    region.bytes.set(payload.subarray(VfioUserDmaAccess.size), request.address - region.iova);
    return { payload: VfioUserDmaAccess.encode(request) };
  }

  private decodeAccess(payload: Uint8Array): { address: number; count: number } | { errno: number } {
    try {
      return VfioUserDmaAccess.decode(payload);
    } catch (error) {
      if (error instanceof VfioDecodeError) return { errno: payload.length < VfioUserDmaAccess.size ? EINVAL : EFAULT };
      throw error;
    }
  }

  /** The one region holding all of [address, address + count). */
  private containing(address: number, count: number): VfioDmaRegion | undefined {
    return this.regions.find((region) => address >= region.iova && address - region.iova <= region.size - count && count <= region.size);
  }
}
