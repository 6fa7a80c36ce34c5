/*
 * The README's demo guest: lists the PCI functions on bus 0, then drives virtio-rng and virtio-blk with a small
 * polled virtio 1.x driver (one 8-entry split queue each, no interrupts): 16 random bytes from the rng and
 * sector 0 of the disk. Exits 0 when both worked; 1 names the step that failed.
 */
#include "guest.h"

#define QSZ 8
#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_ID_BLK 0x1042
#define VIRTIO_ID_RNG 0x1044
#define CAP_VENDOR 0x09
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
/* common configuration registers (virtio 1.x, 4.1.4.3) */
#define CC_DRIVER_FEATURE_SELECT 0x08
#define CC_DRIVER_FEATURE 0x0c
#define CC_STATUS 0x14
#define CC_QUEUE_SELECT 0x16
#define CC_QUEUE_SIZE 0x18
#define CC_QUEUE_MSIX_VECTOR 0x1a
#define CC_QUEUE_ENABLE 0x1c
#define CC_QUEUE_NOTIFY_OFF 0x1e
#define CC_QUEUE_DESC 0x20
#define CC_QUEUE_DRIVER 0x28
#define CC_QUEUE_DEVICE 0x30
#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

struct desc { u64 addr; u32 len; u16 flags; u16 next; };
struct avail { u16 flags, idx, ring[QSZ], used_event; };
struct used { u16 flags, idx; struct { u32 id, len; } ring[QSZ]; u16 avail_event; };

struct queue {
	struct desc desc[QSZ] __attribute__((aligned(16)));
	struct avail avail __attribute__((aligned(4)));
	struct used used __attribute__((aligned(8)));
};

struct vdev {
	u8 slot;
	u64 common, notify, devcfg;
	u32 notify_mult;
	u64 doorbell;
	u16 next_avail, seen_used;
	struct queue *q;
};

static struct queue rng_queue, blk_queue;
static u8 random_bytes[16];
static struct { u32 type, reserved; u64 sector; } blk_header;
static u8 sector[512] __attribute__((aligned(512)));
static u8 blk_status;

static u32 cfg(u8 slot, u16 off, int size) { return pci_cf8_read(0, slot, 0, off, size); }

static const char *name_of(u32 id) {
	switch (id) {
	case 0x29c08086: return "host bridge";
	case 0x10411af4: return "virtio-net";
	case 0x10421af4: return "virtio-blk";
	case 0x10431af4: return "virtio-console";
	case 0x10441af4: return "virtio-rng";
	case 0x11111234: return "VGA (VESA framebuffer)";
	case 0x00017e57: return "pci-testdev";
	default: return "";
	}
}

static u64 bar_address(u8 slot, u8 bar) {
	u32 lo = cfg(slot, 0x10 + 4 * bar, 4);
	if (lo & 1) return lo & ~3u;
	u64 a = lo & ~0xfu;
	if (((lo >> 1) & 3) == 2) a |= (u64)cfg(slot, 0x14 + 4 * bar, 4) << 32;
	return a;
}

/* Finds a modern virtio function and the BAR windows its vendor capabilities point at. */
static int find(u16 device_id, struct vdev *d) {
	for (u8 slot = 0; slot < 32; slot++) {
		if (cfg(slot, 0, 4) != ((u32)device_id << 16 | VIRTIO_VENDOR)) continue;
		d->slot = slot;
		for (u8 at = cfg(slot, 0x34, 1); at; at = cfg(slot, at + 1, 1)) {
			if (cfg(slot, at, 1) != CAP_VENDOR) continue;
			u64 base = bar_address(slot, cfg(slot, at + 4, 1)) + cfg(slot, at + 8, 4);
			u8 type = cfg(slot, at + 3, 1);
			if (type == 1) d->common = base;
			if (type == 2) { d->notify = base; d->notify_mult = cfg(slot, at + 16, 4); }
			if (type == 4) d->devcfg = base;
		}
		return d->common && d->notify;
	}
	return 0;
}

static void write64(u64 reg, u64 v) {
	mmio_write32(reg, (u32)v);
	mmio_write32(reg + 4, (u32)(v >> 32));
}

/* Reset, negotiate VERSION_1 only, set up queue 0 (polled: no MSI-X vector), DRIVER_OK. */
static int start(struct vdev *d, struct queue *q) {
	u64 c = d->common;
	d->q = q;
	mmio_write8(c + CC_STATUS, 0);
	mmio_write8(c + CC_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	mmio_write32(c + CC_DRIVER_FEATURE_SELECT, 0);
	mmio_write32(c + CC_DRIVER_FEATURE, 0);
	mmio_write32(c + CC_DRIVER_FEATURE_SELECT, 1);
	mmio_write32(c + CC_DRIVER_FEATURE, 1); /* VERSION_1 (feature bit 32) */
	mmio_write8(c + CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!(mmio_read8(c + CC_STATUS) & S_FEATURES_OK)) return 0;
	mmio_write16(c + CC_QUEUE_SELECT, 0);
	if (mmio_read16(c + CC_QUEUE_SIZE) < QSZ) return 0;
	mmio_write16(c + CC_QUEUE_SIZE, QSZ);
	write64(c + CC_QUEUE_DESC, (u64)q->desc);
	write64(c + CC_QUEUE_DRIVER, (u64)&q->avail);
	write64(c + CC_QUEUE_DEVICE, (u64)&q->used);
	mmio_write16(c + CC_QUEUE_MSIX_VECTOR, 0xffff);
	d->doorbell = d->notify + (u64)mmio_read16(c + CC_QUEUE_NOTIFY_OFF) * d->notify_mult;
	mmio_write16(c + CC_QUEUE_ENABLE, 1);
	mmio_write8(c + CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return mmio_read8(c + CC_STATUS) & S_DRIVER_OK;
}

/* Posts a chain of n buffers (writable ones flagged), rings the doorbell, waits (bounded) for it to be used. */
static long transfer(struct vdev *d, int n, void *const *buf, const u32 *len, const int *device_writes) {
	struct queue *q = d->q;
	for (int i = 0; i < n; i++) {
		q->desc[i].addr = (u64)buf[i];
		q->desc[i].len = len[i];
		q->desc[i].flags = (device_writes[i] ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0);
		q->desc[i].next = (u16)(i + 1);
	}
	q->avail.ring[d->next_avail % QSZ] = 0;
	__asm__ volatile("" ::: "memory");
	((volatile struct avail *)&q->avail)->idx = ++d->next_avail;
	mmio_write16(d->doorbell, 0);
	u64 deadline = rdtsc() + 20000000000UL;
	while (((volatile struct used *)&q->used)->idx == d->seen_used) {
		if (rdtsc() > deadline) return -1;
		cpu_relax();
	}
	return q->used.ring[d->seen_used++ % QSZ].len;
}

int main(void) {
	printf("PCI bus 0:\n");
	for (u8 slot = 0; slot < 32; slot++) {
		u32 id = cfg(slot, 0, 4);
		if (id == 0xffffffff) continue;
		printf("  00:%02x.0  %04x:%04x  class %06x  %s\n", slot, id & 0xffff, id >> 16, cfg(slot, 8, 4) >> 8, name_of(id));
	}

	struct vdev rng = {0}, blk = {0};
	if (!find(VIRTIO_ID_RNG, &rng) || !start(&rng, &rng_queue)) { printf("demo: no usable virtio-rng (use --rng)\n"); return 1; }
	void *rbuf[1] = { random_bytes };
	u32 rlen[1] = { sizeof random_bytes };
	int rw[1] = { 1 };
	if (transfer(&rng, 1, rbuf, rlen, rw) != (long)sizeof random_bytes) { printf("demo: virtio-rng gave no bytes\n"); return 1; }
	printf("virtio-rng: ");
	for (u32 i = 0; i < sizeof random_bytes; i++) printf("%02x", random_bytes[i]);
	printf("\n");

	if (!find(VIRTIO_ID_BLK, &blk) || !start(&blk, &blk_queue)) { printf("demo: no usable virtio-blk (use -d IMAGE)\n"); return 1; }
	u32 sectors = mmio_read32(blk.devcfg);
	blk_header.type = 0; /* read */
	blk_header.sector = 0;
	blk_status = 0xff;
	void *bbuf[3] = { &blk_header, sector, &blk_status };
	u32 blen[3] = { sizeof blk_header, sizeof sector, 1 };
	int bw[3] = { 0, 1, 1 };
	if (transfer(&blk, 3, bbuf, blen, bw) < 0 || blk_status != 0) { printf("demo: virtio-blk read failed (status %u)\n", blk_status); return 1; }
	u32 n = 0;
	while (n < 80 && sector[n] >= 0x20 && sector[n] < 0x7f) n++;
	sector[n] = 0;
	printf("virtio-blk: %u sectors; sector 0 says \"%s\"\n", sectors, (const char *)sector);
	return 0;
}
