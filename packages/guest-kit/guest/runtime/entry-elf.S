/* ELF entry: the VMM starts every CPU here in 64-bit mode with its own identity page tables and GDT. */
	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	jmp common_start
