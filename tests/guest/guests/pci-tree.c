/*
 * A PCI Express tree as an OS enumerates it: scan bus 0 through ECAM, recurse through every bridge (root ports)
 * assigning bus numbers of its own, size the BARs behind each bridge and program the bridge windows and BARs
 * itself, read each endpoint's PCI Express capability and extended config space, then show that a device decodes
 * only inside its bridge's windows (closing, moving and reopening a window; memory forwarding off and on), that a
 * secondary bus reset reaches it, and that MSI-X and INTx work from behind a root port.
 * Runs against "pci-probe" functions (1234:beef, see src/probe-device.ts) placed behind root ports: BAR1 +0 reads
 * 0xa0000000 | device number, +8 fires an MSI-X vector, +0xC drives INTx. Prints "FAIL ..." per broken check.
 */
#include "checks.h"
#include "probe-irq.h"

#define PROBE_ID 0xbeef1234u
#define ID_MAGIC 0xa0000000u
/* Where this guest puts things (inside the machine's 32-bit PCI hole and I/O window, away from the VMM's choices). */
#define FIRST_BUS 0x20
#define MEM_BASE 0xd8000000u /* 1 MiB memory window + 1 MiB prefetchable window per bridge */
#define IO_BASE 0xa000u      /* 4 KiB I/O window per bridge */

static u64 ecam;
static u32 cfg(u8 bus, u8 dev, u8 fn, u16 off, int size) { return pci_ecam_read(ecam, bus, dev, fn, off, size); }
static void set_cfg(u8 bus, u8 dev, u8 fn, u16 off, int size, u32 v) { pci_ecam_write(ecam, bus, dev, fn, off, size, v); }

struct bridge {
	u8 bus, dev;      /* where the bridge is */
	u8 secondary;     /* the bus it opens */
	u32 mem, pref;    /* window bases (1 MiB each) */
	u16 io;           /* I/O window base (4 KiB) */
};
struct endpoint {
	u8 bus, dev;
	struct bridge *up;
	u64 bar1;         /* registers */
	u64 bar4;         /* MSI-X table */
};

static struct bridge bridges[8];
static struct endpoint endpoints[8];
static int nbridges, nendpoints;
static u8 next_bus = FIRST_BUS;
/* A probe on bus 0 (a root-complex integrated endpoint), if any. */
static int integrated_dev = -1;

/* Offset of capability `id` in the standard list, or 0. */
static u16 find_cap(u8 bus, u8 dev, u8 id) {
	if (!(cfg(bus, dev, 0, 6, 2) & 0x10)) return 0;
	u16 at = cfg(bus, dev, 0, 0x34, 1) & 0xfc;
	for (int n = 0; at && n < 48; n++) {
		if (cfg(bus, dev, 0, at, 1) == id) return at;
		at = cfg(bus, dev, 0, at + 1, 1) & 0xfc;
	}
	return 0;
}

/* Sizes a 32-bit BAR (decode off), returns its size. */
static u32 bar_size(u8 bus, u8 dev, int bar) {
	u16 off = 0x10 + 4 * bar;
	u32 old = cfg(bus, dev, 0, off, 4);
	set_cfg(bus, dev, 0, off, 4, 0xffffffff);
	u32 v = cfg(bus, dev, 0, off, 4);
	set_cfg(bus, dev, 0, off, 4, old);
	if (!v) return 0;
	return (v & 1) ? (~(v & ~3u) + 1) & 0xffff : ~(v & ~0xfu) + 1;
}

/* An endpoint behind `up`: size its BARs and place them inside the bridge's windows. */
static void place_endpoint(u8 bus, u8 dev, struct bridge *up) {
	struct endpoint *e = &endpoints[nendpoints++];
	e->bus = bus;
	e->dev = dev;
	e->up = up;
	set_cfg(bus, dev, 0, 4, 2, 0);
	u32 io = up->io, mem = up->mem;
	for (int bar = 0; bar < 6; bar++) {
		u16 off = 0x10 + 4 * bar;
		u32 lo = cfg(bus, dev, 0, off, 4);
		if (!lo && !bar_size(bus, dev, bar)) continue;
		if ((lo & 0x7) == 0x4) { /* 64-bit: size both halves, place it in the prefetchable window */
			set_cfg(bus, dev, 0, off, 4, 0xffffffff);
			set_cfg(bus, dev, 0, off + 4, 4, 0xffffffff);
			u32 size = ~(cfg(bus, dev, 0, off, 4) & ~0xfu) + 1;
			CHECK(size == 0x4000, "64-bit BAR%d size %x", bar, size);
			set_cfg(bus, dev, 0, off, 4, up->pref);
			set_cfg(bus, dev, 0, off + 4, 4, 0);
			bar++;
			continue;
		}
		u32 size = bar_size(bus, dev, bar);
		if (lo & 1) {
			io = (io + size - 1) & ~(size - 1);
			set_cfg(bus, dev, 0, off, 4, io);
			io += size;
		} else {
			mem = (mem + size - 1) & ~(size - 1);
			set_cfg(bus, dev, 0, off, 4, mem);
			if (bar == 1) e->bar1 = mem;
			if (bar == 4) e->bar4 = mem;
			mem += size;
		}
	}
	set_cfg(bus, dev, 0, 4, 2, 0x0007);
}

static void scan(u8 bus, struct bridge *up);

/* A bridge: give it the next bus number, windows of its own, then scan behind it. */
static void place_bridge(u8 bus, u8 dev) {
	struct bridge *b = &bridges[nbridges];
	b->bus = bus;
	b->dev = dev;
	b->secondary = next_bus++;
	b->mem = MEM_BASE + nbridges * 0x200000u;
	b->pref = b->mem + 0x100000u;
	b->io = IO_BASE + nbridges * 0x1000u;
	nbridges++;
	/* Linux's way: subordinate 0xff while scanning below, then the last bus found. */
	set_cfg(bus, dev, 0, 0x18, 4, (cfg(bus, dev, 0, 0x18, 4) & 0xff000000u) | bus | (b->secondary << 8) | (0xffu << 16));
	set_cfg(bus, dev, 0, 0x1c, 1, (b->io >> 8) & 0xf0);
	set_cfg(bus, dev, 0, 0x1d, 1, ((b->io + 0xfff) >> 8) & 0xf0);
	set_cfg(bus, dev, 0, 0x20, 2, (b->mem >> 16) & 0xfff0);
	set_cfg(bus, dev, 0, 0x22, 2, ((b->mem + 0xfffff) >> 16) & 0xfff0);
	set_cfg(bus, dev, 0, 0x28, 4, 0);
	set_cfg(bus, dev, 0, 0x2c, 4, 0);
	set_cfg(bus, dev, 0, 0x24, 2, (b->pref >> 16) & 0xfff0);
	set_cfg(bus, dev, 0, 0x26, 2, ((b->pref + 0xfffff) >> 16) & 0xfff0);
	set_cfg(bus, dev, 0, 4, 2, 0x0007);
	scan(b->secondary, b);
	set_cfg(bus, dev, 0, 0x1a, 1, next_bus - 1);
}

static void scan(u8 bus, struct bridge *up) {
	for (u8 dev = 0; dev < 32; dev++) {
		u32 id = cfg(bus, dev, 0, 0, 4);
		if (id == 0xffffffff) continue;
		u8 type = cfg(bus, dev, 0, 0x0e, 1) & 0x7f;
		printf("pci %02x:%02x.0 %04x:%04x class %06x%s\n", bus, dev, id & 0xffff, id >> 16, cfg(bus, dev, 0, 8, 4) >> 8,
		       type == 1 ? " bridge" : "");
		if (type == 1) place_bridge(bus, dev);
		else if (up) place_endpoint(bus, dev, up);
		else if (id == PROBE_ID) integrated_dev = dev;
	}
}

static void check_express(struct endpoint *e) {
	struct bridge *b = e->up;
	u16 rp = find_cap(b->bus, b->dev, 0x10);
	CHECK(rp != 0, "root port %02x:%02x has a PCIe capability", b->bus, b->dev);
	EXPECT((cfg(b->bus, b->dev, 0, rp + 2, 2) >> 4) & 0xf, 4, "root port: device/port type");
	CHECK(cfg(b->bus, b->dev, 0, rp + 2, 2) & 0x100, "root port: slot implemented");
	CHECK(cfg(b->bus, b->dev, 0, rp + 0x12, 2) & (1 << 13), "root port: data link layer link active");
	CHECK(cfg(b->bus, b->dev, 0, rp + 0x1a, 2) & (1 << 6), "root port: presence detect state");
	u16 ep = find_cap(e->bus, e->dev, 0x10);
	CHECK(ep != 0, "endpoint %02x:%02x has a PCIe capability", e->bus, e->dev);
	EXPECT((cfg(e->bus, e->dev, 0, ep + 2, 2) >> 4) & 0xf, 0, "endpoint: device/port type");
	EXPECT(cfg(e->bus, e->dev, 0, ep + 2, 2) & 0xf, 1, "endpoint: capability version");
	EXPECT(cfg(e->bus, e->dev, 0, ep + 0x12, 2) & 0x3ff, 0x11, "endpoint: x1 link at 2.5 GT/s");
	EXPECT(cfg(e->bus, e->dev, 0, 0x0d, 1), 0, "endpoint: latency timer hardwired to 0");
	set_cfg(e->bus, e->dev, 0, 0x0d, 1, 0x40);
	EXPECT(cfg(e->bus, e->dev, 0, 0x0d, 1), 0, "endpoint: latency timer read-only");
	/* 4 KiB config space: an empty extended capability list at 0x100, zero up to 0xFFC (not all-ones). */
	EXPECT(cfg(e->bus, e->dev, 0, 0x100, 4), 0, "extended capability list: empty header at 0x100");
	EXPECT(cfg(e->bus, e->dev, 0, 0xffc, 4), 0, "extended config space reaches 0xFFC");
	EXPECT(cfg(e->bus, e->dev, 1, 0, 4), 0xffffffff, "no function 1");
	EXPECT(cfg(e->bus, 1, 0, 0, 4), 0xffffffff, "only device 0 answers behind a root port");
	EXPECT(cfg(next_bus, 0, 0, 0, 4), 0xffffffff, "a bus no bridge covers is empty");
	EXPECT(pci_cf8_read(e->bus, e->dev, 0, 0, 4), PROBE_ID, "CF8 reaches the endpoint through the bridge");
}

/* A root-complex integrated endpoint on bus 0: PCIe capability type 9 without link registers, 4 KiB config space. */
static void check_integrated(u8 dev) {
	u16 cap = find_cap(0, dev, 0x10);
	CHECK(cap != 0, "integrated endpoint 00:%02x has a PCIe capability", dev);
	EXPECT((cfg(0, dev, 0, cap + 2, 2) >> 4) & 0xf, 9, "integrated endpoint: device/port type");
	EXPECT(cfg(0, dev, 0, 0x100, 4), 0, "integrated endpoint: empty extended capability list");
	EXPECT(cfg(0, dev, 0, 0xffc, 4), 0, "integrated endpoint: 4 KiB config space");
	EXPECT(mmio_read32(pci_bar_address(0, dev, 1)), ID_MAGIC | dev, "integrated endpoint decodes on bus 0");
}

static void check_windows(struct endpoint *e) {
	struct bridge *b = e->up;
	u64 regs = e->bar1;
	EXPECT(mmio_read32(regs), ID_MAGIC, "endpoint answers inside the window");
	u16 limit = cfg(b->bus, b->dev, 0, 0x22, 2);
	set_cfg(b->bus, b->dev, 0, 0x22, 2, 0); /* limit below base: closed */
	EXPECT(mmio_read32(regs), 0xffffffff, "window closed: BAR not decoded");
	EXPECT(mmio_read32(e->bar4), 0xffffffff, "window closed: MSI-X table not decoded");
	set_cfg(b->bus, b->dev, 0, 0x22, 2, limit);
	EXPECT(mmio_read32(regs), ID_MAGIC, "window reopened: BAR decoded again");

	/* Move the window 16 MiB up: the BAR falls outside; move the BAR into the new window: it answers there. */
	u32 moved = b->mem + 0x1000000u;
	set_cfg(b->bus, b->dev, 0, 0x20, 4, ((moved >> 16) & 0xfff0) | (((moved + 0xfffff) & 0xfff00000u)));
	EXPECT(mmio_read32(regs), 0xffffffff, "window moved away: BAR not decoded at its old address");
	u32 newbar = moved + (u32)(regs - b->mem);
	set_cfg(e->bus, e->dev, 0, 0x14, 4, newbar);
	EXPECT(mmio_read32(newbar), ID_MAGIC, "BAR moved into the moved window");
	set_cfg(e->bus, e->dev, 0, 0x14, 4, (u32)regs);
	EXPECT(mmio_read32(newbar), 0xffffffff, "BAR moved back out of the window");
	set_cfg(b->bus, b->dev, 0, 0x20, 4, ((b->mem >> 16) & 0xfff0) | ((b->mem + 0xfffff) & 0xfff00000u));
	EXPECT(mmio_read32(regs), ID_MAGIC, "window back: BAR decoded at home");

	/* Memory forwarding off at the root port: nothing below decodes memory; I/O still does. */
	set_cfg(b->bus, b->dev, 0, 4, 2, 0x0005);
	EXPECT(mmio_read32(regs), 0xffffffff, "bridge memory forwarding off");
	u16 io = (u16)pci_bar_address(e->bus, e->dev, 0);
	EXPECT(inl(io), ID_MAGIC, "I/O BAR still forwarded");
	set_cfg(b->bus, b->dev, 0, 4, 2, 0x0003 | 0x4);
	EXPECT(mmio_read32(regs), ID_MAGIC, "bridge memory forwarding back on");
	/* ISA enable: an I/O BAR at offset 0x100 of a 1 KiB block is not forwarded. */
	set_cfg(e->bus, e->dev, 0, 0x10, 4, io + 0x100);
	EXPECT(inl(io + 0x100), ID_MAGIC, "I/O BAR moved inside the window");
	set_cfg(b->bus, b->dev, 0, 0x3e, 2, 0x4);
	EXPECT(inl(io + 0x100), 0xffffffff, "ISA enable: ISA alias range not forwarded");
	set_cfg(b->bus, b->dev, 0, 0x3e, 2, 0);
	set_cfg(e->bus, e->dev, 0, 0x10, 4, io);
	EXPECT(inl(io), ID_MAGIC, "I/O BAR home");
}

static void check_reset(struct endpoint *e) {
	struct bridge *b = e->up;
	set_cfg(b->bus, b->dev, 0, 0x3e, 2, 0x40); /* secondary bus reset */
	set_cfg(b->bus, b->dev, 0, 0x3e, 2, 0);
	EXPECT(cfg(e->bus, e->dev, 0, 4, 2), 0, "secondary bus reset clears the endpoint's command register");
	EXPECT(mmio_read32(e->bar1), 0xffffffff, "after the reset the BAR is not decoded");
	set_cfg(e->bus, e->dev, 0, 4, 2, 0x0007);
	EXPECT(mmio_read32(e->bar1), ID_MAGIC, "decoding back after re-enabling");
}

static void check_msix(struct endpoint *e) {
	u16 cap = find_cap(e->bus, e->dev, 0x11);
	CHECK(cap != 0, "MSI-X capability");
	u64 table = e->bar4;
	mmio_write32(table + 0, (u32)msi_address(lapic_id()));
	mmio_write32(table + 4, 0);
	mmio_write32(table + 8, msi_data(0x41));
	mmio_write32(table + 12, 0);
	set_cfg(e->bus, e->dev, 0, cap + 2, 2, 0x8000);
	u32 before = msix_hits;
	mmio_write32(e->bar1 + 8, 0);
	wait_irq();
	EXPECT(msix_hits - before, 1, "MSI-X from behind the root port");
	set_cfg(e->bus, e->dev, 0, cap + 2, 2, 0);
}

static void check_intx(struct endpoint *e) {
	struct bridge *b = e->up;
	/* The bridge swizzle: device 0 INTA behind the port is the port's INTA; bus 0 routes slot pins to GSIs 16-19. */
	u8 pin = ((e->dev + 1 - 1) % 4) + 1;
	u8 gsi = 16 + (b->dev + pin - 1) % 4;
	EXPECT(cfg(e->bus, e->dev, 0, 0x3c, 1), gsi, "interrupt line is the swizzled GSI");
	ioapic_route(gsi, 0x51, lapic_id(), 1);
	u32 before = intx_hits;
	mmio_write32(e->bar1 + 0xc, 1);
	wait_irq();
	mmio_write32(e->bar1 + 0xc, 0);
	CHECK(intx_hits - before >= 1, "INTx from behind the root port on GSI %u", gsi);
	ioapic_mask(gsi);
}

int main(void) {
	idt_init();
	lapic_enable();
	idt_set_handler(0x41, on_msix);
	idt_set_handler(0x51, on_intx);
	idt_set_handler(WAKE_VECTOR, on_wake);
	ecam = acpi_ecam_base();
	if (!ecam) {
		printf("no ECAM\n");
		return 2;
	}
	scan(0, 0);
	printf("pci-tree: %d bridges, %d endpoints, buses %02x-%02x\n", nbridges, nendpoints, FIRST_BUS, next_bus - 1);
	if (nendpoints < 2) {
		printf("need two endpoints behind root ports\n");
		return 2;
	}
	for (int i = 0; i < nendpoints; i++) {
		struct endpoint *e = &endpoints[i];
		EXPECT(cfg(e->bus, e->dev, 0, 0, 4), PROBE_ID, "endpoint id at the guest's bus number");
		check_express(e);
		check_windows(e);
		check_reset(e);
		check_msix(e);
		check_intx(e);
	}
	if (integrated_dev >= 0) check_integrated(integrated_dev);
	else CHECK(0, "no integrated endpoint on bus 0");
	return checks_done("pci-tree");
}
