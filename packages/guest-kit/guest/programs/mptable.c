/* Finds the MP floating pointer the way Linux does (bottom 1K, top of base RAM, BIOS area) and checks the tables. */
#include "../runtime/guest.h"

static u8 sum(const u8 *p, u32 n) {
	u8 s = 0;
	while (n--) s += *p++;
	return s;
}

static const u8 *scan(u64 base, u64 len) {
	for (u64 a = base; a < base + len; a += 16) {
		const u8 *p = (const u8 *)a;
		if (!memcmp(p, "_MP_", 4) && p[8] == 1 && sum(p, 16) == 0 && (p[9] == 1 || p[9] == 4)) return p;
	}
	return NULL;
}

int main(void) {
	const u8 *mpf = scan(0, 0x400);
	if (!mpf) mpf = scan(639 * 0x400, 0x400);
	if (!mpf) mpf = scan(0xf0000, 0x10000);
	if (!mpf) {
		printf("no MP floating pointer\n");
		return 1;
	}
	const u8 *cfg = (const u8 *)(u64) * (const u32 *)(mpf + 4);
	u16 len = *(const u16 *)(cfg + 4), count = *(const u16 *)(cfg + 34);
	printf("MP floating pointer at %p spec 1.%u, table %p %s len %u entries %u checksum %s\n", mpf, mpf[9], cfg,
	       memcmp(cfg, "PCMP", 4) ? "bad" : "PCMP", len, count, sum(cfg, len) ? "bad" : "ok");
	int cpus = 0, ints = 0;
	const u8 *e = cfg + 44;
	for (u16 i = 0; i < count; i++) {
		if (e[0] == 0) cpus++;
		if (e[0] == 3) ints++;
		e += e[0] == 0 ? 20 : 8;
	}
	printf("MP cpus %d io-interrupts %d\n", cpus, ints);
	return 0;
}
