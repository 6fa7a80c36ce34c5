/*
 * Waits for two MSIs to this CPU: vector 0x41 (the VMM injects it with KVM_SIGNAL_MSI) and vector 0x42 (an
 * irqfd over an MSI GSI route). The host sends them after "msi: ready".
 */
#include "../runtime/guest.h"

static volatile u32 got41, got42;

static void isr(struct frame *f) {
	if (f->vector == 0x41) got41++;
	if (f->vector == 0x42) got42++;
	lapic_eoi();
}

int main(void) {
	idt_init();
	idt_set_handler(0x41, isr);
	idt_set_handler(0x42, isr);
	lapic_enable();
	printf("msi: ready, address %lx\n", msi_address((u8)lapic_id()));
	while (!got41 || !got42) sti_hlt();
	cli();
	printf("msi: vector 41 x%u, vector 42 x%u\n", got41, got42);
	return 0;
}
