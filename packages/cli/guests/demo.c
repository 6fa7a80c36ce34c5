/*
 * The README's demo guest: lists the PCI functions on bus 0, then drives virtio-rng and virtio-blk with a small
 * polled virtio 1.x driver (one 8-entry split queue each, no interrupts): 16 random bytes from the rng and
 * sector 0 of the disk. Exits 0 when both worked; 1 names the step that failed.
 */
#include "virtio.h"

#define QSZ 8

static u8 rng_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static u8 blk_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
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

/* Finds the device, negotiates VERSION_1 only, sets up queue 0 (polled: no MSI-X vector), DRIVER_OK. */
static int start(u16 device_id, struct virtio_pci *d, struct virtq *q, void *ring) {
	return virtio_pci_find(device_id, 0, d) && virtio_negotiate(d, VIRTIO_F_VERSION_1) &&
	       virtio_queue_setup(d, 0, q, ring, QSZ, VIRTIO_NO_VECTOR) && virtio_driver_ok(d);
}

/* Posts a chain of buffers, rings the doorbell, waits (bounded) for it to be used; returns the used length or -1. */
static long transfer(struct virtio_pci *d, struct virtq *q, const struct virtq_buf *bufs, u16 n) {
	virtq_add_chain(q, 0, bufs, n);
	virtio_notify(d, q);
	u32 len;
	return virtq_poll_used(q, 20000000000UL, &len) < 0 ? -1 : (long)len;
}

int main(void) {
	printf("PCI bus 0:\n");
	for (u8 slot = 0; slot < 32; slot++) {
		u32 id = cfg(slot, 0, 4);
		if (id == 0xffffffff) continue;
		printf("  00:%02x.0  %04x:%04x  class %06x  %s\n", slot, id & 0xffff, id >> 16, cfg(slot, 8, 4) >> 8, name_of(id));
	}

	struct virtio_pci rng, blk;
	struct virtq rngq, blkq;
	if (!start(VIRTIO_ID_RNG, &rng, &rngq, rng_ring)) { printf("demo: no usable virtio-rng (use --rng)\n"); return 1; }
	const struct virtq_buf rbuf[1] = { { (u64)random_bytes, sizeof random_bytes, 1 } };
	if (transfer(&rng, &rngq, rbuf, 1) != (long)sizeof random_bytes) { printf("demo: virtio-rng gave no bytes\n"); return 1; }
	printf("virtio-rng: ");
	for (u32 i = 0; i < sizeof random_bytes; i++) printf("%02x", random_bytes[i]);
	printf("\n");

	if (!start(VIRTIO_ID_BLK, &blk, &blkq, blk_ring)) { printf("demo: no usable virtio-blk (use -d IMAGE)\n"); return 1; }
	u32 sectors = mmio_read32(blk.devcfg);
	blk_header.type = 0; /* read */
	blk_header.sector = 0;
	blk_status = 0xff;
	const struct virtq_buf bbuf[3] = { { (u64)&blk_header, sizeof blk_header, 0 }, { (u64)sector, sizeof sector, 1 }, { (u64)&blk_status, 1, 1 } };
	if (transfer(&blk, &blkq, bbuf, 3) < 0 || blk_status != 0) { printf("demo: virtio-blk read failed (status %u)\n", blk_status); return 1; }
	u32 n = 0;
	while (n < 80 && sector[n] >= 0x20 && sector[n] < 0x7f) n++;
	sector[n] = 0;
	printf("virtio-blk: %u sectors; sector 0 says \"%s\"\n", sectors, (const char *)sector);
	return 0;
}
