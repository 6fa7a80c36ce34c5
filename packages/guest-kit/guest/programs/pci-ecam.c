/*
 * Finds the ECAM window through ACPI (RSDP -> XSDT -> MCFG), checks the tables' checksums, and reads the
 * vendor/device IDs of bus 0 through both CF8/CFC and ECAM: they must agree.
 */
#include "../runtime/guest.h"

int main(void) {
	const u8 *rsdp = acpi_rsdp();
	if (!rsdp) {
		printf("no RSDP\n");
		return 1;
	}
	const u8 *mcfg = acpi_table("MCFG");
	const u8 *madt = acpi_table("APIC");
	printf("RSDP at %p rev %u, MCFG %s, MADT %s\n", rsdp, rsdp[15],
	       mcfg && acpi_checksum_ok(mcfg, *(const u32 *)(mcfg + 4)) ? "ok" : "bad",
	       madt && acpi_checksum_ok(madt, *(const u32 *)(madt + 4)) ? "ok" : "bad");
	u64 ecam = acpi_ecam_base();
	printf("ECAM base %lx\n", ecam);
	if (!ecam) return 1;
	int mismatches = 0;
	for (u8 dev = 0; dev < 32; dev++) {
		u32 a = pci_cf8_read(0, dev, 0, 0, 4);
		u32 b = pci_ecam_read(ecam, 0, dev, 0, 0, 4);
		if (a != b) mismatches++;
		if (a != 0xffffffff) printf("pci 00:%02x.0 id %08x class %08x\n", dev, a, pci_ecam_read(ecam, 0, dev, 0, 8, 4));
	}
	printf("mismatches %d\n", mismatches);
	return mismatches ? 1 : 0;
}
