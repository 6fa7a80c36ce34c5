/*
 * Interrupt and exception stubs for all 256 vectors. Each pushes a dummy error code where the CPU pushes none,
 * then its vector, saves the general registers and calls isr_dispatch(frame).
 */
	.altmacro
	.text
	.code64
	.macro STUB vec
	.balign 16
isr_\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
	.endm

	.set v, 0
	.rept 256
	STUB %v
	.set v, v + 1
	.endr

isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	call isr_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rbp
	popq %rbx
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

	.section .rodata
	.globl isr_table
	.balign 8
isr_table:
	.macro ENTRY vec
	.quad isr_\vec
	.endm
	.set v, 0
	.rept 256
	ENTRY %v
	.set v, v + 1
	.endr
