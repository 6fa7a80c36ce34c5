/*
 * A minimal modern virtio-pci driver run under KVM against the device models: finds virtio-rng and virtio-blk on
 * bus 0, negotiates VERSION_1, sets up one 8-entry split queue per device and checks that
 *  - rng fills a buffer (doorbell through a KVM ioeventfd, completion polled in the used ring);
 *  - after the guest moves rng's BAR1, the old doorbell no longer notifies and the new one does;
 *  - an MSI-X vector programmed by the guest is delivered to the LAPIC (vector 0x40);
 *  - blk reads sector 0 (a host-written pattern), writes sector 1, flushes, and returns the serial by GET_ID;
 *  - a read past the end of the disk completes with IOERR.
 * Prints one line per step; the exit status names the first failing step (0 = all passed).
 */
#include "guest.h"

#define QSZ 8
#define VIRTIO_VENDOR 0x1af4
#define MOVED_BAR1 0xd8000000UL

struct desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
} __attribute__((packed));

struct vring {
	struct desc d[QSZ];
	u16 avail[2 + QSZ + 1];
	u8 pad[4096 - 16 * QSZ - 2 * (3 + QSZ)];
	u16 used_hdr[2];
	u32 used[2 * QSZ];
	u16 avail_event;
} __attribute__((aligned(4096)));

struct vdev {
	u8 slot;
	u64 common, notify, isr, devcfg;
	u32 mult;
	u8 msix_cap;
	u16 notify_off;
	u16 avail_idx;
	u16 used_seen;
	struct vring *ring;
};

static struct vring rng_ring, blk_ring;
static u8 rng_buf[64] __attribute__((aligned(64)));
static u8 blk_hdr[16] __attribute__((aligned(16)));
static u8 blk_data[1024] __attribute__((aligned(512)));
static u8 blk_status;
static volatile u32 msix_hits;

static u32 cfg(u8 slot, u16 off, int size) { return pci_cf8_read(0, slot, 0, off, size); }

static u64 bar_address(u8 slot, u8 bar) {
	u32 lo = cfg(slot, 0x10 + 4 * bar, 4);
	if (lo & 1) return lo & ~3u;
	u64 a = lo & ~0xfu;
	if (((lo >> 1) & 3) == 2) a |= (u64)cfg(slot, 0x14 + 4 * bar, 4) << 32;
	return a;
}

static int find(u16 device_id, struct vdev *d) {
	for (u8 slot = 0; slot < 32; slot++) {
		if (cfg(slot, 0, 4) != ((u32)device_id << 16 | VIRTIO_VENDOR)) continue;
		d->slot = slot;
		for (u8 at = cfg(slot, 0x34, 1); at; at = cfg(slot, at + 1, 1)) {
			u8 id = cfg(slot, at, 1);
			if (id == 0x11) d->msix_cap = at;
			if (id != 0x09) continue;
			u64 base = bar_address(slot, cfg(slot, at + 4, 1)) + cfg(slot, at + 8, 4);
			switch (cfg(slot, at + 3, 1)) {
			case 1: d->common = base; break;
			case 2: d->notify = base; d->mult = cfg(slot, at + 16, 4); break;
			case 3: d->isr = base; break;
			case 4: d->devcfg = base; break;
			}
		}
		return d->common && d->notify && d->isr;
	}
	return 0;
}

static void write_addr(u64 reg, u64 v) {
	mmio_write32(reg, (u32)v);
	mmio_write32(reg + 4, (u32)(v >> 32));
}

/* Status, features (VERSION_1 only), queue 0 with `vector`, DRIVER_OK. */
static int setup(struct vdev *d, struct vring *r, u16 vector) {
	u64 c = d->common;
	memset(r, 0, sizeof(*r));
	d->ring = r;
	d->avail_idx = d->used_seen = 0;
	mmio_write8(c + 0x14, 0);
	mmio_write8(c + 0x14, 1);
	mmio_write8(c + 0x14, 3);
	mmio_write32(c + 0x08, 0);
	mmio_write32(c + 0x0c, 0);
	mmio_write32(c + 0x08, 1);
	mmio_write32(c + 0x0c, 1);
	mmio_write8(c + 0x14, 0x0b);
	if (!(mmio_read8(c + 0x14) & 0x08)) return 0;
	mmio_write16(c + 0x16, 0);
	mmio_write16(c + 0x18, QSZ);
	if (mmio_read16(c + 0x18) != QSZ) return 0;
	write_addr(c + 0x20, (u64)r->d);
	write_addr(c + 0x28, (u64)r->avail);
	write_addr(c + 0x30, (u64)r->used_hdr);
	mmio_write16(c + 0x1a, vector);
	if (mmio_read16(c + 0x1a) != vector) return 0;
	d->notify_off = mmio_read16(c + 0x1e);
	mmio_write16(c + 0x1c, 1);
	mmio_write8(c + 0x14, 0x0f);
	return mmio_read8(c + 0x14) == 0x0f;
}

/* Chains descriptors 0..n-1 and makes the chain available (head 0). */
static void post(struct vdev *d, int n, const u64 *addr, const u32 *len, const u16 *write) {
	for (int i = 0; i < n; i++) {
		d->ring->d[i].addr = addr[i];
		d->ring->d[i].len = len[i];
		d->ring->d[i].flags = (write[i] ? 2 : 0) | (i < n - 1 ? 1 : 0);
		d->ring->d[i].next = i + 1;
	}
	d->ring->avail[2 + d->avail_idx % QSZ] = 0;
	__asm__ volatile("" ::: "memory");
	d->avail_idx++;
	((volatile u16 *)d->ring->avail)[1] = d->avail_idx;
}

static void kick(struct vdev *d, u64 notify_base) { mmio_write16(notify_base + (u64)d->notify_off * d->mult, 0); }

/* Waits (bounded) for the next used element; returns its length or -1. */
static long wait_used(struct vdev *d, u64 cycles) {
	u64 end = rdtsc() + cycles;
	volatile u16 *idx = &d->ring->used_hdr[1];
	while (*idx == d->used_seen) {
		if (rdtsc() > end) return -1;
		cpu_relax();
	}
	u32 len = ((volatile u32 *)d->ring->used)[2 * (d->used_seen % QSZ) + 1];
	d->used_seen++;
	return len;
}

#define LONG_WAIT 20000000000UL
#define SHORT_WAIT 300000000UL

static void on_msix(struct frame *f) {
	(void)f;
	msix_hits++;
	lapic_eoi();
}

static int blk_request(struct vdev *blk, u32 type, u64 sector, u32 len, int device_writes) {
	*(u32 *)blk_hdr = type;
	*(u32 *)(blk_hdr + 4) = 0;
	*(u64 *)(blk_hdr + 8) = sector;
	blk_status = 0xff;
	u64 addr[3] = { (u64)blk_hdr, (u64)blk_data, (u64)&blk_status };
	u32 lens[3] = { 16, len, 1 };
	u16 wr[3] = { 0, (u16)device_writes, 1 };
	if (len) {
		post(blk, 3, addr, lens, wr);
	} else {
		u64 a2[2] = { addr[0], addr[2] };
		u32 l2[2] = { 16, 1 };
		u16 w2[2] = { 0, 1 };
		post(blk, 2, a2, l2, w2);
	}
	kick(blk, blk->notify);
	if (wait_used(blk, LONG_WAIT) < 0) return -1;
	return blk_status;
}

int main(void) {
	struct vdev rng = {0}, blk = {0};
	if (!find(0x1044, &rng)) { printf("FAIL rng not found\n"); return 10; }
	if (!find(0x1042, &blk)) { printf("FAIL blk not found\n"); return 11; }
	printf("rng at 00:%02x.0 common %lx notify %lx mult %u; blk at 00:%02x.0\n", rng.slot, rng.common, rng.notify, rng.mult, blk.slot);

	/* MSI-X: vector 1 of rng -> LAPIC vector 0x40 (the table is in the BAR the capability names). */
	idt_init();
	idt_set_handler(0x40, on_msix);
	lapic_enable();
	u32 table = cfg(rng.slot, rng.msix_cap + 4, 4);
	u64 entry = bar_address(rng.slot, table & 7) + (table & ~7u) + 16 * 1;
	mmio_write32(entry + 0, (u32)msi_address(lapic_id()));
	mmio_write32(entry + 4, 0);
	mmio_write32(entry + 8, msi_data(0x40));
	mmio_write32(entry + 12, 0);
	pci_cf8_write(0, rng.slot, 0, rng.msix_cap + 2, 2, 0x8000);

	if (!setup(&rng, &rng_ring, 1)) { printf("FAIL rng setup\n"); return 20; }
	u64 a = (u64)rng_buf; u32 l = sizeof rng_buf; u16 w = 1;
	post(&rng, 1, &a, &l, &w);
	kick(&rng, rng.notify);
	long got = wait_used(&rng, LONG_WAIT);
	int nonzero = 0;
	for (u32 i = 0; i < sizeof rng_buf; i++) nonzero |= rng_buf[i];
	if (got != 64 || !nonzero) { printf("FAIL rng used len %ld\n", got); return 21; }
	printf("ok rng: 64 random bytes\n");

	for (int spins = 0; !msix_hits && spins < 1000; spins++) sti_hlt();
	cli();
	if (!msix_hits) { printf("FAIL no MSI-X interrupt\n"); return 22; }
	printf("ok rng: MSI-X vector 0x40 delivered (%u)\n", msix_hits);

	/* Move BAR1 with memory decoding on; the doorbell must follow it. */
	u64 old_bar = bar_address(rng.slot, 1);
	u64 old_notify = rng.notify;
	pci_cf8_write(0, rng.slot, 0, 0x14, 4, (u32)MOVED_BAR1);
	if (bar_address(rng.slot, 1) != MOVED_BAR1) { printf("FAIL BAR1 did not move\n"); return 30; }
	u64 new_notify = MOVED_BAR1 + (old_notify - old_bar);
	memset(rng_buf, 0, sizeof rng_buf);
	post(&rng, 1, &a, &l, &w);
	kick(&rng, old_notify);
	if (wait_used(&rng, SHORT_WAIT) >= 0) { printf("FAIL stale doorbell at %lx still notifies\n", old_notify); return 31; }
	kick(&rng, new_notify);
	if (wait_used(&rng, LONG_WAIT) != 64) { printf("FAIL no completion via the moved doorbell\n"); return 32; }
	printf("ok rng: doorbell moved from %lx to %lx, old one dead\n", old_notify, new_notify);

	/* virtio-blk: polled (queue vector NO_VECTOR, MSI-X off). */
	if (!setup(&blk, &blk_ring, 0xffff)) { printf("FAIL blk setup\n"); return 40; }
	u32 capacity = mmio_read32(blk.devcfg);
	if (capacity != 16) { printf("FAIL blk capacity %u\n", capacity); return 41; }
	if (blk_request(&blk, 0, 0, 512, 1) != 0) { printf("FAIL blk read status %u\n", blk_status); return 42; }
	for (u32 i = 0; i < 512; i++) {
		if (blk_data[i] != (u8)(i * 13 + 7)) { printf("FAIL blk data[%u] = %x\n", i, blk_data[i]); return 43; }
	}
	printf("ok blk: sector 0 read\n");
	for (u32 i = 0; i < 512; i++) blk_data[i] = (u8)(i ^ 0xa5);
	if (blk_request(&blk, 1, 1, 512, 0) != 0) { printf("FAIL blk write status %u\n", blk_status); return 44; }
	if (blk_request(&blk, 4, 0, 0, 0) != 0) { printf("FAIL blk flush status %u\n", blk_status); return 45; }
	printf("ok blk: sector 1 written and flushed\n");
	memset(blk_data, 0, 32);
	if (blk_request(&blk, 8, 0, 20, 1) != 0 || memcmp(blk_data, "vmm-kvm-disk", 13) != 0) { printf("FAIL blk get-id\n"); return 46; }
	printf("ok blk: serial %s\n", (const char *)blk_data);
	if (blk_request(&blk, 0, 16, 512, 1) != 1) { printf("FAIL blk read past the end: status %u\n", blk_status); return 47; }
	printf("ok blk: read past the end -> IOERR\n");
	return 0;
}
