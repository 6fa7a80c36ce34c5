/*
 * The i8042 keyboard under interrupts: the guest sets the controller up by polling (self test, command byte
 * with translation, keyboard reset and identify), routes ISA IRQ 1 through the IOAPIC to vector 0x21, enables
 * the keyboard interrupt and prints "keyboard ready". Its IRQ handler prints every byte read from port 0x60
 * until the release of Return (set 1: 0x9c); then it exits 0.
 */
#include "../runtime/guest.h"

#define KBC_DATA 0x60
#define KBC_STATUS 0x64
#define STATUS_OBF 0x01
#define STATUS_IBF 0x02
#define CTR_KBD_INT 0x01
#define CTR_KBD_DISABLED 0x10
#define CTR_TRANSLATE 0x40
#define RETURN_BREAK 0x9c
#define VECTOR 0x21

static volatile u32 irqs, codes;
static volatile int done;

static void kbc_command(u8 cmd) {
	while (inb(KBC_STATUS) & STATUS_IBF) cpu_relax();
	outb(KBC_STATUS, cmd);
}

static void kbc_data(u8 v) {
	while (inb(KBC_STATUS) & STATUS_IBF) cpu_relax();
	outb(KBC_DATA, v);
}

/* The next output byte, or -1 when none arrives. */
static int kbc_read(void) {
	for (u32 i = 0; i < 100000; i++)
		if (inb(KBC_STATUS) & STATUS_OBF) return inb(KBC_DATA);
	return -1;
}

static void keyboard_isr(struct frame *f) {
	(void)f;
	irqs++;
	while (inb(KBC_STATUS) & STATUS_OBF) {
		u8 code = inb(KBC_DATA);
		codes++;
		printf("scancode %02x\n", code);
		if (code == RETURN_BREAK) done = 1;
	}
	lapic_eoi();
}

int main(void) {
	idt_init();
	idt_set_handler(VECTOR, keyboard_isr);
	lapic_enable();

	kbc_command(0xad); /* keyboard off while the controller is set up */
	while (inb(KBC_STATUS) & STATUS_OBF) inb(KBC_DATA);
	kbc_command(0xaa);
	int self = kbc_read();
	kbc_command(0x20);
	int ctr = kbc_read();
	if (self < 0 || ctr < 0) {
		printf("keyboard: controller does not answer\n");
		return 1;
	}
	printf("keyboard: self test %02x, command byte %02x\n", self, ctr);
	ctr = (ctr | CTR_TRANSLATE) & ~(CTR_KBD_INT | CTR_KBD_DISABLED);
	kbc_command(0x60);
	kbc_data((u8)ctr);

	kbc_data(0xff); /* keyboard reset: ack, then self test passed */
	int ack = kbc_read(), bat = kbc_read();
	kbc_data(0xf2); /* identify */
	int ack2 = kbc_read(), id0 = kbc_read(), id1 = kbc_read();
	printf("keyboard: reset %02x %02x, identify %02x %02x %02x\n", ack, bat, ack2, id0, id1);

	ioapic_route(1, VECTOR, (u8)lapic_id(), 0);
	kbc_command(0x60);
	kbc_data((u8)(ctr | CTR_KBD_INT));
	printf("keyboard ready\n");
	while (!done) sti_hlt();
	cli();
	printf("keyboard: %u codes in %u interrupts\n", codes, irqs);
	return 0;
}
