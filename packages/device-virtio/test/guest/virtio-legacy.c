/*
 * A legacy (pre-1.0) virtio driver run under KVM against a transitional virtio-rng: I/O BAR0 register file,
 * PFN-addressed queue, doorbell at BAR0+0x10 (a KVM ioeventfd with datamatch), INTx through the IOAPIC with the
 * read-to-clear ISR. Then BAR0 is moved with I/O decoding on: the old doorbell must be dead and the new one live.
 * The exit status names the first failing step (0 = all passed).
 */
#include "guest.h"

#define QSZ 256
#define MOVED_IO 0x9000

struct desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
} __attribute__((packed));

/* The legacy layout: table, avail right after it, used ring on the next 4 KiB boundary. */
struct legacy_ring {
	struct desc d[QSZ];
	u16 avail[3 + QSZ];
	u8 pad[4096 - 2 * (3 + QSZ)];
	u16 used_hdr[2];
	u32 used[2 * QSZ];
	u16 avail_event;
} __attribute__((aligned(4096)));

static struct legacy_ring ring;
static u8 buf[32];
static volatile u32 irqs, isr_seen;
static u16 io;

static void on_intx(struct frame *f) {
	(void)f;
	isr_seen |= inb(io + 0x13); /* reading the ISR deasserts the level-triggered line */
	irqs++;
	lapic_eoi();
}

static u16 avail_idx, used_seen;

static void post(void) {
	ring.d[0].addr = (u64)buf;
	ring.d[0].len = sizeof buf;
	ring.d[0].flags = 2;
	ring.avail[2 + avail_idx % QSZ] = 0;
	__asm__ volatile("" ::: "memory");
	avail_idx++;
	((volatile u16 *)ring.avail)[1] = avail_idx;
}

static long wait_used(u64 cycles) {
	u64 end = rdtsc() + cycles;
	while (((volatile u16 *)ring.used_hdr)[1] == used_seen) {
		if (rdtsc() > end) return -1;
		cpu_relax();
	}
	u32 len = ((volatile u32 *)ring.used)[2 * (used_seen % QSZ) + 1];
	used_seen++;
	return len;
}

int main(void) {
	u8 slot = 0xff;
	for (u8 s = 0; s < 32; s++) if (pci_cf8_read(0, s, 0, 0, 4) == 0x10041af4) slot = s;
	if (slot == 0xff) { printf("FAIL transitional rng not found\n"); return 10; }
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
	outl(io + 0x08, (u32)((u64)&ring >> 12));
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
