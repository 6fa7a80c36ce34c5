/*
 * What an ACPI OS does with the fixed power button, in small: from the FADT it takes the SCI's IRQ and the PM1a
 * event and control blocks, from the MADT the SCI's interrupt source override, from the DSDT the \_S5 sleep type.
 * It routes the SCI through the IOAPIC as the override says, clears PM1_STS, sets PWRBTN_EN, says "ready" and
 * waits. The SCI handler finds PWRBTN_STS, clears it (write 1) and the guest enters S5 (SLP_TYP, then SLP_EN):
 * the machine powers off. Any line with "FAIL" is a check that went wrong.
 */
#include "guest.h"

#define SCI_VECTOR 0x39
#define PWRBTN (1u << 8)
#define SLP_EN (1u << 13)

static u16 evt, cnt;
static volatile u32 presses;
static volatile u16 seen_status;

static void on_sci(struct frame *f) {
	(void)f;
	u16 sts = inw(evt);
	seen_status = sts;
	if (sts & PWRBTN) {
		outw(evt, PWRBTN); /* write 1 to clear: the SCI drops */
		presses++;
	}
	lapic_eoi();
}

/* \_S5's first element: NameOp "\_S5_", PackageOp, a one-byte PkgLength, the element count, then an integer. */
static int s5_sleep_type(const u8 *dsdt) {
	u32 len = *(const u32 *)(dsdt + 4);
	for (u32 i = 36; i + 10 < len; i++) {
		if (memcmp(dsdt + i, "_S5_", 4) || dsdt[i + 4] != 0x12) continue;
		const u8 *p = dsdt + i + 7;
		if (p[0] == 0x0a) return p[1];
		if (p[0] <= 1) return p[0];
	}
	return -1;
}

/* The MADT's override of ISA IRQ `irq`: its GSI in the low 32 bits, its MPS flags above; or irq with flags 0. */
static u64 isa_override(u8 irq) {
	const u8 *madt = acpi_table("APIC");
	u32 len = *(const u32 *)(madt + 4);
	for (u32 off = 44; off + 2 <= len && madt[off + 1]; off += madt[off + 1])
		if (madt[off] == 2 && madt[off + 3] == irq) return *(const u32 *)(madt + off + 4) | (u64)*(const u16 *)(madt + off + 8) << 32;
	return irq;
}

static void ioapic_set(u8 reg, u32 v) {
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + 0x10, v);
}

int main(void) {
	const u8 *fadt = acpi_table("FACP");
	if (!fadt) {
		printf("acpi-power-button: FAIL no FADT\n");
		return 1;
	}
	u32 flags = *(const u32 *)(fadt + 112);
	u16 sci = *(const u16 *)(fadt + 46);
	evt = (u16) * (const u32 *)(fadt + 56);
	cnt = (u16) * (const u32 *)(fadt + 64);
	int s5 = s5_sleep_type((const u8 *)(u64) * (const u32 *)(fadt + 40));
	u64 ovr = isa_override((u8)sci);
	u32 gsi = (u32)ovr, mps = (u32)(ovr >> 32);
	if (flags & (1u << 20)) printf("acpi-power-button: FAIL the FADT says hardware-reduced\n");
	if (flags & (1u << 4)) printf("acpi-power-button: FAIL no fixed power button (PWR_BUTTON set)\n");
	if (!(inw(cnt) & 1)) printf("acpi-power-button: FAIL SCI_EN is clear\n");
	if (s5 < 0) printf("acpi-power-button: FAIL no \\_S5\n");

	idt_init();
	idt_set_handler(SCI_VECTOR, on_sci);
	lapic_enable();
	/* MPS flags: polarity in bits 0-1 (3 = active low), trigger in bits 2-3 (3 = level); conforming ISA is edge, high. */
	u32 low = SCI_VECTOR | ((mps & 3) == 3 ? 1u << 13 : 0) | (((mps >> 2) & 3) == 3 ? 1u << 15 : 0);
	ioapic_set((u8)(0x11 + 2 * gsi), lapic_id() << 24);
	ioapic_set((u8)(0x10 + 2 * gsi), low);
	outw(evt, 0xffff);       /* clear every status bit */
	outw(evt + 2, PWRBTN);   /* PM1_EN: the power button only */
	printf("acpi-power-button: ready sci=%u gsi=%u flags=%x evt=%x cnt=%x s5=%u\n", sci, gsi, mps, evt, cnt, s5);
	while (!presses) sti_hlt();
	cli();
	printf("acpi-power-button: pressed, PM1_STS was %x, now %x\n", seen_status, inw(evt));
	outw(cnt, (u16)(s5 << 10));
	outw(cnt, (u16)((s5 << 10) | SLP_EN));
	printf("acpi-power-button: FAIL still running after entering S5\n");
	return 1;
}
