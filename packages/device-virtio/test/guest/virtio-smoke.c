/*
 * A minimal modern virtio-pci driver run under KVM against the device models: finds virtio-rng and virtio-blk on
 * bus 0, negotiates VERSION_1, sets up one 8-entry split queue per device and checks that
 *  - rng fills a buffer (doorbell through a KVM ioeventfd, completion polled in the used ring);
 *  - after the guest moves rng's BAR1, the old doorbell no longer notifies and the new one does;
 *  - with Bus Master Enable clear a doorbell is not served (no used entry, buffer untouched) until it is set;
 *  - an MSI-X vector programmed by the guest is delivered to the LAPIC (vector 0x40);
 *  - blk reads sector 0 (a host-written pattern), writes sector 1, flushes, and returns the serial by GET_ID;
 *  - a read past the end of the disk completes with IOERR.
 * Prints one line per step; the exit status names the first failing step (0 = all passed).
 */
#include "virtio.h"

#define QSZ 8
#define MOVED_BAR1 0xd8000000UL

static u8 rng_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static u8 blk_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static struct virtq rngq, blkq;
static u8 rng_buf[64] __attribute__((aligned(64)));
static u8 blk_hdr[16] __attribute__((aligned(16)));
static u8 blk_data[1024] __attribute__((aligned(512)));
static u8 blk_status;
static volatile u32 msix_hits;

/* VERSION_1 only, queue 0 with `vector`, DRIVER_OK. */
static int setup(struct virtio_pci *d, struct virtq *q, void *ring, u16 vector) {
	return virtio_negotiate(d, VIRTIO_F_VERSION_1) && virtio_queue_setup(d, 0, q, ring, QSZ, vector) && virtio_driver_ok(d);
}

/* Waits (bounded) for the next used element; returns its length or -1. */
static long wait_used(struct virtq *q, u64 cycles) {
	u32 len;
	return virtq_poll_used(q, cycles, &len) < 0 ? -1 : (long)len;
}

#define LONG_WAIT 20000000000UL
#define SHORT_WAIT 300000000UL

static void on_msix(struct frame *f) {
	(void)f;
	msix_hits++;
	lapic_eoi();
}

static int blk_request(struct virtio_pci *blk, u32 type, u64 sector, u32 len, int device_writes) {
	*(u32 *)blk_hdr = type;
	*(u32 *)(blk_hdr + 4) = 0;
	*(u64 *)(blk_hdr + 8) = sector;
	blk_status = 0xff;
	struct virtq_buf bufs[3] = { { (u64)blk_hdr, 16, 0 }, { (u64)blk_data, len, (u32)device_writes }, { (u64)&blk_status, 1, 1 } };
	if (!len) bufs[1] = bufs[2]; /* no data buffer: header and status only */
	virtq_add_chain(&blkq, 0, bufs, len ? 3 : 2);
	virtio_notify(blk, &blkq);
	if (wait_used(&blkq, LONG_WAIT) < 0) return -1;
	return blk_status;
}

/* Bus Master Enable (command bit 2): without it the device may not touch our memory (Linux: pci_set_master). */
static void bus_master(u8 slot) { pci_cf8_write(0, slot, 0, 0x04, 2, pci_cf8_read(0, slot, 0, 0x04, 2) | 4); }

int main(void) {
	struct virtio_pci rng, blk;
	if (!virtio_pci_find(VIRTIO_ID_RNG, 0, &rng) || !rng.isr) { printf("FAIL rng not found\n"); return 10; }
	if (!virtio_pci_find(VIRTIO_ID_BLK, 0, &blk) || !blk.isr) { printf("FAIL blk not found\n"); return 11; }
	bus_master(rng.slot);
	bus_master(blk.slot);
	printf("rng at 00:%02x.0 common %lx notify %lx mult %u; blk at 00:%02x.0\n", rng.slot, rng.common, rng.notify, rng.notify_mult, blk.slot);

	/* MSI-X: vector 1 of rng -> LAPIC vector 0x40 (the table is in the BAR the capability names). */
	idt_init();
	idt_set_handler(0x40, on_msix);
	lapic_enable();
	u32 table = pci_cf8_read(0, rng.slot, 0, rng.msix_cap + 4, 4);
	u64 entry = pci_bar_address(0, rng.slot, table & 7) + (table & ~7u) + 16 * 1;
	mmio_write32(entry + 0, (u32)msi_address(lapic_id()));
	mmio_write32(entry + 4, 0);
	mmio_write32(entry + 8, msi_data(0x40));
	mmio_write32(entry + 12, 0);
	pci_cf8_write(0, rng.slot, 0, rng.msix_cap + 2, 2, 0x8000);

	if (!setup(&rng, &rngq, rng_ring, 1)) { printf("FAIL rng setup\n"); return 20; }
	const struct virtq_buf rng_chain = { (u64)rng_buf, sizeof rng_buf, 1 };
	virtq_add_chain(&rngq, 0, &rng_chain, 1);
	virtio_notify(&rng, &rngq);
	long got = wait_used(&rngq, LONG_WAIT);
	int nonzero = 0;
	for (u32 i = 0; i < sizeof rng_buf; i++) nonzero |= rng_buf[i];
	if (got != 64 || !nonzero) { printf("FAIL rng used len %ld\n", got); return 21; }
	printf("ok rng: 64 random bytes\n");

	for (int spins = 0; !msix_hits && spins < 1000; spins++) sti_hlt();
	cli();
	if (!msix_hits) { printf("FAIL no MSI-X interrupt\n"); return 22; }
	printf("ok rng: MSI-X vector 0x40 delivered (%u)\n", msix_hits);

	/* Move BAR1 with memory decoding on; the doorbell must follow it. */
	u64 old_bar = pci_bar_address(0, rng.slot, 1);
	u64 old_notify = rng.notify;
	pci_cf8_write(0, rng.slot, 0, 0x14, 4, (u32)MOVED_BAR1);
	if (pci_bar_address(0, rng.slot, 1) != MOVED_BAR1) { printf("FAIL BAR1 did not move\n"); return 30; }
	u64 new_notify = MOVED_BAR1 + (old_notify - old_bar);
	memset(rng_buf, 0, sizeof rng_buf);
	virtq_add_chain(&rngq, 0, &rng_chain, 1);
	virtio_notify(&rng, &rngq); /* rng.notify still names the old window */
	if (wait_used(&rngq, SHORT_WAIT) >= 0) { printf("FAIL stale doorbell at %lx still notifies\n", old_notify); return 31; }
	rng.notify = new_notify;
	virtio_notify(&rng, &rngq);
	if (wait_used(&rngq, LONG_WAIT) != 64) { printf("FAIL no completion via the moved doorbell\n"); return 32; }
	printf("ok rng: doorbell moved from %lx to %lx, old one dead\n", old_notify, new_notify);

	pci_cf8_write(0, rng.slot, 0, 0x04, 2, pci_cf8_read(0, rng.slot, 0, 0x04, 2) & ~4u);
	memset(rng_buf, 0, sizeof rng_buf);
	virtq_add_chain(&rngq, 0, &rng_chain, 1);
	virtio_notify(&rng, &rngq);
	if (wait_used(&rngq, SHORT_WAIT) >= 0) { printf("FAIL rng served with Bus Master Enable clear\n"); return 33; }
	nonzero = 0;
	for (u32 i = 0; i < sizeof rng_buf; i++) nonzero |= rng_buf[i];
	if (nonzero) { printf("FAIL rng wrote guest memory with Bus Master Enable clear\n"); return 34; }
	bus_master(rng.slot);
	if (wait_used(&rngq, LONG_WAIT) != 64) { printf("FAIL rng not served once Bus Master Enable was set\n"); return 35; }
	printf("ok rng: held while Bus Master Enable was clear, served once set\n");

	/* virtio-blk: polled (queue vector NO_VECTOR, MSI-X off). */
	if (!setup(&blk, &blkq, blk_ring, VIRTIO_NO_VECTOR)) { printf("FAIL blk setup\n"); return 40; }
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
