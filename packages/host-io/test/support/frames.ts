// Ethernet/ARP/IPv4/ICMP frames for the tap tests.
export const ETH_ARP = 0x0806;
export const ETH_IPV4 = 0x0800;
export const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] as const;

export type Bytes = readonly number[];

export function ethernet(dst: Bytes, src: Bytes, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

/** An ARP request "who has `targetIp`? tell `senderIp`" from `mac`, broadcast. */
export function arpRequest(mac: Bytes, senderIp: Bytes, targetIp: Bytes): Uint8Array {
  const arp = new Uint8Array([0, 1, 8, 0, 6, 4, 0, 1, ...mac, ...senderIp, 0, 0, 0, 0, 0, 0, ...targetIp]);
  return ethernet(BROADCAST, mac, ETH_ARP, arp);
}

export interface Arp {
  op: number;
  senderMac: number[];
  senderIp: number[];
  targetMac: number[];
  targetIp: number[];
}

export function parseArp(frame: Uint8Array): Arp | undefined {
  if (frame.length < 42 || etherType(frame) !== ETH_ARP) return undefined;
  const a = frame.subarray(14);
  return {
    op: (a[6]! << 8) | a[7]!,
    senderMac: [...a.subarray(8, 14)],
    senderIp: [...a.subarray(14, 18)],
    targetMac: [...a.subarray(18, 24)],
    targetIp: [...a.subarray(24, 28)],
  };
}

export function etherType(frame: Uint8Array): number {
  return (frame[12]! << 8) | frame[13]!;
}

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An ICMP echo request from `src` to `dst` (IPv4, TTL 64) carrying `payload`. */
export function icmpEcho(dstMac: Bytes, srcMac: Bytes, src: Bytes, dst: Bytes, id: number, seq: number, payload: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(8 + payload.length);
  icmp[0] = 8;
  icmp[4] = id >> 8;
  icmp[5] = id & 0xff;
  icmp[6] = seq >> 8;
  icmp[7] = seq & 0xff;
  icmp.set(payload, 8);
  const c = checksum(icmp);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  const ip = new Uint8Array(20 + icmp.length);
  ip.set([0x45, 0, ip.length >> 8, ip.length & 0xff, 0, 1, 0x40, 0, 64, 1, 0, 0, ...src, ...dst]);
  const h = checksum(ip.subarray(0, 20));
  ip[10] = h >> 8;
  ip[11] = h & 0xff;
  ip.set(icmp, 20);
  return ethernet(dstMac, srcMac, ETH_IPV4, ip);
}

export interface IcmpEcho {
  type: number;
  src: number[];
  dst: number[];
  id: number;
  seq: number;
  payload: Uint8Array;
}

export function parseIcmpEcho(frame: Uint8Array): IcmpEcho | undefined {
  if (frame.length < 42 || etherType(frame) !== ETH_IPV4 || frame[23] !== 1) return undefined;
  const ihl = (frame[14]! & 0xf) * 4;
  const total = (frame[16]! << 8) | frame[17]!;
  const icmp = frame.subarray(14 + ihl, 14 + total);
  return {
    type: icmp[0]!,
    src: [...frame.subarray(26, 30)],
    dst: [...frame.subarray(30, 34)],
    id: (icmp[4]! << 8) | icmp[5]!,
    seq: (icmp[6]! << 8) | icmp[7]!,
    payload: icmp.subarray(8),
  };
}
