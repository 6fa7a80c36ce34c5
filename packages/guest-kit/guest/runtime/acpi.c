#include "guest.h"

int acpi_checksum_ok(const void *table, u32 len) {
	const u8 *p = table;
	u8 sum = 0;
	for (u32 i = 0; i < len; i++) sum += p[i];
	return sum == 0;
}

static const void *scan(u64 from, u64 to) {
	for (u64 a = from; a < to; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8) && acpi_checksum_ok((const void *)a, 20)) return (const void *)a;
	return NULL;
}

const void *acpi_rsdp(void) {
	u64 ebda = (u64)(*(volatile u16 *)0x40e) << 4;
	const void *r = ebda ? scan(ebda, ebda + 1024) : NULL;
	return r ? r : scan(0xe0000, 0x100000);
}

const void *acpi_table(const char sig[4]) {
	const u8 *rsdp = acpi_rsdp();
	if (!rsdp) return NULL;
	if (rsdp[15] >= 2) {
		const u8 *xsdt = (const u8 *)*(const u64 *)(rsdp + 24);
		u32 len = *(const u32 *)(xsdt + 4);
		for (u32 off = 36; off + 8 <= len; off += 8) {
			const u8 *t = (const u8 *)*(const u64 *)(xsdt + off);
			if (!memcmp(t, sig, 4)) return t;
		}
		return NULL;
	}
	const u8 *rsdt = (const u8 *)(u64) * (const u32 *)(rsdp + 16);
	u32 len = *(const u32 *)(rsdt + 4);
	for (u32 off = 36; off + 4 <= len; off += 4) {
		const u8 *t = (const u8 *)(u64) * (const u32 *)(rsdt + off);
		if (!memcmp(t, sig, 4)) return t;
	}
	return NULL;
}

u64 acpi_ecam_base(void) {
	const u8 *mcfg = acpi_table("MCFG");
	if (!mcfg || *(const u32 *)(mcfg + 4) < 44 + 16) return 0;
	return *(const u64 *)(mcfg + 44);
}

int acpi_cpu_count(void) {
	const u8 *madt = acpi_table("APIC");
	if (!madt) return 0;
	u32 len = *(const u32 *)(madt + 4);
	int n = 0;
	for (u32 off = 44; off + 2 <= len && madt[off + 1]; off += madt[off + 1])
		if (madt[off] == 0 && (*(const u32 *)(madt + off + 4) & 1)) n++;
	return n;
}
