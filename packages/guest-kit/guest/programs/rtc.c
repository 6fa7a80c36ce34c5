/* Reads the CMOS RTC (waiting out update-in-progress) and the memory-size registers. */
#include "../runtime/guest.h"

static u8 bcd(u8 v, int binary) { return binary ? v : (u8)((v >> 4) * 10 + (v & 15)); }

int main(void) {
	while (cmos_read(0x0a) & 0x80) cpu_relax();
	u8 b = cmos_read(0x0b);
	int binary = b & 4;
	u8 sec = bcd(cmos_read(0x00), binary), min = bcd(cmos_read(0x02), binary), hour = bcd(cmos_read(0x04), binary);
	u8 day = bcd(cmos_read(0x07), binary), mon = bcd(cmos_read(0x08), binary), year = bcd(cmos_read(0x09), binary);
	u8 century = bcd(cmos_read(0x32), binary);
	printf("RTC %02u%02u-%02u-%02u %02u:%02u:%02u statusB=%x statusD=%x\n", century, year, mon, day, hour, min, sec, b,
	       cmos_read(0x0d));
	u32 ext = cmos_read(0x30) | (cmos_read(0x31) << 8);
	u32 above16 = cmos_read(0x34) | (cmos_read(0x35) << 8);
	u32 high = cmos_read(0x5b) | (cmos_read(0x5c) << 8) | ((u32)cmos_read(0x5d) << 16);
	printf("CMOS ext=%u KiB above16M=%u x64KiB high=%u x64KiB\n", ext, above16, high);
	/* binary mode: the guest switches status B and reads again */
	outb(0x70, 0x0b);
	outb(0x71, b | 4);
	printf("RTC binary minutes=%u\n", cmos_read(0x02));
	return 0;
}
