/*
 * Benchmark guest for the exit path through the whole machine: port writes to the POST code port (0x80, a device on
 * the machine's port I/O space) and MMIO writes to virtio-rng's common configuration (the PCI bus's BAR window, the
 * virtio transport's register table). Each phase prints "phase NAME begin" and "phase NAME end N 0"; the host
 * times the lines as they arrive (the two lines' own exits are a rounding error against N). The "ready" line before
 * them is where the bench snapshots the machine for the C floor that resumes this very guest.
 */
#include "guest.h"
#include "virtio.h"

#define N 100000

int main(void) {
	struct virtio_pci rng;
	if (!virtio_pci_find(0x1044, 0, &rng)) {
		printf("no virtio-rng\n");
		return 2;
	}
	/* Memory decode on (the VMM placed the BARs). */
	pci_cf8_write(0, rng.slot, 0, 4, 2, 6);
	printf("exit-path ready\n");
	printf("phase pio begin\n");
	for (u32 i = 0; i < N; i++) outb(0x80, (u8)i);
	printf("phase pio end %u 0\n", N);
	printf("phase mmio begin\n");
	/* device_feature_select (offset 0): a write the device takes into its register table */
	for (u32 i = 0; i < N; i++) *(volatile u32 *)(rng.common) = 0;
	printf("phase mmio end %u 0\n", N);
	return 0;
}
