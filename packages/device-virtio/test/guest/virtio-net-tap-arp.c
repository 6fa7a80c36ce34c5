/*
 * A guest on a host tap (10.213.0.1/24 on the host side, inside a test's network namespace): resolves the
 * host with an ARP request from 10.213.0.2, then pings it (ICMP echo) and checks the echo reply. Modern
 * transport, VERSION_1 + MAC, receive queue 0 with four 2 KiB buffers, transmit queue 1; completions polled.
 * Frames that are not the expected answer (the kernel's own traffic) are skipped.
 */
#include "guest.h"

#define QSZ 8
#define HDR 12

struct desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
} __attribute__((packed));

struct vring {
	struct desc d[QSZ];
	u16 avail[3 + QSZ];
	u8 pad[4096 - 16 * QSZ - 2 * (3 + QSZ)];
	u16 used_hdr[2];
	u32 used[2 * QSZ];
	u16 avail_event;
} __attribute__((aligned(4096)));

struct queue {
	struct vring *r;
	u16 avail_idx, used_seen, notify_off;
};

static struct vring rx_ring, tx_ring;
static struct queue rxq, txq;
static u8 rx_bufs[4][2048] __attribute__((aligned(64)));
static u8 tx_buf[2048] __attribute__((aligned(64)));
static u64 common, notify, devcfg;
static u32 mult;
static u8 mac[6], host_mac[6];
static const u8 my_ip[4] = { 10, 213, 0, 2 }, host_ip[4] = { 10, 213, 0, 1 };

static u32 cfg(u8 slot, u16 off, int size) { return pci_cf8_read(0, slot, 0, off, size); }

static u64 bar_address(u8 slot, u8 bar) {
	u32 lo = cfg(slot, 0x10 + 4 * bar, 4);
	u64 a = lo & ~0xfu;
	if (((lo >> 1) & 3) == 2) a |= (u64)cfg(slot, 0x14 + 4 * bar, 4) << 32;
	return a;
}

static int find_net(void) {
	for (u8 slot = 0; slot < 32; slot++) {
		if (cfg(slot, 0, 4) != 0x10411af4) continue;
		for (u8 at = cfg(slot, 0x34, 1); at; at = cfg(slot, at + 1, 1)) {
			if (cfg(slot, at, 1) != 0x09) continue;
			u64 base = bar_address(slot, cfg(slot, at + 4, 1)) + cfg(slot, at + 8, 4);
			u8 type = cfg(slot, at + 3, 1);
			if (type == 1) common = base;
			if (type == 2) { notify = base; mult = cfg(slot, at + 16, 4); }
			if (type == 4) devcfg = base;
		}
		return common && notify && devcfg;
	}
	return 0;
}

static void setup_queue(u16 index, struct queue *q, struct vring *r) {
	memset(r, 0, sizeof(*r));
	q->r = r;
	mmio_write16(common + 0x16, index);
	mmio_write16(common + 0x18, QSZ);
	mmio_write32(common + 0x20, (u32)(u64)r->d);
	mmio_write32(common + 0x24, 0);
	mmio_write32(common + 0x28, (u32)(u64)r->avail);
	mmio_write32(common + 0x2c, 0);
	mmio_write32(common + 0x30, (u32)(u64)r->used_hdr);
	mmio_write32(common + 0x34, 0);
	q->notify_off = mmio_read16(common + 0x1e);
	mmio_write16(common + 0x1c, 1);
}

static void make_available(struct queue *q, u16 head) {
	q->r->avail[2 + q->avail_idx % QSZ] = head;
	__asm__ volatile("" ::: "memory");
	q->avail_idx++;
	((volatile u16 *)q->r->avail)[1] = q->avail_idx;
	mmio_write16(notify + (u64)q->notify_off * mult, 0);
}

/* Next used element (bounded wait): returns the head and its length, or -1. */
static int next_used(struct queue *q, u32 *len) {
	u64 end = rdtsc() + 30000000000UL;
	while (((volatile u16 *)q->r->used_hdr)[1] == q->used_seen) {
		if (rdtsc() > end) return -1;
		cpu_relax();
	}
	u32 slot = q->used_seen % QSZ;
	q->used_seen++;
	*len = ((volatile u32 *)q->r->used)[2 * slot + 1];
	return ((volatile u32 *)q->r->used)[2 * slot];
}

static void post_rx(int i) {
	rxq.r->d[i].addr = (u64)rx_bufs[i];
	rxq.r->d[i].len = sizeof rx_bufs[i];
	rxq.r->d[i].flags = 2;
	make_available(&rxq, i);
}

/* Sends the frame built at tx_buf + HDR (zero header, padded to 60 bytes). */
static int send(u32 frame) {
	memset(tx_buf, 0, HDR);
	if (frame < 60) { memset(tx_buf + HDR + frame, 0, 60 - frame); frame = 60; }
	txq.r->d[0].addr = (u64)tx_buf;
	txq.r->d[0].len = HDR + frame;
	txq.r->d[0].flags = 0;
	make_available(&txq, 0);
	u32 len;
	return next_used(&txq, &len) == 0;
}

static u16 be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static void put16(u8 *p, u16 v) { p[0] = v >> 8; p[1] = v & 0xff; }

static u16 checksum(const u8 *p, u32 n) {
	u32 sum = 0;
	for (u32 i = 0; i + 1 < n; i += 2) sum += be16(p + i);
	if (n & 1) sum += (u32)p[n - 1] << 8;
	while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
	return (u16)~sum;
}

/* Waits for a frame that `match` accepts (others are skipped and their buffers reposted); returns 1 on a match. */
static int receive(int (*match)(const u8 *eth, u32 len)) {
	for (int tries = 0; tries < 64; tries++) {
		u32 len;
		int head = next_used(&rxq, &len);
		if (head < 0 || head > 3) return 0;
		int ok = len >= HDR + 14 && match(rx_bufs[head] + HDR, len - HDR);
		post_rx(head);
		if (ok) return 1;
	}
	return 0;
}

static int is_arp_reply(const u8 *eth, u32 len) {
	if (len < 42 || be16(eth + 12) != 0x0806 || be16(eth + 20) != 2) return 0;
	if (memcmp(eth + 28, host_ip, 4) != 0 || memcmp(eth + 32, mac, 6) != 0 || memcmp(eth + 38, my_ip, 4) != 0) return 0;
	memcpy(host_mac, eth + 22, 6);
	return 1;
}

static int is_echo_reply(const u8 *eth, u32 len) {
	if (len < 42 || be16(eth + 12) != 0x0800 || eth[23] != 1 || memcmp(eth + 26, host_ip, 4) != 0) return 0;
	const u8 *icmp = eth + 14 + (eth[14] & 0xf) * 4;
	return icmp[0] == 0 && be16(icmp + 4) == 0x7a7a && be16(icmp + 6) == 1 && memcmp(icmp + 8, "vmm-tap", 8) == 0;
}

int main(void) {
	if (!find_net()) { printf("FAIL virtio-net not found\n"); return 10; }
	mmio_write8(common + 0x14, 0);
	mmio_write8(common + 0x14, 3);
	mmio_write32(common + 0x08, 0);
	mmio_write32(common + 0x0c, 1u << 5); /* MAC */
	mmio_write32(common + 0x08, 1);
	mmio_write32(common + 0x0c, 1); /* VERSION_1 */
	mmio_write8(common + 0x14, 0x0b);
	if (!(mmio_read8(common + 0x14) & 0x08)) { printf("FAIL features\n"); return 11; }
	setup_queue(0, &rxq, &rx_ring);
	setup_queue(1, &txq, &tx_ring);
	mmio_write8(common + 0x14, 0x0f);
	for (int i = 0; i < 6; i++) mac[i] = mmio_read8(devcfg + i);
	for (int i = 0; i < 4; i++) post_rx(i);

	/* ARP: who has 10.213.0.1? tell 10.213.0.2 */
	u8 *eth = tx_buf + HDR;
	memset(eth, 0xff, 6);
	memcpy(eth + 6, mac, 6);
	put16(eth + 12, 0x0806);
	const u8 arp_head[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	memcpy(eth + 14, arp_head, 8);
	memcpy(eth + 22, mac, 6);
	memcpy(eth + 28, my_ip, 4);
	memset(eth + 32, 0, 6);
	memcpy(eth + 38, host_ip, 4);
	if (!send(42)) { printf("FAIL arp tx\n"); return 20; }
	if (!receive(is_arp_reply)) { printf("FAIL no arp reply\n"); return 21; }
	printf("ok arp: 10.213.0.1 is-at %02x:%02x:%02x:%02x:%02x:%02x\n", host_mac[0], host_mac[1], host_mac[2], host_mac[3],
	       host_mac[4], host_mac[5]);

	/* ICMP echo request, id 0x7a7a, sequence 1, payload "vmm-tap\0" */
	memcpy(eth, host_mac, 6);
	put16(eth + 12, 0x0800);
	u8 *ip = eth + 14, *icmp = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, 20 + 16);
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, my_ip, 4);
	memcpy(ip + 16, host_ip, 4);
	put16(ip + 10, checksum(ip, 20));
	memset(icmp, 0, 8);
	icmp[0] = 8;
	put16(icmp + 4, 0x7a7a);
	put16(icmp + 6, 1);
	memcpy(icmp + 8, "vmm-tap", 8);
	put16(icmp + 2, checksum(icmp, 16));
	if (!send(14 + 20 + 16)) { printf("FAIL echo tx\n"); return 30; }
	if (!receive(is_echo_reply)) { printf("FAIL no echo reply\n"); return 31; }
	printf("ok ping: echo reply from 10.213.0.1\n");
	return 0;
}
