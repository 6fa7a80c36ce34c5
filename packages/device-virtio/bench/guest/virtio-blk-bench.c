/*
 * virtio-blk throughput driver for the guest-driven benchmark (and its KVM smoke test). It finds the modern
 * virtio-blk function, negotiates VERSION_1 only, sets up queue 0 with QSZ entries and NO interrupts (vector
 * NO_VECTOR and the avail ring's NO_INTERRUPT flag): completions are found by polling the used ring, because on
 * this project's emulated KVM an interrupt is taken only ~1,000 instructions after `sti`, which would dwarf the
 * request cost. Each in-flight slot owns three descriptors (header, data, status) and fixed buffers; the guest
 * never reads the data (guest code is slow here: the VMM moves the bytes), only the status byte.
 *
 * Commands arrive on COM1, one per line:  "<s|r> <block bytes> <queue depth> <requests>"  or  "q" (exit 0).
 * For each the guest prints "start", keeps <queue depth> reads in flight (sequential or random block offsets)
 * until <requests> have completed, then prints "done <ok> <errors>".
 */
#include "guest.h"

#define QSZ 128
#define MAX_DEPTH (QSZ / 3)
#define MAX_BLOCK 65536
#define NO_VECTOR 0xffff
#define AVAIL_F_NO_INTERRUPT 1

/* Fixed guest-physical areas above the program (identity mapped, zero at boot; never in .bss so the runtime does
 * not spend emulated instructions clearing them). */
#define RING_BASE 0x800000UL
#define DESC (RING_BASE)
#define AVAIL (RING_BASE + 0x800)
#define USED (RING_BASE + 0x1000)
#define HDRS (RING_BASE + 0x10000)
#define DATA 0x1000000UL

struct desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
} __attribute__((packed));

static volatile struct desc *const desc = (volatile struct desc *)DESC;
static volatile u16 *const avail = (volatile u16 *)AVAIL; /* flags, idx, ring[QSZ] */
static volatile u16 *const used_hdr = (volatile u16 *)USED; /* flags, idx */
static volatile u32 *const used_ring = (volatile u32 *)(USED + 4); /* (id, len) pairs */

static u64 common, notify_addr, devcfg;
static u16 avail_idx, used_seen;

static u32 cfg(u8 slot, u16 off, int size) { return pci_cf8_read(0, slot, 0, off, size); }

static u64 bar_address(u8 slot, u8 bar) {
	u32 lo = cfg(slot, 0x10 + 4 * bar, 4);
	u64 a = lo & ~0xfu;
	if (((lo >> 1) & 3) == 2) a |= (u64)cfg(slot, 0x14 + 4 * bar, 4) << 32;
	return a;
}

static int find_blk(void) {
	for (u8 slot = 0; slot < 32; slot++) {
		if (cfg(slot, 0, 4) != 0x10421af4u) continue;
		u32 mult = 0;
		u64 notify = 0;
		for (u8 at = cfg(slot, 0x34, 1); at; at = cfg(slot, at + 1, 1)) {
			if (cfg(slot, at, 1) != 0x09) continue;
			u64 base = bar_address(slot, cfg(slot, at + 4, 1)) + cfg(slot, at + 8, 4);
			switch (cfg(slot, at + 3, 1)) {
			case 1: common = base; break;
			case 2: notify = base; mult = cfg(slot, at + 16, 4); break;
			case 4: devcfg = base; break;
			}
		}
		if (!common || !notify || !devcfg) return 0;
		mmio_write16(common + 0x16, 0);
		notify_addr = notify + (u64)mmio_read16(common + 0x1e) * mult;
		return 1;
	}
	return 0;
}

static void write_addr(u64 reg, u64 v) {
	mmio_write32(reg, (u32)v);
	mmio_write32(reg + 4, (u32)(v >> 32));
}

static int setup(void) {
	u64 c = common;
	memset((void *)RING_BASE, 0, 0x2000);
	mmio_write8(c + 0x14, 0);
	mmio_write8(c + 0x14, 1);
	mmio_write8(c + 0x14, 3);
	mmio_write32(c + 0x08, 0);
	mmio_write32(c + 0x0c, 0);
	mmio_write32(c + 0x08, 1);
	mmio_write32(c + 0x0c, 1); /* VERSION_1 only: no EVENT_IDX, so NO_INTERRUPT governs */
	mmio_write8(c + 0x14, 0x0b);
	if (!(mmio_read8(c + 0x14) & 0x08)) return 0;
	mmio_write16(c + 0x16, 0);
	mmio_write16(c + 0x18, QSZ);
	if (mmio_read16(c + 0x18) != QSZ) return 0;
	write_addr(c + 0x20, DESC);
	write_addr(c + 0x28, AVAIL);
	write_addr(c + 0x30, USED);
	mmio_write16(c + 0x1a, NO_VECTOR);
	avail[0] = AVAIL_F_NO_INTERRUPT;
	mmio_write16(c + 0x1c, 1);
	mmio_write8(c + 0x14, 0x0f);
	return mmio_read8(c + 0x14) == 0x0f;
}

/* Slot s: descriptors 3s (header), 3s+1 (data, device-writable), 3s+2 (status, device-writable). */
static void prepare_slots(u32 depth, u32 block) {
	for (u32 s = 0; s < depth; s++) {
		u64 hdr = HDRS + 32 * s;
		*(volatile u32 *)hdr = 0; /* VIRTIO_BLK_T_IN */
		*(volatile u32 *)(hdr + 4) = 0;
		desc[3 * s] = (struct desc){ hdr, 16, 1, (u16)(3 * s + 1) };
		desc[3 * s + 1] = (struct desc){ DATA + (u64)s * block, block, 3, (u16)(3 * s + 2) };
		desc[3 * s + 2] = (struct desc){ hdr + 16, 1, 2, 0 };
	}
}

static u64 rng_state = 0x9e3779b97f4a7c15UL;
static u64 next_random(void) {
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void post(u32 slot, u64 sector) {
	u64 hdr = HDRS + 32 * slot;
	*(volatile u64 *)(hdr + 8) = sector;
	*(volatile u8 *)(hdr + 16) = 0xff;
	avail[2 + avail_idx % QSZ] = (u16)(3 * slot);
	__asm__ volatile("" ::: "memory");
	avail[1] = ++avail_idx;
}

static u32 read_number(const char **p) {
	u32 v = 0;
	while (**p == ' ') (*p)++;
	while (**p >= '0' && **p <= '9') v = v * 10 + (u32)(*(*p)++ - '0');
	return v;
}

static int read_line(char *buf, int size) {
	int n = 0;
	for (;;) {
		int c = serial_getc_nowait();
		if (c < 0) { cpu_relax(); continue; }
		if (c == '\r') continue;
		if (c == '\n') { buf[n] = 0; return n; }
		if (n < size - 1) buf[n++] = (char)c;
	}
}

/* Runs one case; returns the number of requests that completed with a status other than OK. */
static void run_case(int random, u32 block, u32 depth, u32 requests) {
	u64 capacity = (u64)mmio_read32(devcfg) | ((u64)mmio_read32(devcfg + 4) << 32);
	u64 blocks = capacity / (block / 512);
	u64 next_block = 0;
	u32 posted = 0, ok = 0, errors = 0;
	prepare_slots(depth, block);
	printf("start\n");
	for (u32 s = 0; s < depth && posted < requests; s++, posted++) {
		u64 b = random ? next_random() % blocks : next_block++ % blocks;
		post(s, b * (block / 512));
	}
	mmio_write16(notify_addr, 0);
	while (ok + errors < requests) {
		u16 idx = used_hdr[1];
		if (idx == used_seen) { cpu_relax(); continue; }
		int reposted = 0;
		while (used_seen != idx) {
			u32 head = used_ring[2 * (used_seen % QSZ)];
			used_seen++;
			u32 slot = head / 3;
			if (*(volatile u8 *)(HDRS + 32 * slot + 16) == 0) ok++;
			else errors++;
			if (posted < requests) {
				u64 b = random ? next_random() % blocks : next_block++ % blocks;
				post(slot, b * (block / 512));
				posted++;
				reposted = 1;
			}
		}
		if (reposted) mmio_write16(notify_addr, 0);
	}
	printf("done %u %u\n", ok, errors);
}

int main(void) {
	if (!find_blk()) { printf("FAIL virtio-blk (modern) not found\n"); return 10; }
	if (!setup()) { printf("FAIL virtio-blk queue setup\n"); return 11; }
	printf("ready qsz %u\n", QSZ);
	char line[64];
	for (;;) {
		read_line(line, sizeof line);
		if (line[0] == 'q') return 0;
		const char *p = line + 1;
		u32 block = read_number(&p), depth = read_number(&p), requests = read_number(&p);
		if ((line[0] != 's' && line[0] != 'r') || block < 512 || block > MAX_BLOCK || block % 512 || depth < 1 ||
		    depth > MAX_DEPTH || requests < 1) {
			printf("FAIL bad command '%s'\n", line);
			return 12;
		}
		run_case(line[0] == 'r', block, depth, requests);
	}
}
