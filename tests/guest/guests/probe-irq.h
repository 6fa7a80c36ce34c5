/*
 * Interrupts from the "pci-probe" functions as this package's guest programs count them: an MSI-X handler and an
 * INTx handler that count and EOI, and wait_irq(), which halts until an interrupt or a LAPIC one-shot timer on
 * WAKE_VECTOR wakes the CPU, so "no interrupt" checks end too. A program installs the handlers on its vectors
 * and on_wake on WAKE_VECTOR.
 */
#ifndef TESTS_GUEST_PROBE_IRQ_H
#define TESTS_GUEST_PROBE_IRQ_H
#include "guest.h"

static volatile u32 msix_hits;
static volatile u32 intx_hits;
__attribute__((unused)) static void on_msix(struct frame *f) { (void)f; msix_hits++; lapic_eoi(); }
__attribute__((unused)) static void on_intx(struct frame *f) { (void)f; intx_hits++; lapic_eoi(); }

#define WAKE_VECTOR 0x30
static void on_wake(struct frame *f) { (void)f; lapic_eoi(); }

static void wait_irq(void) {
	for (int i = 0; i < 4; i++) {
		mmio_write32(LAPIC_BASE + 0x3e0, 0xb);          /* divide by 1 */
		mmio_write32(LAPIC_BASE + 0x320, WAKE_VECTOR);  /* one-shot */
		mmio_write32(LAPIC_BASE + 0x380, 2000000);      /* initial count */
		sti_hlt();
	}
	cli();
}

#endif
