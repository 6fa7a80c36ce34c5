/*
 * UART interrupts through the IOAPIC: COM1 (IRQ 4) is routed to vector 0x24; the guest enables the THRE and
 * RDA interrupts and waits with `sti; hlt`. The host sends a byte; the handler reads it from the RBR.
 */
#include "../runtime/guest.h"

#define COM1 0x3f8
static volatile u32 thre_count, rda_count;
static volatile int received = -1;

static void uart_isr(struct frame *f) {
	(void)f;
	for (;;) {
		u8 iir = inb(COM1 + 2);
		if (iir & 1) break;
		if ((iir & 0x0e) == 0x02) {
			thre_count++;
			outb(COM1 + 1, 0x01); /* THRE seen: keep only RDA */
		} else if ((iir & 0x0e) == 0x04) {
			rda_count++;
			received = inb(COM1);
		}
	}
	lapic_eoi();
}

int main(void) {
	idt_init();
	idt_set_handler(0x24, uart_isr);
	lapic_enable();
	ioapic_route(4, 0x24, (u8)lapic_id(), 0);
	outb(COM1 + 4, 0x08);        /* OUT2 gates the IRQ */
	outb(COM1 + 1, 0x03);        /* RDA + THRE */
	printf("uart-irq: waiting\n"); /* polled output; THRE already latched */
	while (thre_count == 0) sti_hlt();
	printf("uart-irq: THRE interrupt %u\n", thre_count);
	printf("uart-irq: ready for input\n");
	while (received < 0) sti_hlt();
	cli();
	printf("uart-irq: RDA interrupt %u, got '%c'\n", rda_count, received);
	return 0;
}
