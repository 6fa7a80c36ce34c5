/*
 * The idle-notice guest: says it is ready, then stays silent until a byte arrives on COM1 (waiting with `sti; hlt`
 * for the receive interrupt, so it makes no exits while it waits), answers each byte with a line, and exits 0
 * on 'q'. The host decides how long the guest is silent and when its output flows.
 */
#include "guest.h"

#define COM1 0x3f8
#define RING 64
static volatile u8 ring[RING];
static volatile u32 head, tail;

static void uart_isr(struct frame *f) {
	(void)f;
	while (inb(COM1 + 5) & 0x01) {
		u8 byte = inb(COM1);
		if (head - tail < RING) ring[head++ % RING] = byte;
	}
	lapic_eoi();
}

int main(void) {
	idt_init();
	idt_set_handler(0x24, uart_isr);
	lapic_enable();
	ioapic_route(4, 0x24, (u8)lapic_id(), 0);
	outb(COM1 + 4, 0x08); /* OUT2 gates the IRQ */
	outb(COM1 + 1, 0x01); /* receive data available only */
	printf("echo: ready\n");
	for (;;) {
		while (head == tail) sti_hlt();
		cli();
		u8 byte = ring[tail++ % RING];
		if (byte == 'q') break;
		if (byte != '\n') printf("echo: got %c\n", byte);
	}
	printf("echo: bye\n");
	return 0;
}
