/*
 * An RTL8168 driver that programs MSI-X only through the chip's back door, as r8169 does on such chips: BAR2 0x70
 * takes a table dword, then BAR2 0x74 takes bit 31 (write), the target field 1 (the MSI-X table, bits 30:16), the
 * byte enables (bits 15:12) and the table offset (bits 11:0); the driver waits until the chip inverts bit 31. The
 * device is the vfio-user test server's rtl8168 attached with `vmm run --device vfio-user,socket=...`.
 *
 * It enables MSI-X with the function masked (the VMM sets the device's vectors up), programs every vector through
 * the back door, unmasks the function, makes the device raise each vector with the test engine and prints what
 * arrived: "vector V hits N" per vector, "backdoor-delivered N of M", the device's count of raised interrupts
 * ("device-raised N"), what the back door's read path answers for each vector's data dword ("backdoor-read V data
 * X") and what the table in BAR4 shows ("table V data X ctrl Y"). The host test decides, from those lines, whether
 * the interrupts arrived (a quirk redirected the back door to the VMM's emulated table) or were lost (the writes
 * reached the device's own table behind the VMM's back). The checks here hold either way (the device is found,
 * the back door completes its requests); the exit status counts their failures.
 */
#include "checks.h"
#include "probe-irq.h"

#define ENGINE_MAGIC 0x45545556u
enum { E_MAGIC = 0x00, E_VECTOR = 0x24, E_DOORBELL = 0x28, E_STATUS = 0x2c, E_IRQS = 0x34 };
enum { BD_DATA = 0x70, BD_ADDRESS = 0x74 };
#define BD_WRITE 0x80000000u
#define BD_MSIX_TABLE 0x00010000u /* target field = 1 */
#define BD_ALL_BYTES 0x0000f000u  /* byte enables: the whole dword */

#define VECTOR_BASE 0x60
#define MAX_VECTORS 8

static u8 B, D;
static u64 bar2, bar4;
static volatile u32 hits[MAX_VECTORS];
#define HANDLER(n) static void on_v##n(struct frame *f) { (void)f; hits[n]++; lapic_eoi(); }
HANDLER(0) HANDLER(1) HANDLER(2) HANDLER(3) HANDLER(4) HANDLER(5) HANDLER(6) HANDLER(7)
static const isr_handler handlers[MAX_VECTORS] = { on_v0, on_v1, on_v2, on_v3, on_v4, on_v5, on_v6, on_v7 };

static u32 cfg(u16 off, int size) { return pci_cf8_read(B, D, 0, off, size); }
static void set_cfg(u16 off, int size, u32 v) { pci_cf8_write(B, D, 0, off, size, v); }

static int find_rtl8168(void) {
	for (int bus = 0; bus < 16; bus++)
		for (int dev = 0; dev < 32; dev++)
			if (pci_cf8_read(bus, dev, 0, 0, 4) == 0x816810ec) {
				B = bus, D = dev;
				return 1;
			}
	return 0;
}

static u8 find_cap(u8 id) {
	for (u8 at = cfg(0x34, 1) & 0xfc, n = 0; at && n < 48; at = cfg(at + 1, 1) & 0xfc, n++)
		if (cfg(at, 1) == id) return at;
	return 0;
}

/*
 * The direct-boot machine leaves BARs for the guest to place (as an OS does): each memory BAR sized and put at the
 * next address of its own alignment from 0xd0000000; memory decode and bus mastering on. Returns BAR `want`.
 */
static u64 place_memory_bars(int want) {
	u64 next = 0xd0000000UL, found = 0;
	set_cfg(4, 2, cfg(4, 2) & ~7u);
	for (int i = 0; i < 6; i++) {
		u32 off = 0x10 + 4 * i, orig = cfg(off, 4);
		if (orig & 1) continue; /* I/O */
		int is64 = ((orig >> 1) & 3) == 2;
		set_cfg(off, 4, 0xffffffff);
		u32 mask = cfg(off, 4) & ~0xfu;
		if (!mask) {
			set_cfg(off, 4, orig);
			continue;
		}
		u32 size = ~mask + 1, align = size < 4096 ? 4096 : size;
		u64 at = (next + align - 1) & ~(u64)(align - 1);
		next = at + align;
		set_cfg(off, 4, (u32)at);
		if (is64) set_cfg(off + 4, 4, 0);
		if (i == want) found = at;
		if (is64) i++;
	}
	set_cfg(4, 2, cfg(4, 2) | 6);
	return found;
}

/* Waits for the chip to invert the flag of the request in 0x74; 1 when it did. */
static int backdoor_wait(u32 request) {
	for (int i = 0; i < 1000; i++)
		if ((mmio_read32(bar2 + BD_ADDRESS) ^ request) & BD_WRITE) return 1;
	return 0;
}

/* One table dword written the r8169 way. */
static void backdoor_write(u32 offset, u32 value) {
	u32 request = BD_WRITE | BD_MSIX_TABLE | BD_ALL_BYTES | (offset & 0xfff);
	mmio_write32(bar2 + BD_DATA, value);
	mmio_write32(bar2 + BD_ADDRESS, request);
	CHECK(backdoor_wait(request), "back-door write of table offset %x completes (bit 31 reads clear)", offset);
}

/* One table dword read back the r8169 way: the address without bit 31, then the data once bit 31 reads set. */
static u32 backdoor_read(u32 offset) {
	u32 request = BD_MSIX_TABLE | BD_ALL_BYTES | (offset & 0xfff);
	mmio_write32(bar2 + BD_ADDRESS, request);
	CHECK(backdoor_wait(request), "back-door read of table offset %x completes (bit 31 reads set)", offset);
	return mmio_read32(bar2 + BD_DATA);
}

static void raise(u32 vector) {
	mmio_write32(bar2 + 0x800 + E_VECTOR, vector);
	mmio_write32(bar2 + 0x800 + E_DOORBELL, 2);
}

int main(void) {
	idt_init();
	lapic_enable();
	idt_set_handler(WAKE_VECTOR, on_wake);
	if (!find_rtl8168()) {
		printf("rtl8168-backdoor: FAIL: no 10ec:8168 found\n");
		return 2;
	}
	bar2 = place_memory_bars(2);
	bar4 = place_memory_bars(4);
	printf("rtl8168 at %02x:%02x.0 bar2 %x bar4 %x\n", B, D, (u32)bar2, (u32)bar4);
	EXPECT(mmio_read32(bar2 + 0x800 + E_MAGIC), ENGINE_MAGIC, "test engine magic at BAR2+0x800");

	u8 m = find_cap(0x11);
	CHECK(m != 0, "MSI-X capability present");
	if (!m) return checks_done("rtl8168-backdoor");
	u32 n = (cfg(m + 2, 2) & 0x7ff) + 1;
	if (n > MAX_VECTORS) n = MAX_VECTORS;
	printf("msix %d vectors\n", n);

	/* MSI-X on with the function masked while the vectors are programmed, as drivers do. */
	set_cfg(m + 2, 2, 0xc000);
	for (u32 v = 0; v < n; v++) {
		idt_set_handler(VECTOR_BASE + v, handlers[v]);
		backdoor_write(16 * v + 0, (u32)msi_address(lapic_id()));
		backdoor_write(16 * v + 4, 0);
		backdoor_write(16 * v + 8, msi_data(VECTOR_BASE + v));
		backdoor_write(16 * v + 12, 0); /* unmasked */
	}
	set_cfg(m + 2, 2, 0x8000);

	u32 raised = mmio_read32(bar2 + 0x800 + E_IRQS), delivered = 0;
	for (u32 v = 0; v < n; v++) {
		raise(v);
		for (int i = 0; i < 20 && !hits[v]; i++) wait_irq();
	}
	wait_irq();
	for (u32 v = 0; v < n; v++) {
		printf("vector %d hits %d\n", v, hits[v]);
		delivered += hits[v] != 0;
	}
	printf("backdoor-delivered %d of %d\n", delivered, n);
	printf("device-raised %d\n", mmio_read32(bar2 + 0x800 + E_IRQS) - raised);
	for (u32 v = 0; v < n; v++) printf("backdoor-read %d data %x\n", v, backdoor_read(16 * v + 8));
	for (u32 v = 0; v < n; v++) printf("table %d data %x ctrl %x\n", v, mmio_read32(bar4 + 16 * v + 8), mmio_read32(bar4 + 16 * v + 12));
	set_cfg(m + 2, 2, 0);
	mmio_write32(bar2 + 0x800 + E_STATUS, 7);
	return checks_done("rtl8168-backdoor");
}
