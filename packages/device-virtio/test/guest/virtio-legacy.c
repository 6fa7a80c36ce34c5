/*
 * A legacy (pre-1.0) virtio driver run under KVM against a transitional virtio-rng: I/O BAR0 register file,
 * PFN-addressed queue, doorbell at BAR0+0x10 (a KVM ioeventfd with datamatch), INTx through the IOAPIC with the
 * read-to-clear ISR. Then BAR0 is moved with I/O decoding on: the old doorbell must be dead and the new one live.
 * The exit status names the first failing step (0 = all passed).
 */
#include "virtio.h"

#define QSZ 256
#define MOVED_IO 0x9000

/* The legacy layout (which virtq_init uses): table, avail right after it, used ring on the next 4 KiB boundary. */
static u8 ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static struct virtq q;
static u8 buf[32];
static volatile u32 irqs, isr_seen;
static u16 io;

static void on_intx(struct frame *f) {
	(void)f;
	isr_seen |= inb(io + 0x13); /* reading the ISR deasserts the level-triggered line */
	irqs++;
	lapic_eoi();
}

static void post(void) { virtq_add_buf(&q, 0, (u64)buf, sizeof buf, 1); }

/* Waits (bounded) for the next used element; returns its length or -1. */
static long wait_used(u64 cycles) {
	u32 len;
	return virtq_poll_used(&q, cycles, &len) < 0 ? -1 : (long)len;
}

/* Bus Master Enable (command bit 2): without it the device may not touch our memory (Linux: pci_set_master). */
static void bus_master(u8 slot) { pci_cf8_write(0, slot, 0, 0x04, 2, pci_cf8_read(0, slot, 0, 0x04, 2) | 4); }

int main(void) {
	u8 slot = 0xff;
	for (u8 s = 0; s < 32; s++) if (pci_cf8_read(0, s, 0, 0, 4) == 0x10041af4) slot = s;
	if (slot == 0xff) { printf("FAIL transitional rng not found\n"); return 10; }
	bus_master(slot);
	io = pci_cf8_read(0, slot, 0, 0x10, 4) & ~3u;
	u8 gsi = pci_cf8_read(0, slot, 0, 0x3c, 1);
	printf("rng 00:%02x.0 io %x gsi %u\n", slot, io, gsi);

	idt_init();
	idt_set_handler(0x41, on_intx);
	lapic_enable();
	ioapic_route(gsi, 0x41, (u8)lapic_id(), 1);

	outb(io + 0x12, 0);
	outb(io + 0x12, 1);
	outb(io + 0x12, 3);
	u32 host = inl(io + 0x00);
	outl(io + 0x04, 0);
	outw(io + 0x0e, 0);
	if (inw(io + 0x0c) != QSZ) { printf("FAIL queue size %u\n", inw(io + 0x0c)); return 11; }
	virtq_init(&q, ring, QSZ);
	outl(io + 0x08, (u32)((u64)ring >> 12));
	outb(io + 0x12, 7);
	printf("host features %x, pfn %x\n", host, inl(io + 0x08));

	post();
	outw(io + 0x10, 0);
	if (wait_used(20000000000UL) != sizeof buf) { printf("FAIL no completion\n"); return 12; }
	for (int spins = 0; !irqs && spins < 1000; spins++) sti_hlt();
	cli();
	if (!irqs || !(isr_seen & 1)) { printf("FAIL INTx irqs %u isr %x\n", irqs, isr_seen); return 13; }
	if (inb(io + 0x13) != 0) { printf("FAIL ISR not cleared\n"); return 14; }
	printf("ok legacy rng: completion, INTx with ISR %x\n", isr_seen);

	u16 old = io;
	pci_cf8_write(0, slot, 0, 0x10, 4, MOVED_IO);
	if ((pci_cf8_read(0, slot, 0, 0x10, 4) & ~3u) != MOVED_IO) { printf("FAIL BAR0 did not move\n"); return 20; }
	io = MOVED_IO;
	post();
	outw(old + 0x10, 0);
	if (wait_used(300000000UL) >= 0) { printf("FAIL stale port doorbell %x still notifies\n", old + 0x10); return 21; }
	outw(io + 0x10, 0);
	if (wait_used(20000000000UL) != sizeof buf) { printf("FAIL no completion via the moved doorbell\n"); return 22; }
	printf("ok legacy rng: doorbell moved from %x to %x, old one dead\n", old + 0x10, io + 0x10);
	outb(io + 0x12, 0);
	if (inb(io + 0x12) != 0 || inl(io + 0x08) != 0) { printf("FAIL reset left state\n"); return 23; }
	printf("ok legacy rng: reset\n");
	return 0;
}
