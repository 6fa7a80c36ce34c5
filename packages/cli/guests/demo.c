/*
 * The README's demo guest: lists the PCI functions on bus 0, then drives virtio-rng and virtio-blk with a small
 * polled virtio 1.x driver (one 8-entry split queue each, no interrupts): 16 random bytes from the rng and
 * sector 0 of the disk. Exits 0 when both worked; 1 names the step that failed.
 */
#include "virtio.h"

#define QSZ 8
/* How long a request may take, in TSC cycles. */
#define TIMEOUT 20000000000UL

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

int main(void) {
	printf("PCI bus 0:\n");
	for (u8 slot = 0; slot < 32; slot++) {
		u32 id = cfg(slot, 0, 4);
		if (id == 0xffffffff) continue;
		printf("  00:%02x.0  %04x:%04x  class %06x  %s\n", slot, id & 0xffff, id >> 16, cfg(slot, 8, 4) >> 8, name_of(id));
	}

	struct virtio_pci rng, blk;
	struct virtq rngq, blkq;
	if (!virtio_start_polled(VIRTIO_ID_RNG, &rng, &rngq, rng_ring, QSZ)) { printf("demo: no usable virtio-rng (use --rng)\n"); return 1; }
	const struct virtq_buf rbuf[1] = { { (u64)random_bytes, sizeof random_bytes, 1 } };
	if (virtio_transfer(&rng, &rngq, rbuf, 1, TIMEOUT) != (long)sizeof random_bytes) { printf("demo: virtio-rng gave no bytes\n"); return 1; }
	printf("virtio-rng: ");
	for (u32 i = 0; i < sizeof random_bytes; i++) printf("%02x", random_bytes[i]);
	printf("\n");

	if (!virtio_start_polled(VIRTIO_ID_BLK, &blk, &blkq, blk_ring, QSZ)) { printf("demo: no usable virtio-blk (use -d IMAGE)\n"); return 1; }
	u32 sectors = mmio_read32(blk.devcfg);
	blk_header.type = 0; /* read */
	blk_header.sector = 0;
	blk_status = 0xff;
	const struct virtq_buf bbuf[3] = { { (u64)&blk_header, sizeof blk_header, 0 }, { (u64)sector, sizeof sector, 1 }, { (u64)&blk_status, 1, 1 } };
	if (virtio_transfer(&blk, &blkq, bbuf, 3, TIMEOUT) < 0 || blk_status != 0) { printf("demo: virtio-blk read failed (status %u)\n", blk_status); return 1; }
	u32 n = 0;
	while (n < 80 && sector[n] >= 0x20 && sector[n] < 0x7f) n++;
	sector[n] = 0;
	printf("virtio-blk: %u sectors; sector 0 says \"%s\"\n", sectors, (const char *)sector);
	return 0;
}
