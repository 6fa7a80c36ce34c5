/* Exceptions and a self-IPI through the runtime's IDT: #UD (ud2), #DE (divide by zero), #PF (above 4 GiB). */
#include "../runtime/guest.h"

static volatile u32 ud, de, pf, ipi;
static volatile u64 cr2;

static void on_ud(struct frame *f) { ud++; f->rip += 2; }  /* ud2 */
static void on_de(struct frame *f) { de++; f->rip += 2; }  /* divl %ecx */
static void on_pf(struct frame *f) {
	u64 v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	cr2 = v;
	pf++;
	f->rip += 2; /* movl (%rax), %eax */
	(void)f->error;
}
static void on_ipi(struct frame *f) { (void)f; ipi++; lapic_eoi(); }

int main(void) {
	idt_init();
	idt_set_handler(6, on_ud);
	idt_set_handler(0, on_de);
	idt_set_handler(14, on_pf);
	idt_set_handler(0x50, on_ipi);
	__asm__ volatile("ud2");
	u32 lo = 7, hi = 0, zero = 0;
	__asm__ volatile("divl %2" : "+a"(lo), "+d"(hi) : "c"(zero));
	u64 addr = 0x100000000UL;
	u32 val = 0;
	__asm__ volatile("movl (%1), %0" : "=a"(val) : "a"(addr) : "memory");
	lapic_enable();
	lapic_self_ipi(0x50);
	while (!ipi) sti_hlt();
	cli();
	printf("exceptions: ud %u de %u pf %u cr2 %lx ipi %u\n", ud, de, pf, cr2, ipi);
	return 0;
}
