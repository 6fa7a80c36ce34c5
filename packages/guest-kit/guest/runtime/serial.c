#include "guest.h"
#include <stdarg.h>

#define COM1 0x3f8

void serial_init(void) {
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0x07); /* FIFO on, cleared */
}

void serial_putc(char c) {
	while (!(inb(COM1 + 5) & 0x20)) cpu_relax();
	outb(COM1, (u8)c);
}

void serial_puts(const char *s) {
	while (*s) serial_putc(*s++);
}

int serial_getc_nowait(void) {
	if (!(inb(COM1 + 5) & 0x01)) return -1;
	return inb(COM1);
}

static void put_unsigned(u64 v, unsigned base, int width, char pad) {
	char buf[24];
	int n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	while (n < width) buf[n++] = pad;
	while (n) serial_putc(buf[--n]);
}

void printf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			serial_putc(*fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, longarg = 0;
		if (*fmt == '0') pad = '0';
		while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') longarg = 1, fmt++;
		switch (*fmt) {
		case 'd': {
			long v = longarg ? va_arg(ap, long) : va_arg(ap, int);
			if (v < 0) serial_putc('-'), v = -v;
			put_unsigned((u64)v, 10, width, pad);
			break;
		}
		case 'u':
			put_unsigned(longarg ? va_arg(ap, u64) : va_arg(ap, u32), 10, width, pad);
			break;
		case 'x':
			put_unsigned(longarg ? va_arg(ap, u64) : va_arg(ap, u32), 16, width, pad);
			break;
		case 'p':
			serial_puts("0x");
			put_unsigned((u64)va_arg(ap, void *), 16, width, pad);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			serial_puts(s ? s : "(null)");
			break;
		}
		case 'c':
			serial_putc((char)va_arg(ap, int));
			break;
		case '%':
			serial_putc('%');
			break;
		default:
			serial_putc('%');
			serial_putc(*fmt);
			break;
		}
		if (!*fmt) break;
	}
	va_end(ap);
}
