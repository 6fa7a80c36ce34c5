/*
 * Two VMs linked by virtio-net over a host Unix socket. The MAC's last byte picks the role: 0x01 sends
 * "ping N" frames and expects "pong N" back; 0x02 answers each ping. Modern transport, VERSION_1 + MAC,
 * receive queue 0 with four 2 KiB buffers, transmit queue 1; completions are polled.
 */
#include "guest.h"

#define QSZ 8
#define ROUNDS 3
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
static u8 rx_bufs[4][2048] __attribute__((aligned(64)));
static u8 tx_buf[2048] __attribute__((aligned(64)));
static u64 common, notify, devcfg;
static u32 mult;

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

static struct queue rxq, txq;
static u8 mac[6];

static void post_rx(int i) {
	rxq.r->d[i].addr = (u64)rx_bufs[i];
	rxq.r->d[i].len = sizeof rx_bufs[i];
	rxq.r->d[i].flags = 2;
	make_available(&rxq, i);
}

static int send(const u8 *dst, const char *text) {
	memset(tx_buf, 0, HDR);
	u8 *eth = tx_buf + HDR;
	memcpy(eth, dst, 6);
	memcpy(eth + 6, mac, 6);
	eth[12] = 0x88;
	eth[13] = 0xb5;
	u32 n = strlen(text);
	memcpy(eth + 14, text, n + 1);
	u32 frame = 14 + n + 1 < 60 ? 60 : 14 + n + 1;
	txq.r->d[0].addr = (u64)tx_buf;
	txq.r->d[0].len = HDR + frame;
	txq.r->d[0].flags = 0;
	make_available(&txq, 0);
	u32 len;
	return next_used(&txq, &len) == 0;
}

/* Waits for a frame; copies its payload text and sender. */
static int receive(char *text, u8 *from) {
	u32 len;
	int head = next_used(&rxq, &len);
	if (head < 0 || head > 3 || len < HDR + 14) return 0;
	u8 *eth = rx_bufs[head] + HDR;
	if (eth[12] != 0x88 || eth[13] != 0xb5 || memcmp(eth, mac, 6) != 0) return 0;
	memcpy(from, eth + 6, 6);
	memcpy(text, eth + 14, 32);
	post_rx(head);
	return 1;
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
	int initiator = mac[5] == 1;
	printf("net mac ..:%02x %s, link status %u\n", mac[5], initiator ? "pings" : "answers", mmio_read16(devcfg + 6));

	char text[32], expect[32];
	u8 from[6];
	u8 peer[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x02 };
	for (int round = 0; round < ROUNDS; round++) {
		if (initiator) {
			memcpy(expect, "ping 0", 7);
			expect[5] = '0' + round;
			if (!send(peer, expect)) { printf("FAIL tx\n"); return 20; }
			if (!receive(text, from)) { printf("FAIL no pong %d\n", round); return 21; }
			expect[1] = 'o';
			if (memcmp(text, expect, 7) != 0) { printf("FAIL got '%s'\n", text); return 22; }
			printf("ok got '%s'\n", text);
		} else {
			if (!receive(text, from)) { printf("FAIL no ping %d\n", round); return 30; }
			printf("ok got '%s'\n", text);
			text[1] = 'o';
			if (!send(from, text)) { printf("FAIL tx\n"); return 31; }
		}
	}
	return 0;
}
