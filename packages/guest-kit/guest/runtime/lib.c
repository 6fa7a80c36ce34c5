#include "guest.h"

void *memset(void *d, int c, size_t n) {
	u8 *p = d;
	while (n--) *p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n) {
	u8 *p = d;
	const u8 *q = s;
	while (n--) *p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n) {
	const u8 *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q) return *p - *q;
	return 0;
}

size_t strlen(const char *s) {
	size_t n = 0;
	while (s[n]) n++;
	return n;
}

__attribute__((noreturn)) void exit(int status) {
	outb(0x501, (u8)status);
	for (;;) __asm__ volatile("cli; hlt");
}

__attribute__((weak)) void ap_main(u32 apic_id) {
	(void)apic_id;
}

void runtime_init(void) {
	serial_init();
}

u8 cmos_read(u8 reg) {
	outb(0x70, reg);
	return inb(0x71);
}
