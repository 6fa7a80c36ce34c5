/*
 * Raw-binary entry, loaded like kvmtool does: linear 0x10000, real mode, CS=DS=ES=SS=0x1000, IP=0.
 * Switches straight to long mode with the static identity page tables below (first 4 GiB, 2 MiB pages),
 * then continues in the common 64-bit start. Every CPU the VMM starts enters here.
 */
#define LOAD 0x10000
	.section .text.entry, "ax"
	.code16
	.globl _start
_start:
	cli
	lgdtl gdt_ptr - LOAD
	movl $0x20, %eax		/* CR4.PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx		/* EFER.LME */
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl $0x80000011, %eax		/* CR0.PG | CR0.ET | CR0.PE */
	movl %eax, %cr0
	ljmpl $0x08, $long_entry

	.code64
long_entry:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	jmp common_start

	.section .rodata.gdt, "a"
	.balign 16
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: flat data */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt

	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + 0x3
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + 0x3
	.quad pd + 0x1000 + 0x3
	.quad pd + 0x2000 + 0x3
	.quad pd + 0x3000 + 0x3
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr
