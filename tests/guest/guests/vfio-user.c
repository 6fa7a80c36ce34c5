/*
 * A passthrough device as a guest driver meets it: one of the vfio-user test server's simulated devices
 * (tools/vfio-user-server: rtl8168, nvme, subpage-rom, intx-only) attached with `--device vfio-user,socket=...`.
 * Enumeration and the capability walk (offsets kept, multi-function bit masked, the PCI Express type the
 * placement gives), BAR sizing, BARs moved to addresses the guest picks (mmapped areas keep their contents and
 * follow the move and decode toggles), the test engine's DMA both ways, MSI-X (per vector, masking with the pending
 * bit), MSI, INTx after MSI-X (the switch back), the expansion ROM, a sub-page BAR. Prints "FAIL line N: ..." per
 * broken check and figures the host test compares ("msix-delivered N", "rom crc32 X size Y"); exits with the
 * failure count.
 */
#include "checks.h"
#include "probe-irq.h"

#define ENGINE_MAGIC 0x45545556u
enum { E_MAGIC = 0x00, E_ID = 0x04, E_SRC = 0x08, E_DST = 0x10, E_LEN = 0x18, E_OP = 0x1c, E_PATTERN = 0x20,
       E_VECTOR = 0x24, E_DOORBELL = 0x28, E_STATUS = 0x2c, E_COUNT = 0x30, E_IRQS = 0x34, E_SCRATCH = 0x38 };
enum { ST_DONE = 1, ST_ERROR = 2, ST_IRQ = 4 };

struct kind {
	u16 vendor, device;
	u32 id;
	const char *name;
	u8 engine_bar;
	u32 engine_off;
	/* An mmappable area to check (length 0: none). */
	u8 mmap_bar;
	u32 mmap_off, mmap_len;
	/* Expected BAR sizes (0: none) and whether each is I/O. */
	u32 bar_size[6];
	u8 bar_io[6];
	u32 rom_size;
	/* Expected capability IDs at offsets: pairs (offset, id), ended by 0. */
	u8 caps[12];
};

static const struct kind kinds[] = {
	{ 0x10ec, 0x8168, 1, "rtl8168", 2, 0x800, 4, 0x1000, 0x3000,
	  { 256, 0, 4096, 0, 16384, 0 }, { 1, 0, 0, 0, 0, 0 }, 0, { 0x40, 0x01, 0x50, 0x05, 0x70, 0x10, 0xb0, 0x11, 0xd0, 0x03, 0 } },
	{ 0x144d, 0xa808, 2, "nvme", 0, 0x1000, 3, 0, 0x100000,
	  { 16384, 0, 0, 0x100000, 0, 0 }, { 0, 0, 0, 0, 0, 0 }, 0, { 0x40, 0x01, 0x50, 0x11, 0x60, 0x10, 0x80, 0x05, 0 } },
	{ 0x8086, 0x100e, 3, "subpage-rom", 0, 0x40, 0, 0, 0,
	  { 256, 64, 0, 0, 0, 0 }, { 0, 1, 0, 0, 0, 0 }, 65536, { 0x40, 0x01, 0x50, 0x05, 0 } },
	{ 0x1234, 0x11e8, 4, "intx-only", 0, 0, 0, 0, 0,
	  { 4096, 0, 0, 0, 0, 0 }, { 0, 0, 0, 0, 0, 0 }, 0, { 0x40, 0x01, 0 } },
};

static u8 B, D;
static const struct kind *k;
static u64 bar_addr[6];
static u64 engine;
static u64 next_free = 0xd0000000UL;

static u32 cfg(u16 off, int size) { return pci_cf8_read(B, D, 0, off, size); }
static void set_cfg(u16 off, int size, u32 v) { pci_cf8_write(B, D, 0, off, size, v); }
static u32 reg(u32 off) { return mmio_read32(engine + off); }
static void set_reg(u32 off, u32 v) { mmio_write32(engine + off, v); }

static u8 find_cap(u8 id) {
	for (u8 at = cfg(0x34, 1) & 0xfc, n = 0; at && n < 48; at = cfg(at + 1, 1) & 0xfc, n++)
		if (cfg(at, 1) == id) return at;
	return 0;
}

static int find_device(void) {
	for (int bus = 0; bus < 16; bus++)
		for (int dev = 0; dev < 32; dev++) {
			u32 id = pci_cf8_read(bus, dev, 0, 0, 4);
			if (id == 0xffffffff) continue;
			for (unsigned i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
				if (id == ((u32)kinds[i].device << 16 | kinds[i].vendor)) {
					B = bus, D = dev, k = &kinds[i];
					return 1;
				}
		}
	return 0;
}

static void check_header(void) {
	printf("vfio: %s %04x:%04x at %02x:%02x.0 class %06x\n", k->name, k->vendor, k->device, B, D, cfg(8, 4) >> 8);
	EXPECT(cfg(0x0e, 1) & 0x80, 0, "header type: multi-function bit masked");
	CHECK(cfg(6, 2) & 0x10, "status has the capability list bit");
	EXPECT(cfg(0x3d, 1), 1, "interrupt pin INTA");
	for (const u8 *c = k->caps; *c; c += 2) EXPECT(cfg(c[0], 1), c[1], "capability ID at its device offset");
	for (u8 at = cfg(0x34, 1) & 0xfc, n = 0; at && n < 48; at = cfg(at + 1, 1) & 0xfc, n++) printf("cap %02x at %02x\n", cfg(at, 1), at);
	u8 e = find_cap(0x10);
	if (e) {
		u32 type = (cfg(e + 2, 2) >> 4) & 0xf;
		printf("pcie type %x\n", type);
		/* An RC integrated endpoint has no link: its link capabilities and status read 0. */
		if (type == 9) EXPECT(cfg(e + 0x0c, 4), 0, "RC integrated endpoint: no link capabilities");
		u64 ecam = acpi_ecam_base();
		if (ecam) {
			for (u16 at = 0x100, n = 0; at && n < 64; n++) {
				u32 h = pci_ecam_read(ecam, B, D, 0, at, 4);
				if (h == 0 || h == 0xffffffff) break;
				printf("ecap %04x at %03x\n", h & 0xffff, at);
				at = (h >> 20) & 0xffc;
			}
		}
	} else {
		printf("pcie none\n");
	}
}

/*
 * Behind a bridge (a root port), the guest's BAR addresses must fall in the bridge's memory window: open it over
 * [0xd0000000, 0xdfffffff], the range this program places BARs in, as an OS reassigning resources does.
 */
static void open_bridge_window(void) {
	if (B == 0) return;
	for (int dev = 0; dev < 32; dev++) {
		if ((pci_cf8_read(0, dev, 0, 0x0e, 1) & 0x7f) != 1 || pci_cf8_read(0, dev, 0, 0x19, 1) != B) continue;
		pci_cf8_write(0, dev, 0, 0x20, 4, 0xdff0d000);        /* memory base 0xd0000000, limit 0xdfffffff */
		pci_cf8_write(0, dev, 0, 0x24, 4, 0x0000fff0);        /* prefetchable window off (base above limit) */
		pci_cf8_write(0, dev, 0, 0x28, 4, 0);
		pci_cf8_write(0, dev, 0, 0x2c, 4, 0);
		pci_cf8_write(0, dev, 0, 4, 2, pci_cf8_read(0, dev, 0, 4, 2) | 7);
		printf("bridge 00:%02x.0 window d0000000-dfffffff\n", dev);
		return;
	}
	CHECK(0, "no bridge with secondary bus %d", B);
}

/* Sizes every BAR and moves the memory BARs to addresses of the guest's choosing below 4 GiB. */
static void size_and_place_bars(void) {
	set_cfg(4, 2, cfg(4, 2) & ~3u);
	for (int i = 0; i < 6; i++) {
		u32 off = 0x10 + 4 * i, orig = cfg(off, 4);
		set_cfg(off, 4, 0xffffffff);
		u32 low = cfg(off, 4);
		set_cfg(off, 4, orig);
		if (low == 0) {
			EXPECT(k->bar_size[i], 0, "absent BAR reads 0 after sizing");
			continue;
		}
		int io = low & 1, is64 = !io && ((low >> 1) & 3) == 2;
		u64 mask = io ? (low & ~3u) | 0xffff0000u : (low & ~0xfu);
		if (is64) {
			u32 hi = cfg(off + 4, 4);
			set_cfg(off + 4, 4, 0xffffffff);
			mask |= (u64)cfg(off + 4, 4) << 32;
			set_cfg(off + 4, 4, hi);
		} else {
			mask |= 0xffffffff00000000UL;
		}
		u64 size = ~mask + 1;
		printf("bar%d %s size %x\n", i, io ? "io" : is64 ? "mem64" : "mem32", (u32)size);
		EXPECT(size, k->bar_size[i], "BAR size");
		EXPECT(io, k->bar_io[i], "BAR kind");
		if (!io) {
			u64 align = size < 4096 ? 4096 : size;
			u64 at = (next_free + align - 1) & ~(align - 1);
			next_free = at + align;
			set_cfg(off, 4, (u32)at);
			if (is64) set_cfg(off + 4, 4, 0);
			bar_addr[i] = at;
		} else {
			bar_addr[i] = cfg(off, 4) & ~3u;
		}
		if (is64) i++;
	}
	set_cfg(4, 2, cfg(4, 2) | 7); /* I/O, memory, bus master */
	engine = bar_addr[k->engine_bar] + k->engine_off;
}

static void check_engine_registers(void) {
	EXPECT(reg(E_MAGIC), ENGINE_MAGIC, "engine magic");
	EXPECT(reg(E_ID), k->id, "engine device id");
	set_reg(E_SCRATCH, 0x5eed1234);
	EXPECT(reg(E_SCRATCH), 0x5eed1234, "scratch reads back");
}

static u8 src[8192] __attribute__((aligned(4096)));
static u8 dst[8192] __attribute__((aligned(4096)));

static void run_dma(u64 s, u64 d, u32 len, u32 op, u32 pattern) {
	set_reg(E_SRC, (u32)s);
	set_reg(E_SRC + 4, (u32)(s >> 32));
	set_reg(E_DST, (u32)d);
	set_reg(E_DST + 4, (u32)(d >> 32));
	set_reg(E_LEN, len);
	set_reg(E_OP, op);
	set_reg(E_PATTERN, pattern);
	set_reg(E_DOORBELL, 3);
}

static void check_dma(void) {
	for (int i = 0; i < 8192; i++) src[i] = (u8)(i * 13 + 5), dst[i] = 0;
	u32 count = reg(E_COUNT);
	run_dma((u64)src, (u64)dst, 8192, 1, 0);
	EXPECT(reg(E_STATUS) & (ST_DONE | ST_ERROR), ST_DONE, "DMA completes");
	set_reg(E_STATUS, ST_DONE);
	int bad = 0;
	for (int i = 0; i < 8192; i++) bad += dst[i] != (u8)~src[i];
	EXPECT(bad, 0, "device read guest memory and wrote the inverted bytes back");
	EXPECT(reg(E_COUNT), count + 1, "operation counted");
	run_dma((u64)dst, (u64)src + 4096, 16, 2, 0x11);
	bad = 0;
	for (int i = 0; i < 16; i++) bad += src[4096 + i] != (u8)((u8)~(u8)(i * 13 + 5) + 0x11);
	EXPECT(bad, 0, "add transform into the second page");
	set_reg(E_STATUS, 7);
	/* A DMA outside guest RAM fails on the device and writes nothing. */
	dst[0] = 0xa5;
	run_dma(0x7f00000000UL, (u64)dst, 64, 0, 0);
	EXPECT(reg(E_STATUS) & ST_ERROR, ST_ERROR, "DMA from outside guest memory is an error");
	EXPECT(dst[0], 0xa5, "nothing written by the failed DMA");
	set_reg(E_STATUS, 7);
	printf("dma ok\n");
}

static void move_bar(int i, u64 to) {
	u32 off = 0x10 + 4 * i;
	set_cfg(4, 2, cfg(4, 2) & ~2u);
	set_cfg(off, 4, (u32)to | (cfg(off, 4) & 0xf));
	set_cfg(4, 2, cfg(4, 2) | 2);
	bar_addr[i] = to;
}

/* An mmapped area: contents follow BAR moves, vanish while decode is off, and come back. */
static void check_mmap_area(void) {
	if (!k->mmap_len) return;
	int i = k->mmap_bar;
	u64 size = k->bar_size[i];
	u32 lo = k->mmap_off, hi = k->mmap_off + k->mmap_len - 4, mid = k->mmap_off + (k->mmap_len / 2 & ~3u);
	u64 a = bar_addr[i];
	mmio_write32(a + lo, 0x11112222);
	mmio_write32(a + mid, 0x33334444);
	mmio_write32(a + hi, 0x55556666);
	EXPECT(mmio_read32(a + mid), 0x33334444, "mmapped area reads back");
	u64 to = (next_free + size - 1) & ~(size - 1);
	next_free = to + size;
	move_bar(i, to);
	EXPECT(mmio_read32(to + lo), 0x11112222, "first word after the move");
	EXPECT(mmio_read32(to + mid), 0x33334444, "middle word after the move");
	EXPECT(mmio_read32(to + hi), 0x55556666, "last word after the move");
	EXPECT(mmio_read32(a + mid), 0xffffffff, "the old address no longer decodes");
	mmio_write32(to + mid, 0x77778888);
	set_cfg(4, 2, cfg(4, 2) & ~2u);
	EXPECT(mmio_read32(to + mid), 0xffffffff, "memory decode off: the area is gone");
	set_cfg(4, 2, cfg(4, 2) | 2);
	EXPECT(mmio_read32(to + mid), 0x77778888, "decode back on: the area and its contents are back");
	move_bar(i, a);
	EXPECT(mmio_read32(a + mid), 0x77778888, "moved back");
	/* Many accesses: the host test checks that none of them left the guest. */
	u32 sum = 0;
	for (u32 n = 0; n < 4096; n++) sum += mmio_read32(a + lo + (n * 4) % k->mmap_len);
	printf("mmap accesses 4096 sum %x\n", sum);
	printf("mmap ok\n");
}

#define MSIX_VECTOR_BASE 0x60
static volatile u32 vector_hits[16];
#define HANDLER(n) static void on_v##n(struct frame *f) { (void)f; vector_hits[n]++; lapic_eoi(); }
HANDLER(0) HANDLER(1) HANDLER(2) HANDLER(3) HANDLER(4) HANDLER(5) HANDLER(6) HANDLER(7)
static const isr_handler vector_handlers[8] = { on_v0, on_v1, on_v2, on_v3, on_v4, on_v5, on_v6, on_v7 };

static int wait_hits(volatile u32 *counter, u32 want) {
	for (int i = 0; i < 50 && *counter < want; i++) wait_irq();
	return *counter >= want;
}

static void raise(u32 vector) {
	set_reg(E_VECTOR, vector);
	set_reg(E_DOORBELL, 2);
}

static void check_msix(void) {
	u8 m = find_cap(0x11);
	if (!m) return;
	u32 n = (cfg(m + 2, 2) & 0x7ff) + 1, t = cfg(m + 4, 4), p = cfg(m + 8, 4);
	u64 table = bar_addr[t & 7] + (t & ~7u), pba = bar_addr[p & 7] + (p & ~7u);
	if (n > 8) n = 8;
	printf("msix %d vectors table bar%d+%x pba bar%d+%x\n", n, t & 7, t & ~7u, p & 7, p & ~7u);
	set_cfg(m + 2, 2, 0xc000); /* enable + function mask while programming */
	for (u32 v = 0; v < n; v++) {
		mmio_write32(table + 16 * v, (u32)msi_address(lapic_id()));
		mmio_write32(table + 16 * v + 4, 0);
		mmio_write32(table + 16 * v + 8, MSIX_VECTOR_BASE + v);
		mmio_write32(table + 16 * v + 12, 0);
		idt_set_handler(MSIX_VECTOR_BASE + v, vector_handlers[v]);
	}
	set_cfg(m + 2, 2, 0x8000);
	for (u32 v = 0; v < n; v++) {
		raise(v);
		CHECK(wait_hits(&vector_hits[v], 1), "MSI-X vector %d delivered", v);
		EXPECT(vector_hits[v], 1, "exactly one interrupt per raise");
	}
	/* Many interrupts on vector 0: the host test checks that none took a userspace hop. */
	for (int i = 0; i < 200; i++) {
		raise(0);
		wait_hits(&vector_hits[0], 2 + i);
	}
	printf("msix-delivered %d\n", vector_hits[0] - 1);
	EXPECT(vector_hits[0], 201, "every raise delivered");
	/* A masked vector holds its message in the pending bit; unmasking sends it. */
	mmio_write32(table + 16 + 12, 1);
	u32 before = vector_hits[1];
	raise(1);
	wait_irq();
	EXPECT(vector_hits[1], before, "masked vector: no interrupt");
	EXPECT(mmio_read32(pba) & 2, 2, "masked vector: pending bit set");
	mmio_write32(table + 16 + 12, 0);
	CHECK(wait_hits(&vector_hits[1], before + 1), "unmasking delivers the pending interrupt");
	EXPECT(mmio_read32(pba) & 2, 0, "pending bit clear after delivery");
	/* The function mask holds every vector. */
	set_cfg(m + 2, 2, 0xc000);
	before = vector_hits[2 % n];
	raise(2 % n);
	wait_irq();
	EXPECT(vector_hits[2 % n], before, "function mask: no interrupt");
	set_cfg(m + 2, 2, 0x8000);
	CHECK(wait_hits(&vector_hits[2 % n], before + 1), "clearing the function mask delivers it");
	set_cfg(m + 2, 2, 0); /* back to INTx */
	set_reg(E_STATUS, 7);
	printf("msix ok\n");
}

static volatile u32 msi_hits;
static void on_msi(struct frame *f) { (void)f; msi_hits++; lapic_eoi(); }

static void check_msi(void) {
	u8 m = find_cap(0x05);
	if (!m) return;
	u16 ctrl = cfg(m + 2, 2);
	int is64 = ctrl & 0x80;
	idt_set_handler(0x70, on_msi);
	set_cfg(m + 4, 4, (u32)msi_address(lapic_id()));
	if (is64) set_cfg(m + 8, 4, 0);
	set_cfg(m + (is64 ? 0xc : 8), 2, 0x70);
	set_cfg(m + 2, 2, (ctrl & ~0x70u) | 1); /* one vector, enabled */
	for (int i = 0; i < 20; i++) {
		raise(0);
		wait_hits(&msi_hits, i + 1);
	}
	EXPECT(msi_hits, 20, "MSI delivered for every raise");
	printf("msi-delivered %d\n", msi_hits);
	set_cfg(m + 2, 2, ctrl & ~1u);
	set_reg(E_STATUS, 7);
	printf("msi ok\n");
}

/*
 * Level-triggered INTx: the handler checks that the device asserts it (STATUS bit 2, as a driver on a shared line
 * does) and clears it before EOI. An interrupt the device does not assert is counted as spurious, not delivered:
 * this project's host EOIs a level-triggered interrupt as it delivers it (the handler finds its ISR bit clear),
 * so the resample reaches the device before the handler cleared it and the device, still asserting, signals
 * again (docs/host-kvm.md). Kernel KVM on hardware EOIs when the guest does.
 */
static volatile u32 line_hits, line_spurious;
static void on_line(struct frame *f) {
	(void)f;
	if (reg(E_STATUS) & ST_IRQ) {
		line_hits++;
		set_reg(E_STATUS, ST_IRQ);
	} else {
		line_spurious++;
	}
	lapic_eoi();
}

static void drain_irqs(void) {
	for (int i = 0; i < 3; i++) wait_irq();
}

static void check_intx(void) {
	u8 line = cfg(0x3c, 1);
	CHECK(line >= 16 && line < 24, "interrupt line %u is an IOAPIC GSI", line);
	idt_set_handler(0x51, on_line);
	ioapic_route(line, 0x51, lapic_id(), 1);
	drain_irqs();
	EXPECT(line_hits + line_spurious, 0, "no INTx before the device raises one");
	for (int i = 0; i < 20; i++) {
		raise(0);
		wait_hits(&line_hits, i + 1);
	}
	EXPECT(line_hits, 20, "INTx delivered (and re-armed by the unmask) for every raise");
	printf("intx-delivered %d raised %d spurious %d\n", line_hits, reg(E_IRQS), line_spurious);
	/* INTx disable in the command register holds the line; clearing it lets the asserted interrupt through. */
	drain_irqs();
	set_cfg(4, 2, cfg(4, 2) | 0x400);
	u32 before = line_hits;
	raise(0);
	drain_irqs();
	EXPECT(line_hits, before, "INTx disabled: no interrupt");
	EXPECT(reg(E_STATUS) & ST_IRQ, ST_IRQ, "INTx disabled: the device still asserts it");
	set_cfg(4, 2, cfg(4, 2) & ~0x400u);
	CHECK(wait_hits(&line_hits, before + 1), "INTx delivered once the disable bit clears");
	ioapic_mask(line);
	set_reg(E_STATUS, 7);
	printf("intx ok\n");
}

static u32 crc32(const volatile u8 *p, u32 n) {
	u32 c = 0xffffffff;
	for (u32 i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++) c = (c >> 1) ^ (0xedb88320 & -(c & 1));
	}
	return ~c;
}

static void check_rom(void) {
	set_cfg(0x30, 4, 0xfffff800);
	u32 mask = cfg(0x30, 4);
	if (!k->rom_size) {
		EXPECT(mask, 0, "no ROM: the ROM BAR reads 0");
		return;
	}
	u32 size = ~(mask & 0xfffff800) + 1;
	EXPECT(size, k->rom_size, "ROM BAR size");
	u64 at = (next_free + size - 1) & ~(u64)(size - 1);
	next_free = at + size;
	set_cfg(0x30, 4, (u32)at | 1);
	const volatile u8 *rom = (const volatile u8 *)at;
	EXPECT(rom[0], 0x55, "ROM signature byte 0");
	EXPECT(rom[1], 0xaa, "ROM signature byte 1");
	u8 sum = 0;
	for (u32 i = 0; i < size; i++) sum += rom[i];
	EXPECT(sum, 0, "ROM image checksum");
	printf("rom crc32 %08x size %x\n", crc32(rom, size), size);
	set_cfg(0x30, 4, (u32)at);
	EXPECT(mmio_read32(at), 0xffffffff, "ROM disabled: no longer decoded");
}

int main(void) {
	idt_init();
	lapic_enable();
	idt_set_handler(WAKE_VECTOR, on_wake);
	if (!find_device()) {
		printf("no vfio-user test device found\n");
		return 2;
	}
	check_header();
	open_bridge_window();
	size_and_place_bars();
	check_engine_registers();
	check_dma();
	check_mmap_area();
	check_msix();
	check_msi();
	check_intx();
	check_rom();
	return checks_done("vfio-user");
}
